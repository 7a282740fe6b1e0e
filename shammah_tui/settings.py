"""Settings: documented defaults, overridden by settings.toml, then environment, then flags.

An invalid value raises `SettingsError` naming the key and the problem; the CLI
turns it into one line and exit code 2.
"""

from __future__ import annotations

import fnmatch
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shammah_tui.core.kinds import TEACHERS, TIERS, TeacherChoice, Tier

if TYPE_CHECKING:  # both import torch; the settings load long before it
    from shammah_tui.models.generator import GeneratorConfig
    from shammah_tui.training.trainer import TrainConfig


#: What the neural tier can answer with (Settings.answer_model).
ANSWER_MODELS = ("scratch", "smollm2")


class SettingsError(ValueError):
    """A setting has a bad value; the message names the key."""


@dataclass(frozen=True)
class Settings:
    """Every knob of the engine, with the default the design asks for."""

    teacher: TeacherChoice = "auto"
    """`auto` (claude when ANTHROPIC_API_KEY is set, else offline), `offline` or `claude`."""
    claude_model: str = "claude-sonnet-5"
    """Model name sent to the Messages API."""
    batch_size: int = 32
    """A full queue of this many new examples starts a training run."""
    step_batch_size: int = 64
    """Examples in each optimizer step (new and replayed, by replay_fraction). Six offline teaching
    rounds took held-out arithmetic to 0.84 with 32 and to 0.88 with 64, in 512 s and 545 s."""
    learning_rate: float = 2e-3
    """AdamW learning rate of the generator, the peak of each run's cosine (warm-up first, down to a
    tenth by the run's end). At 1e-4 five runs took its loss only from 7.8 to 3.6 on the curriculum
    stream; 2e-3 is the skills study's rate (docs/skills-study.md)."""
    classifier_learning_rate: float = 3e-3
    """AdamW learning rate of the router and validator (small heads that start from nothing)."""
    train_passes: float = 26.0
    """How many times a run shows the generator each new example, on average: a run's steps are
    ceil(train_passes × new examples / new examples per batch), within the two bounds below."""
    min_steps_per_run: int = 20
    """Fewest generator steps in a run, however few examples it brings."""
    max_steps_per_run: int = 2000
    """Most generator steps in a run (a teaching session's thousands of examples: a few minutes)."""
    steps_per_run: int = 0
    """0: a run's generator steps follow its new examples (train_passes). Above 0: exactly this many
    steps per run, whatever it brings."""
    replay_fraction: float = 0.25
    """Share of each batch drawn from earlier (trained) examples, so old knowledge stays. Six offline
    teaching rounds: half replayed with 20 passes, held-out arithmetic 0.90 in 582 s; a quarter
    with 26 passes, 0.90 in 520 s (words 1.00, leap years 0.95-0.96 both ways)."""
    answer_model: str = "scratch"
    """What the neural tier answers with and training teaches: `scratch` (the small generator
    trained from nothing) or `smollm2` (SmolLM2-135M-Instruct, frozen, with LoRA adapters; needs
    its GGUF file, see README). Without the file the app says so and uses `scratch`."""
    base_model_dir: str = ""
    """Folder of the pre-trained model's conversion (made once from its GGUF file); empty: the data
    dir's models/base."""
    lora_rank: int = 8
    """Rank of each LoRA adapter (on the attention and MLP projections)."""
    lora_top_layers: int = 0
    """Adapters on the top this many blocks only (0: all 30); fewer train faster."""
    adapter_learning_rate: float = 2e-3
    """AdamW learning rate of the adapters."""
    adapter_train_passes: float = 4.0
    """Like train_passes, for the adapters: a pre-trained model needs far fewer passes."""
    adapter_max_steps_per_run: int = 400
    """Most adapter steps in a run (a step of 16 short examples takes ~1-3 s on a CPU core)."""
    max_replay_fraction: float = 0.75
    """The most of each batch a run replays when its new examples are few next to what it can
    replay (1 − new ÷ replayable, never under replay_fraction); its steps still give each new example
    train_passes. Over 1,000 forwarded questions after `teach --rounds 3` (bench/shift_stream.py,
    seed 0, one taught data dir), held-out arithmetic went from 0.62 to 0.54 with a quarter
    replayed, to 0.71 with three quarters."""
    n_embd: int = 128
    """Generator hidden size."""
    n_layer: int = 2
    """Generator transformer layers."""
    n_head: int = 4
    """Generator attention heads."""
    block_size: int = 256
    """Generator context length in tokens."""
    vocab_size: int = 8000
    """Byte-level BPE vocabulary size (fixed once a generator is trained)."""
    tier_order: tuple[Tier, ...] = ("template", "learned", "neural")
    """Local tiers tried in order before forwarding. Cheapest first by default (a template is a parse,
    a stored answer a lookup, the generator a decode); ["neural", "learned", "template"] is the
    original design's order, and a tier left out is off."""
    spot_check_rate: float = 0.1
    """ε: probability that a locally answered query is also sent to the teacher."""
    error_bound: float = 0.02
    """δ: the estimated error rate of local answers is kept under this bound."""
    max_new_tokens: int = 64
    """Longest neural answer, in tokens."""
    tool_iterations: int = 40
    """Tool-loop turns before a teaching session is stopped (the offline teacher takes 4 a round)."""
    device: str = "auto"
    """`auto` (CUDA when available), `cpu` or `cuda`."""
    torch_threads: int = 1
    """torch's threads per operation. One, because anything else running (the UI itself, another
    process) makes a second one wait: a training step took 1,775 ms with 2 threads and 324 ms with 1
    while one other process ran on this 2-core machine (with nothing else running, 2 are ~1.8x faster)."""
    seed: int = 0
    """Seed for model initialisation, sampling and spot checks."""
    auto_train: bool = True
    """Start a training run when the queue reaches batch_size."""
    encoder_path: str = ""
    """Folder of the sentence encoder (all-MiniLM-L6-v2 layout); empty: look in the Hugging Face
    cache ($HF_HOME). Without one the learned tier matches questions by wording only."""
    encoder_download: bool = False
    """Allow fetching the sentence encoder from the Hugging Face hub when it is nowhere on disk."""
    theme: str = "textual-dark"
    """The terminal UI's colour theme (ctrl+p, "Theme"; the UI saves your choice here)."""
    prices_usd_per_mtok: str = "*opus*=15/75, *sonnet*=3/15, *haiku*=1/5"
    """Claude's list prices, dollars per million input/output tokens, as `model pattern=in/out`
    (shell-style patterns, first match wins): what a local answer saved is priced with them.
    A model no pattern matches saves tokens but no counted dollars."""
    prices_date: str = "2025-10-15"
    """The day the price table was read off Anthropic's pricing page; reports say it beside dollars."""

    def generator_config(self) -> GeneratorConfig:
        """The generator's shape (its vocabulary size is the tokenizer's, set when the models load)."""
        from shammah_tui.models.generator import GeneratorConfig

        return GeneratorConfig(vocab_size=self.vocab_size, n_embd=self.n_embd, n_layer=self.n_layer,
                               n_head=self.n_head, block_size=self.block_size)

    def adapter_recipe(self) -> dict[str, Any]:
        """TrainConfig fields the adapters train with instead of the generator's."""
        return {"learning_rate": self.adapter_learning_rate, "train_passes": self.adapter_train_passes,
                "max_steps_per_run": self.adapter_max_steps_per_run,
                "min_steps_per_run": min(4, self.adapter_max_steps_per_run), "warmup_steps": 10,
                "batch_size": min(self.step_batch_size, 16),
                # A decode of the 135M model costs ~100x the generator's: each run answers 30 of
                # each skill's held-out questions instead of 100.
                "held_out_per_skill": 30}

    def train_config(self) -> TrainConfig:
        """How the BatchTrainer trains."""
        from shammah_tui.training.trainer import TrainConfig

        return TrainConfig(batch_size=self.step_batch_size, learning_rate=self.learning_rate,
                           classifier_learning_rate=self.classifier_learning_rate,
                           replay_fraction=self.replay_fraction,
                           max_replay_fraction=self.max_replay_fraction, seed=self.seed,
                           train_passes=self.train_passes, min_steps_per_run=self.min_steps_per_run,
                           max_steps_per_run=self.max_steps_per_run, steps_per_run=self.steps_per_run)

    def price_per_mtok(self, model: str) -> tuple[float, float] | None:
        """(input, output) dollars per million tokens for `model`; None when the table lacks it."""
        for pattern, price in _prices_or_none(self.prices_usd_per_mtok) or ():
            if fnmatch.fnmatchcase(model.lower(), pattern.lower()):
                return price
        return None

    def with_overrides(self, values: Mapping[str, Any], origin: str) -> Settings:
        """A copy with `values` applied and validated; unknown keys are errors."""
        known = {f.name: f for f in fields(self)}
        changes: dict[str, Any] = {}
        for key, raw in values.items():
            if raw is None:
                continue
            if key not in known:
                raise SettingsError(f"{origin}: unknown setting {key!r}")
            changes[key] = _coerce(key, raw, type(getattr(self, key)), origin)
        result = replace(self, **changes)
        result.validate(origin)
        return result

    def validate(self, origin: str = "settings") -> None:
        """Raise SettingsError for the first value out of range."""
        checks: list[tuple[bool, str, str]] = [
            (self.teacher in TEACHERS, "teacher", f"must be one of {', '.join(TEACHERS)}"),
            (bool(self.claude_model.strip()), "claude_model", "must not be empty"),
            (1 <= self.batch_size <= 4096, "batch_size", "must be between 1 and 4096"),
            (1 <= self.step_batch_size <= 4096, "step_batch_size", "must be between 1 and 4096"),
            (0 < self.learning_rate <= 1, "learning_rate", "must be in (0, 1]"),
            (0 < self.classifier_learning_rate <= 1, "classifier_learning_rate", "must be in (0, 1]"),
            (0 < self.train_passes <= 1000, "train_passes", "must be in (0, 1000]"),
            (1 <= self.min_steps_per_run <= 100_000, "min_steps_per_run", "must be between 1 and 100000"),
            (self.min_steps_per_run <= self.max_steps_per_run <= 100_000, "max_steps_per_run",
             "must be between min_steps_per_run and 100000"),
            (0 <= self.steps_per_run <= 100_000, "steps_per_run", "must be between 0 and 100000"),
            (0 <= self.replay_fraction < 1, "replay_fraction", "must be in [0, 1)"),
            (self.answer_model in ANSWER_MODELS, "answer_model", f"must be one of {', '.join(ANSWER_MODELS)}"),
            (1 <= self.lora_rank <= 256, "lora_rank", "must be between 1 and 256"),
            (0 <= self.lora_top_layers <= 1000, "lora_top_layers", "must be between 0 and 1000"),
            (0 < self.adapter_learning_rate <= 1, "adapter_learning_rate", "must be in (0, 1]"),
            (0 < self.adapter_train_passes <= 1000, "adapter_train_passes", "must be in (0, 1000]"),
            (1 <= self.adapter_max_steps_per_run <= 100_000, "adapter_max_steps_per_run",
             "must be between 1 and 100000"),
            (0 <= self.max_replay_fraction < 1, "max_replay_fraction", "must be in [0, 1)"),
            (8 <= self.n_embd <= 4096, "n_embd", "must be between 8 and 4096"),
            (1 <= self.n_layer <= 48, "n_layer", "must be between 1 and 48"),
            (self.n_head >= 1 and self.n_embd % self.n_head == 0, "n_head", "must divide n_embd"),
            (64 <= self.block_size <= 4096, "block_size", "must be between 64 and 4096"),
            (512 <= self.vocab_size <= 200_000, "vocab_size", "must be between 512 and 200000"),
            (len(self.tier_order) >= 1 and len(set(self.tier_order)) == len(self.tier_order)
             and all(t in TIERS for t in self.tier_order), "tier_order",
             f"must list distinct tiers from {', '.join(TIERS)}"),
            (0 <= self.spot_check_rate <= 1, "spot_check_rate", "must be in [0, 1]"),
            (0 < self.error_bound < 1, "error_bound", "must be in (0, 1)"),
            (1 <= self.max_new_tokens <= 1024, "max_new_tokens", "must be between 1 and 1024"),
            (1 <= self.tool_iterations <= 200, "tool_iterations", "must be between 1 and 200"),
            (self.device in ("auto", "cpu", "cuda"), "device", "must be auto, cpu or cuda"),
            (1 <= self.torch_threads <= 256, "torch_threads", "must be between 1 and 256"),
            (0 <= self.seed < 2**31, "seed", "must be between 0 and 2147483647"),
            (bool(self.theme.strip()), "theme", "must not be empty"),
            (_prices_or_none(self.prices_usd_per_mtok) is not None, "prices_usd_per_mtok",
             "must be `pattern=in/out` items, comma-separated, with non-negative numbers"),
            (bool(self.prices_date.strip()), "prices_date", "must not be empty"),
        ]
        for ok, key, problem in checks:
            if not ok:
                raise SettingsError(f"{origin}: {key} {problem} (got {getattr(self, key)!r})")


