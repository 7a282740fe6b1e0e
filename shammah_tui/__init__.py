"""Shammah TUI: a local-first assistant that learns from its teacher."""

__version__ = "0.1.0"
