"""Persistence: the one place with SQL."""

from shammah_tui.store.db import Store, StoreError
from shammah_tui.store.rows import (
    Label, LearnedAnswer, LossPoint, Message, ModelLoss, QueryRecord, ToolCallRow,
    TrainingExample, TrainingRun,
)

__all__ = [
    "Store", "StoreError", "Label", "LearnedAnswer", "LossPoint", "Message",
    "ModelLoss", "QueryRecord", "ToolCallRow", "TrainingExample", "TrainingRun",
]
