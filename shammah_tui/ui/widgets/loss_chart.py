"""Loss curves of the three local models, live while a run trains."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from textual_plotext import Plot

from shammah_tui.formatting import MAX_PLOT_POINTS, downsample
from shammah_tui.core.kinds import MODELS
from shammah_tui.ui.widgets.palette import MODEL_RGB
from shammah_tui.ui.widgets.threaded_plot import ThreadedPlot

#: Loss points kept per model (drawn downsampled to ≤ 300).
KEEP = 20_000


class LossChart(ThreadedPlot):
    """Generator loss on the left axis, router and validator losses on the right.

    The scales differ (token cross-entropy vs binary), so the classifiers get
    their own axis. `extend` only marks the chart dirty; `redraw` rebuilds it.
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._losses: dict[str, list[float]] = {m: [] for m in MODELS}

    def points(self, model: str) -> list[float]:
        """Every kept loss of `model`, oldest first."""
        return list(self._losses.get(model, []))

    def set_history(self, model: str, losses: Iterable[float]) -> None:
        """Replace a model's curve (from the store)."""
        self._losses[model] = list(losses)[-KEEP:]
        self.dirty = True

    def extend(self, model: str, losses: Iterable[float]) -> None:
        """Append new points to a model's curve."""
        series = self._losses.setdefault(model, [])
        series.extend(losses)
        del series[:-KEEP]
        self.dirty = True

    def snapshot(self) -> tuple[dict[str, list[float]], int]:
        # Two points per column is all braille can show; the worker downsamples to that.
        limit = max(20, min(MAX_PLOT_POINTS, 2 * self.size.width))
        return {m: list(v) for m, v in self._losses.items()}, limit

    def draw(self, plt: Plot, data: Any) -> None:
        losses, limit = data
        if not any(losses.values()):
            plt.xticks([])
            plt.yticks([])
            plt.xlim(0, 1)
            plt.ylim(0, 1)
            plt.text("no training yet", 0.5, 0.5, alignment="center")
            return
        longest = 0
        for model in MODELS:
            values = losses.get(model) or []
            if not values:
                continue
            longest = max(longest, len(values))
            xs, ys = downsample(values, limit)
            side = "left" if model in ("generator", "adapter") else "right"
            plt.plot(xs, ys, color=MODEL_RGB[model], marker="braille", yside=side)
        plt.xticks(_int_ticks(longest))


def _int_ticks(n: int) -> list[float]:
    """A few round whole-number ticks from 1 to n."""
    if n <= 1:
        return [1]
    raw = (n - 1) / 4
    magnitude = 10 ** (len(str(int(raw))) - 1) if raw >= 1 else 1
    step = max(1, int(round(raw / magnitude)) * magnitude)
    ticks: list[float] = [1, *range(step, n + 1, step)]
    return ticks
