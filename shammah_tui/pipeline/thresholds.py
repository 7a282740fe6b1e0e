"""The calibrated thresholds the tiers decide by: one frozen value, replaced whole when calibration
moves it (a decision in a worker thread never sees half of a new calibration)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

from shammah_tui.pipeline.calibration import CLOSED
from shammah_tui.pipeline.regions import pattern_of


@dataclass(frozen=True)
class Thresholds:
    """Calibrated decision thresholds and which models have learned anything yet."""

    STORE_KEY: ClassVar[str] = "thresholds"
    """Where the store keeps them (a settings row, as JSON)."""

    router: float = 0.5
    validator: float = CLOSED
    router_trained: bool = False
    validator_trained: bool = False
    generator_trained: bool = False
    estimated_error: float | None = None
    """The neural tier's estimated error at `validator`."""
    neural_score: str = "validator"
    """What `validator` is a threshold on: the validator's p ("validator") or the generator's own
    confidence ("confidence"), whichever serves more answers within the bound on the same
    out-of-sample points (a validator fitted on few mistakes can rank worse than the confidence)."""
    acceptance: float = CLOSED
    """The semantic store's threshold on the acceptance model's p."""
    acceptance_error: float | None = None
    """The learned tier's estimated error of served answers at `acceptance`."""
    neural_regions: dict[str, list[float]] = field(default_factory=dict)
    """Per pattern (`regions.pattern_of`): [labelled answers at `validator`, of them wrong, upper
    bound on its error], for the generator in use. Never mutated: calibration publishes a new one."""
    open_regions: frozenset[str] = frozenset()
    """The patterns whose evidence bounds the neural tier's error under δ: the only ones it serves."""

    def to_json(self) -> str:
        data: dict[str, Any] = asdict(self)
        data["open_regions"] = sorted(self.open_regions)
        return json.dumps(data)

    @property
    def neural_calibrated(self) -> bool:
        """Whether the neural tier may serve at all: its models learned and a safe threshold found."""
        return self.generator_trained and self.validator_trained and self.validator < CLOSED

    def accepts(self, validator_p: float, confidence: float) -> bool:
        """Whether the neural tier's threshold passes an answer with this validator p and confidence."""
        score = confidence if self.neural_score == "confidence" else validator_p
        return self.validator < CLOSED and score >= self.validator

    def region_open(self, query: str) -> bool:
        """Whether the question's region has shown, by its own evidence, an error under δ."""
        return pattern_of(query) in self.open_regions

    def serves(self, query: str, validator_p: float, confidence: float) -> bool:
        """Whether the neural tier serves this answer: past the threshold, in an open region."""
        return self.accepts(validator_p, confidence) and self.region_open(query)

    @classmethod
    def from_json(cls, text: str | None) -> Thresholds:
        if not text:
            return cls()
        try:
            data = json.loads(text)
            data["open_regions"] = frozenset(data.get("open_regions", ()))
            return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})
        except (ValueError, TypeError):
            return cls()
