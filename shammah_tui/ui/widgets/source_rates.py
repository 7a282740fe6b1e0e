"""The four source rates as numbers, for this session and for all time."""

from __future__ import annotations

from collections.abc import Mapping

from textual.content import Content
from textual.widgets import Static

from shammah_tui.formatting import format_pct, source_rates
from shammah_tui.core.kinds import SOURCES
from shammah_tui.ui.widgets.palette import SOURCE_RGB, hex_colour

#: Column widths: source name, then share + count per scope.
NAME_W = 9
CELL_W = 13


class SourceRates(Static):
    """A small table: source | session share, count | all-time share, count (plus local total)."""

    def on_mount(self) -> None:
        self.update_counts({}, {})

    def update_counts(self, session: Mapping[str, int], all_time: Mapping[str, int]) -> None:
        """Show the shares of each source (and of all local sources together)."""
        lines = [Content.assemble(("source".ljust(NAME_W), "underline $text-muted"), " ",
                                  ("session".rjust(CELL_W), "underline $text-muted"), " ",
                                  ("all time".rjust(CELL_W), "underline $text-muted"))]
        for source in (*SOURCES, "local"):
            style = f"bold {hex_colour(SOURCE_RGB[source])}" if source in SOURCE_RGB else "bold italic"
            lines.append(Content.assemble((source.ljust(NAME_W), style), " ",
                                          _cell(session, source), " ", _cell(all_time, source)))
        self.update(Content("\n").join(lines))


def _cell(counts: Mapping[str, int], source: str) -> str:
    total = sum(counts.get(s, 0) for s in SOURCES)
    count = total - counts.get("forward", 0) if source == "local" else counts.get(source, 0)
    if not total:
        return "—".rjust(CELL_W)
    rate = source_rates(counts)[source] if source != "local" else count / total
    return f"{format_pct(rate):>7}{count:>6}"[-CELL_W:].rjust(CELL_W)