def _prices_or_none(text: str) -> list[tuple[str, tuple[float, float]]] | None:
    table = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        pattern, _, price = item.partition("=")
        cost_in, _, cost_out = price.partition("/")
        try:
            pair = (float(cost_in), float(cost_out))
        except ValueError:
            return None
        if not pattern.strip() or not all(0 <= p < 1e6 for p in pair):
            return None
        table.append((pattern.strip(), pair))
    return table


def _coerce(key: str, raw: Any, kind: type, origin: str) -> Any:
    """Turn a TOML or environment value into the field's type, or say why not."""
    where = f"{origin}: {key}"
    if kind is bool:
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            return raw.lower() in ("1", "true", "yes", "on")
        raise SettingsError(f"{where} must be true or false (got {raw!r})")
    if kind is int:
        if isinstance(raw, bool):
            raise SettingsError(f"{where} must be an integer (got {raw!r})")
        if isinstance(raw, int):
            return raw
        if isinstance(raw, str):
            try:
                return int(raw)
            except ValueError:
                pass
        raise SettingsError(f"{where} must be an integer (got {raw!r})")
    if kind is float:
        if isinstance(raw, (int, float)) and not isinstance(raw, bool):
            return float(raw)
        if isinstance(raw, str):
            try:
                return float(raw)
            except ValueError:
                pass
        raise SettingsError(f"{where} must be a number (got {raw!r})")
    if kind is tuple:
        if isinstance(raw, str):
            raw = [part.strip() for part in raw.split(",") if part.strip()]
        if isinstance(raw, list) and all(isinstance(item, str) for item in raw):
            return tuple(raw)
        raise SettingsError(f"{where} must be a list of tier names (got {raw!r})")
    if not isinstance(raw, str):
        raise SettingsError(f"{where} must be a string (got {raw!r})")
    return raw


