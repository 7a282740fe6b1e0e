"""Numbers, stats and chart data as text: pure helpers (no Textual, no I/O).

The CLI and the UI show the same figures through these, so a figure reads the same everywhere.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from shammah_tui.core.kinds import SOURCES
from shammah_tui.core.stats import Stats

#: Most points a chart line is drawn with (a plot is ~100 columns wide).
MAX_PLOT_POINTS = 300


def compact_json(value: Any, limit: int = 48) -> str:
    """One line of JSON, cut to `limit` characters with an ellipsis."""
    try:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return ellipsize(one_line(text), limit)


def pretty_json(value: Any) -> str:
    """Indented JSON for the detail view."""
    try:
        return json.dumps(value, ensure_ascii=False, indent=2, default=str)
    except (TypeError, ValueError):
        return repr(value)


def one_line(text: str) -> str:
    """Collapse whitespace (newlines included) to single spaces."""
    return " ".join(text.split())


def ellipsize(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, ending in an ellipsis when cut."""
    if limit <= 0:
        return ""
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


def format_ms(ms: float | None) -> str:
    """A duration in milliseconds, compact: `0.8 ms`, `42 ms`, `1.25 s`, `2m 05s`."""
    if ms is None:
        return "—"
    if ms < 10:
        return f"{ms:.1f} ms"
    if ms < 1000:
        return f"{ms:.0f} ms"
    return format_seconds(ms / 1000)


def format_seconds(seconds: float | None) -> str:
    """A duration in seconds, compact: `3.2 s`, `1m 05s`, `1h 02m`."""
    if seconds is None or seconds != seconds or seconds < 0:
        return "—"
    if seconds < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def format_pct(value: float | None, digits: int = 1) -> str:
    """A share in [0, 1] as a percentage, or a dash when unknown."""
    if value is None:
        return "—"
    return f"{value * 100:.{digits}f}%"


def format_count(n: int | float | None) -> str:
    """Thousands separated: 12,345; a dash when unknown."""
    if n is None:
        return "—"
    return f"{int(round(n)):,}"


def format_figure(value: int | float | None) -> str:
    """A measured figure with three significant digits and no more: `1,235`, `512`, `12.3`, `1.23`,
    `0.0123`; whole numbers with thousands separated; a dash when unknown."""
    if value is None or isinstance(value, bool):
        return "—" if value is None else str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if value != value or value in (float("inf"), float("-inf")):
        return str(value)
    magnitude = abs(value)
    if magnitude >= 100 or magnitude == 0:
        return f"{value:,.0f}"
    decimals = 1 if magnitude >= 10 else 2 if magnitude >= 1 else 2 - int(math.floor(math.log10(magnitude)))
    return f"{value:.{decimals}f}"


def format_params(n: int | float | None) -> str:
    """A parameter count: 1.49M, 820k."""
    if n is None:
        return "?"
    n = float(n)
    if n >= 1e9:
        return f"{n / 1e9:.2f}B"
    if n >= 1e6:
        return f"{n / 1e6:.2f}M"
    if n >= 1e3:
        return f"{n / 1e3:.0f}k"
    return f"{n:.0f}"


def format_loss(value: float | None) -> str:
    """A loss value with 4 significant figures."""
    if value is None:
        return "—"
    return f"{value:.4g}"


def source_rates(counts: Mapping[str, int]) -> dict[str, float | None]:
    """Share of each source among all answered queries (None when nothing was answered)."""
    total = sum(counts.get(s, 0) for s in SOURCES)
    return {s: (counts.get(s, 0) / total if total else None) for s in SOURCES}


def rolling_rates(sources: Sequence[str], window: int = 10, span: int = 50) -> dict[str, list[float]]:
    """Per source, its share (0–100) among the `window` queries ending at each of the last `span`.

    `sources` is oldest first. The result has one value per position of the last
    `span` queries, so a chart shows how the mix moved as queries came in.
    """
    out: dict[str, list[float]] = {s: [] for s in SOURCES}
    start = max(0, len(sources) - span)
    for end in range(start, len(sources)):
        chunk = sources[max(0, end - window + 1): end + 1]
        for s in SOURCES:
            out[s].append(100.0 * chunk.count(s) / len(chunk))
    return out


