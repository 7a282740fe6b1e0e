"""The source mix over the last queries: one line per source, as a moving share."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from textual_plotext import Plot

from shammah_tui.formatting import rolling_rates
from shammah_tui.core.kinds import SOURCES, Source
from shammah_tui.ui.widgets.palette import SOURCE_RGB
from shammah_tui.ui.widgets.threaded_plot import ThreadedPlot

#: Queries the chart spans, and the moving window each point averages over.
SPAN = 50
WINDOW = 10


class RateChart(ThreadedPlot):
    """Share (%) of each source among the last `WINDOW` queries, over the last `SPAN`.

    `add`/`set_sources` only mark the chart dirty; `redraw` (called from the
    metrics timer) rebuilds it when something changed.
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._sources: list[Source] = []

    def set_sources(self, sources: Iterable[str]) -> None:
        """Replace the history (oldest first)."""
        self._sources = [s for s in sources if s in SOURCES][-(SPAN + WINDOW):]
        self.dirty = True

    def add(self, source: str) -> None:
        """One more answered query."""
        if source in SOURCES:
            self._sources.append(source)
            del self._sources[: -(SPAN + WINDOW)]
            self.dirty = True

    def snapshot(self) -> list[str]:
        return list(self._sources)

    def draw(self, plt: Plot, data: Any) -> None:
        rates = rolling_rates(data, WINDOW, SPAN)
        n = len(rates["forward"])
        plt.ylim(0, 100)
        plt.yticks([0, 50, 100])
        if not n:
            plt.xticks([])
            plt.text("no answers yet", 0.5, 50, alignment="center")
            return
        xs = list(range(1, n + 1))
        for source in SOURCES:
            plt.plot(xs, rates[source], color=SOURCE_RGB[source], marker="braille")
        plt.xticks(_int_ticks(n))


def _int_ticks(n: int) -> list[float]:
    """Five evenly spread whole-number ticks from 1 to n (fewer when n is small)."""
    ticks: list[float] = sorted({1 + round(i * (n - 1) / 4) for i in range(5)}) if n > 1 else [1]
    return ticks
