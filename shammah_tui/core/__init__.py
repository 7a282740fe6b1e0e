"""The vocabulary every part shares: kinds, records, events, runs, tool calls, teaching types and
query text. It imports nothing else of ours (an import-linter contract holds it)."""