def downsample(values: Sequence[float], limit: int = MAX_PLOT_POINTS) -> tuple[list[float], list[float]]:
    """(x, y) with at most `limit` points: bucket means over the whole series.

    x is the index (1-based) of each bucket's middle point, so the axis keeps the
    true step count while the line is drawn with few points.
    """
    n = len(values)
    if n <= limit:
        return [float(i + 1) for i in range(n)], [float(v) for v in values]
    xs: list[float] = []
    ys: list[float] = []
    for b in range(limit):
        lo = b * n // limit
        hi = max(lo + 1, (b + 1) * n // limit)
        bucket = values[lo:hi]
        xs.append((lo + hi + 1) / 2)
        ys.append(sum(bucket) / len(bucket))
    return xs, ys


def eta_seconds(step: int, total: int, examples_per_s: float, batch_size: int) -> float | None:
    """Seconds left in a model's phase, from its measured throughput."""
    if examples_per_s <= 0 or total <= 0 or step >= total:
        return None if step < total else 0.0
    return (total - step) * batch_size / examples_per_s


def describe_models(info: Mapping[str, Any], settings: Any = None) -> tuple[str, str]:
    """(device, size) from `ModelsLoaded.info`, tolerant of the exact keys used.

    Looks for a `device` key and for parameter counts: `params` as a number or
    as a per-model dict (what `LocalModels.info()` gives), `model_params`,
    `*_params`, or nested per-model dicts with `params`.
    """
    device = str(info.get("device", "?"))
    answering = info.get("answer_model")
    if isinstance(answering, Mapping) and answering.get("trainable_params") != answering.get("params"):
        # The pre-trained model: what answers, and how much of it training changes.
        return device, (f"{answering.get('name', 'pre-trained')} · {format_params(float(answering.get('params', 0)))}"
                        f" params, adapter {format_params(float(answering.get('trainable_params', 0)))}")
    total = _find_params(info)
    if total:
        return device, f"{format_params(total)} params"
    if settings is not None:
        return device, f"{getattr(settings, 'n_embd', '?')}d × {getattr(settings, 'n_layer', '?')} layers"
    return device, ""


def _find_params(info: Mapping[str, Any]) -> float | None:
    for key in ("params", "model_params", "total_params", "parameters"):
        value = info.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    total = 0.0
    found = False
    for key, value in info.items():
        if key in ("params", "parameters") and isinstance(value, Mapping):  # per model: sum them
            numbers = [v for v in value.values() if isinstance(v, (int, float)) and not isinstance(v, bool)]
            if numbers:
                return float(sum(numbers))
        if isinstance(value, Mapping):
            inner = _find_params(value)
            if inner:
                total += inner
                found = True
        elif key.endswith("_params") and isinstance(value, (int, float)) and not isinstance(value, bool):
            total += float(value)
            found = True
    return total if found else None


def stats_text(stats: Stats) -> str:
    """engine.stats() as a few aligned plain-text lines (`stats`, `/stats`)."""
    by_source = stats.by_source
    rates = source_rates(by_source)
    lines = [f"{'source':<10}{'answers':>9}{'share':>9}"]
    for s in SOURCES:
        lines.append(f"{s:<10}{format_count(by_source.get(s, 0)):>9}{format_pct(rates[s]):>9}")
    lines += [
        "",
        f"queries {format_count(stats.queries)} · local share {format_pct(stats.local_share)}",
        f"examples {format_count(stats.examples_queued)} queued, {format_count(stats.examples_trained)} trained, "
        f"{format_count(stats.examples_exam)} in the exam · learned answers "
        f"{format_count(stats.learned_answers)} · {runs_phrase(stats)}",
        f"verified agreement {format_pct(stats.verified_agreement)} · estimated local error "
        f"{format_pct(stats.estimated_local_error)} (bound δ {format_pct(stats.error_bound)})",
        f"teacher tokens {format_count(stats.teacher_tokens_used)} used, "
        f"≈{format_count(stats.teacher_tokens_saved_estimate)} saved",
    ]
    saved = stats.saved.get("total") or {}
    if saved.get("requests"):
        lines.append(f"served locally {format_count(saved['requests'])} requests · measured saving "
                     f"{format_count(saved['input_tokens'])} in + {format_count(saved['output_tokens'])} out tokens, "
                     f"${saved['usd']:.4f} (prices of {stats.saved.get('prices_date')})")
    last = stats.last_run
    if last:
        run_id = stats.last_run_id
        title = f"run #{run_id}" if run_id is not None else "last run"
        lines += ["", f"{title:<10}{'old loss':>10}{'new loss':>10}{'change':>9}"]
        for model, change in last.items():
            lines.append(f"{model:<10}{format_loss(change.old_loss):>10}{format_loss(change.new_loss):>10}"
                         f"{change.improvement_pct:>+8.1f}%  {change.measured_on}".rstrip())
    return "\n".join(lines)


def join_nonempty(parts: Iterable[str], sep: str = " · ") -> str:
    """Join the non-empty parts."""
    return sep.join(p for p in parts if p)


def error_line(exc: BaseException) -> str:
    """An exception as one readable line, never a traceback.

    An exception with its own user-facing `message` (TeacherError, OpenFailed)
    shows just that; anything else shows its type and first line.
    """
    message = getattr(exc, "message", None)
    text = (message or str(exc)).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    return first if message else f"{type(exc).__name__}: {first}"


def runs_phrase(stats: Stats) -> str:
    """The training runs of `stats()` as counted: `3 runs`, or `5 runs done of 7 started` when some
    were cancelled or failed (every run takes an id, so `run #7` can follow 5 finished runs)."""
    done, started = stats.training_runs, stats.runs_started
    if started <= done:
        return plural(int(done), "run")
    return f"{plural(int(done), 'run')} done of {format_count(started)} started"


def join_words(items: Iterable[str], last: str = "and") -> str:
    """`a`, `a and b`, `a, b and c`: items as a sentence lists them."""
    words = [w for w in items if w]
    if len(words) <= 1:
        return "".join(words)
    return f"{', '.join(words[:-1])} {last} {words[-1]}"


def plural(n: int, word: str, many: str | None = None) -> str:
    """`1 turn`, `2 turns`, `1,024 examples`: a count and its noun."""
    return f"{n:,} {word if n == 1 else (many or word + 's')}"


#: How a teaching session ended (TeachSummary.stopped_because), in words.
TEACH_OUTCOMES = {
    "done": "finished",
    "iteration_limit": "stopped at the turn limit",
    "repeated_call": "stopped: the same tool call repeated",
    "max_tokens": "stopped: the teacher's reply was cut at its token limit",
    "refusal": "stopped: the teacher declined",
}


def teach_outcome(stopped_because: str | None) -> str:
    """How a teaching session ended, in words (`finished`, `stopped at the turn limit` …)."""
    reason = (stopped_because or "done").strip() or "done"
    return TEACH_OUTCOMES.get(reason, f"stopped: {reason.replace('_', ' ')}")


def tool_summary(summary: str) -> str:
    """A tool call's one-line summary as shown: one line, and no Python `None` for a missing value
    (`forward: None` reads `forward: —`)."""
    import re

    return re.sub(r"(?<=[:=])(\s*)None(?=$|[\s,;·)])", r"\1—", one_line(summary))


def code_blocks(markdown: str) -> list[str]:
    """The fenced code blocks of a Markdown text, in order, without their fences."""
    blocks: list[str] = []
    fence: str | None = None
    lines: list[str] = []
    for line in markdown.splitlines():
        stripped = line.lstrip()
        if fence is None:
            if stripped.startswith(("```", "~~~")):
                fence = stripped[:3]
                lines = []
        elif stripped.startswith(fence) and not stripped[3:].strip(fence[0]).strip():
            blocks.append("\n".join(lines))
            fence = None
        else:
            lines.append(line)
    if fence is not None and lines:  # an unclosed fence runs to the end
        blocks.append("\n".join(lines))
    return blocks
