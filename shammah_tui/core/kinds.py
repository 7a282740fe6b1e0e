"""The names every part of Shammah shares, each defined once as a `Literal` type with its values.

See docs/ARCHITECTURE.md for where each is produced and read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

Source = Literal["neural", "learned", "template", "forward"]
"""Where an answer came from: a local tier, or the teacher."""
SOURCES: tuple[Source, ...] = get_args(Source)

Tier = Literal["neural", "learned", "template"]
"""A local tier; the pipeline tries them in the order the settings give."""
TIERS: tuple[Tier, ...] = get_args(Tier)


@dataclass(frozen=True)
class SourceInfo:
    """One answer source as every part shows it: the store checks names against these rows, the UI
    takes badges, colours and help from them."""

    name: Source
    colour: str
    """`#rrggbb`, on dark and light themes alike (badges and charts)."""
    meaning: str
    """What an answer from it is, in a few words (help, legends)."""

    @property
    def local(self) -> bool:
        return self.name in TIERS


#: The registry, in the order sources are shown.
SOURCE_INFO: dict[Source, SourceInfo] = {info.name: info for info in (
    SourceInfo("neural", "#c678dd", "the local generator, accepted by the validator"),
    SourceInfo("learned", "#61afef", "a stored teacher answer, same question and context"),
    SourceInfo("template", "#e5c07b", "an exact rule: arithmetic, units, greetings …"),
    SourceInfo("forward", "#e06c75", "the teacher; its answers train the local models"),
)}
assert tuple(SOURCE_INFO) == SOURCES, "one registry row per source, in the Literal's order"

ModelName = Literal["generator", "adapter", "router", "validator"]
"""The local models that training runs improve: the answering model is the from-scratch generator
or the pre-trained model's adapter (Settings.answer_model)."""
MODELS: tuple[ModelName, ...] = get_args(ModelName)

TeacherChoice = Literal["auto", "offline", "claude"]
"""What the settings and `--teacher` accept (`auto`: Claude when a key is set)."""
TEACHERS: tuple[TeacherChoice, ...] = get_args(TeacherChoice)

NoticeLevel = Literal["information", "warning", "error"]
"""How loudly a notice is shown."""

RunStatus = Literal["done", "cancelled", "failed"]
"""How a training run ended."""

#: Longest query accepted, in characters (a pasted page is fine; a 1 MB paste is not).
MAX_QUERY_CHARS = 8000
#: Longer queries are never rule questions (templates, the curriculum): checked before any
#: parsing, so a long paste costs one `len`.
MAX_RULE_QUERY_CHARS = 300