#: Environment variables and the settings they override.
ENV_VARS = {"SHAMMAH_TEACHER": "teacher", "SHAMMAH_MODEL": "claude_model"}


def load_settings(data_dir: Path, overrides: Mapping[str, Any] | None = None,
                  environ: Mapping[str, str] | None = None) -> Settings:
    """Defaults ← settings.toml in data_dir ← environment ← explicit overrides (flags)."""
    from shammah_tui.paths import SETTINGS_NAME

    settings = Settings()
    path = data_dir / SETTINGS_NAME
    if path.exists():
        try:
            table = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise SettingsError(f"{path}: not valid TOML ({exc})") from None
        except OSError as exc:
            raise SettingsError(f"{path}: cannot be read ({exc.strerror})") from None
        settings = settings.with_overrides(table, str(path))
    environ = os.environ if environ is None else environ
    env_values = {key: environ[var] for var, key in ENV_VARS.items() if environ.get(var)}
    if env_values:
        settings = settings.with_overrides(env_values, "environment")
    if overrides:
        settings = settings.with_overrides(overrides, "command line")
    return settings


def default_settings_toml() -> str:
    """The documented defaults, written to settings.toml on first start."""
    lines = ["# Shammah TUI settings. Flags and environment variables override these.", ""]
    for f in fields(Settings):
        value = getattr(Settings(), f.name)
        doc = _FIELD_DOCS.get(f.name, "")
        for doc_line in " ".join(doc.split()).splitlines() if doc else []:
            lines.append(f"# {doc_line}")
        lines.append(f"{f.name} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, tuple):
        return "[" + ", ".join(f'"{v}"' for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _field_docs() -> dict[str, str]:
    """Attribute docstrings of Settings, read from the source so the TOML documents itself."""
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(Settings))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs: dict[str, str] = {}
    for node, following in zip(body, body[1:]):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            if isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant):
                docs[node.target.id] = str(following.value.value)
    return docs


