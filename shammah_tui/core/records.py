"""Typed rows: what the store hands out. Plain dataclasses, no SQL here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class QueryRecord:
    """One answered (or failed) query, as logged."""

    query: str
    source: str | None
    answer: str | None
    latency_ms: float
    context_key: str = ""
    conversation_id: int | None = None
    router_p: float | None = None
    validator_p: float | None = None
    confidence: float | None = None
    verified: bool | None = None
    teacher_answer: str | None = None
    error: str | None = None
    teacher_input_tokens: int = 0
    teacher_output_tokens: int = 0
    spot_checked: bool = False
    created_at: float = 0.0
    id: int | None = None
    credited: bool = True
    """False when a cheaper tier would have given an answer too (the tier order tried this one first)."""


@dataclass
class TrainingExample:
    """A (query, context) → answer pair the generator learns from."""

    id: int
    query: str
    context: str
    context_key: str
    answer: str
    origin: str
    state: str
    times_trained: int = 0


@dataclass
class LearnedAnswer:
    """An answer the teacher gave before, keyed by normalized query and context."""

    id: int
    norm_query: str
    context_key: str
    query: str
    answer: str
    origin: str
    hits: int = 0


@dataclass
class ModelLoss:
    """Loss of one model before and after a run, on the same evaluation batch."""

    old_loss: float
    new_loss: float
    improvement_pct: float
    measured_on: str = "training batch"
    """What the batch was: held-out data the model never trained on, or its own training batch."""


@dataclass
class TrainingRun:
    """One training run and its per-model losses."""

    id: int
    started_at: float
    finished_at: float | None
    status: str
    trigger: str
    examples: int
    steps: int
    examples_per_s: float | None
    device: str | None
    error: str | None
    losses: dict[str, ModelLoss] = field(default_factory=dict)

    @property
    def duration_s(self) -> float | None:
        """Seconds from start to finish (None while it runs)."""
        return None if self.finished_at is None else max(0.0, self.finished_at - self.started_at)


@dataclass
class LossPoint:
    """One streamed training loss."""

    run_id: int
    model: str
    step: int
    loss: float
    examples_per_s: float | None = None


@dataclass
class Label:
    """An agreement label for the router and validator."""

    query: str
    answer: str
    source: str
    label: int
    origin: str
    context_key: str = ""
    score: float | None = None
    features: list[float] = field(default_factory=list)
    id: int | None = None


@dataclass
class Message:
    """A conversation message."""

    id: int
    conversation_id: int
    role: str
    text: str
    source: str | None
    query_id: int | None
    created_at: float


@dataclass
class ToolCallRow:
    """A persisted tool call."""

    id: int
    call_id: str
    name: str
    input: dict[str, Any]
    status: str
    duration_ms: float | None
    summary: str
    result_text: str
    created_at: float


@dataclass
class ConversationSummary:
    """A conversation as a list of past conversations shows it."""

    id: int
    title: str
    """The stored title, else the first question ("" when it has none)."""
    messages: int
    """How many messages it holds."""
    created_at: float
    last_at: float
    """When its last message was written (its creation time when it has none)."""


@dataclass
class PairLabel:
    """Whether a stored answer was right for a new query: a label for the semantic tier's acceptance."""

    query: str
    stored_query: str
    label: int
    features: list[float]
    origin: str
    """`forward` (free: the teacher's answer compared with the nearest stored one before storing it),
    `spot_check`, or `paraphrase` (phrasings the teacher grouped as one question)."""
    context_key: str = ""
    fitted: bool = False
    """True once a model was fitted on it: it then never calibrates a threshold."""
    id: int | None = None


@dataclass
class CalibrationPoint:
    """An answer a model judged, and whether the teacher agreed: what a threshold is calibrated on.

    Only answers to questions the judged model never trained on become points."""

    query: str
    answer: str
    features: list[float]
    agreed: bool
    origin: str
    id: int | None = None
    generator_run: int | None = None
    """The run whose generator gave `answer` (None: the untrained generator); only points of the
    generator in use calibrate it."""


@dataclass
class SkillResult:
    """The generator on one skill's fixed held-out set after a run."""

    skill: str
    accuracy: float
    """Share of held-out instances the generator answered right."""
    served: float
    """Share the neural tier would serve at the calibrated threshold."""
    held_out: int
    """Size of the held-out set."""
    loss: float | None = None
    """The generator's loss on the held-out answers."""
    run_id: int | None = None


@dataclass(frozen=True)
class Exchange:
    """A question and what came back, as two messages of a conversation."""

    conversation_id: int
    question: str
    reply: str
    """The answer, or what went wrong."""
    answered: bool
    """True: the reply is an assistant message; False: a notice (an error)."""
    source: str | None = None


@dataclass
class RequestLogRow:
    """One request `serve` answered (or refused), with what it cost upstream or saved."""

    request_id: str
    method: str
    path: str
    route: str
    """`messages`, `chat_completions`, `count_tokens`, `models`, `health`, or `other`."""
    status: int
    source: str | None
    """`neural|learned|template|forward|teacher-offline`, or None for a refused request."""
    model: str | None
    token_name: str | None
    """The client token's name (`default`: the token in serve.token); None when none matched."""
    latency_ms: float
    input_tokens: int | None = None
    output_tokens: int | None = None
    """The usage the client was told (measured upstream, or the stored answer's)."""
    saved_input_tokens: int = 0
    saved_output_tokens: int = 0
    saved_usd: float = 0.0
    error: str | None = None
    created_at: float = 0.0
    id: int | None = None
