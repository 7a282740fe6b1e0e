"""Persistence: the one place with SQL."""

from shammah_tui.store.db import Store, StoreError
from shammah_tui.core.records import (
    CalibrationPoint, Exchange, Label, LearnedAnswer, LossPoint, Message, ModelLoss, PairLabel, QueryRecord,
    RequestLogRow, SkillResult, ToolCallRow, TrainingExample, TrainingRun,
)

__all__ = [
    "Store", "StoreError", "CalibrationPoint", "Exchange", "Label", "LearnedAnswer", "LossPoint", "Message",
    "ModelLoss", "PairLabel", "QueryRecord", "RequestLogRow", "SkillResult", "ToolCallRow", "TrainingExample",
    "TrainingRun",
]