_FIELD_DOCS: dict[str, str] = _field_docs()


def update_settings_file(path: Path, key: str, value: Any) -> Settings:
    """Set one key in the settings file at `path`, keeping every other line and comment.

    The value is checked first (`SettingsError` names the problem, and the file is left as it
    was). The key's line is rewritten in place, a trailing comment kept; a key the file lacks
    is appended. The file is replaced atomically. Returns the file's settings after the change.
    """
    from shammah_tui.atomic import write_text_atomically

    text = path.read_text(encoding="utf-8") if path.exists() else ""
    try:
        current = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path}: not valid TOML ({exc})") from None
    updated = Settings().with_overrides({**current, key: value}, str(path))
    rendered = _toml_value(getattr(updated, key))
    lines = text.splitlines()
    for i, line in enumerate(lines):
        head, sep, rest = line.partition("=")
        if sep and head.strip() == key and not line.lstrip().startswith("#"):
            value_lines, comment = _value_extent(lines, i, rest)
            indent = head[: len(head) - len(head.lstrip())]
            lines[i: i + value_lines] = [f"{indent}{key} = {rendered}{comment}"]
            break
    else:
        lines.append(f"{key} = {rendered}")
    write_text_atomically(path, "\n".join(lines) + "\n")
    return updated


def _value_extent(lines: list[str], start: int, rest: str) -> tuple[int, str]:
    """(how many lines the value starting in `rest` spans, the trailing comment of its last line)."""
    for count in range(1, len(lines) - start + 1):
        body = "\n".join([rest, *lines[start + 1: start + count]])
        cuts = [len(body)] + [j for j, ch in enumerate(body) if ch == "#"]
        for cut in sorted(cuts):
            try:
                tomllib.loads("v =" + body[:cut])
            except tomllib.TOMLDecodeError:
                continue
            tail = body[cut:]
            return count, (" " + tail.strip() if tail.strip() else "")
    return 1, ""
