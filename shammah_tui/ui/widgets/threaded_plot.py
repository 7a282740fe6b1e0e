"""A plotext chart whose figure is built in a worker thread, off the UI loop.

`textual_plotext.PlotextPlot` builds its figure in `render()`, on the UI loop:
10–25 ms of pure Python per redraw, enough to push the event loop's p99 lag
past one frame while a run trains. Here the figure is built in a thread from a
snapshot of the data (the GIL is released to the loop every few ms), turned
into a `rich.text.Text` there too, and handed back in a message; the UI loop
only swaps the text in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual import work
from textual.events import Resize
from textual.message import Message
from textual.widgets import Static
from textual_plotext import Plot


class ThreadedPlot(Static):
    """Base class: subclasses give `snapshot()` (UI loop) and `draw(plt, data)` (worker thread)."""

    @dataclass
    class Built(Message, bubble=False):
        """A figure, built in the worker, ready to show."""

        text: Text
        """The figure as styled text."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id)
        self._plt = Plot()  # only the build worker touches it (one build at a time)
        self._building = False
        self.dirty = True
        """True when the data changed since the last redraw."""

    def snapshot(self) -> Any:
        """A copy of the data to draw (called on the UI loop)."""
        raise NotImplementedError

    def draw(self, plt: Plot, data: Any) -> None:
        """Draw `data` on a cleared figure (called in the worker thread)."""
        raise NotImplementedError

    @property
    def settled(self) -> bool:
        """True when the figure shown is built from the current data and size."""
        return not self.dirty and not self._building

    def on_resize(self, event: Resize) -> None:
        self.dirty = True

    def redraw(self) -> None:
        """Start a build if the data changed and none is running (a timer calls this)."""
        width, height = self.size
        if not self.dirty or self._building or width <= 0 or height <= 0:
            return
        self.dirty = False
        self._building = True
        self._build(self.snapshot(), width, height)

    @work(thread=True, group="plot", exit_on_error=False)
    def _build(self, data: Any, width: int, height: int) -> None:
        try:
            plt = self._plt
            plt.clear_figure()
            plt.theme("clear")  # no colours but the lines': the widget's own style shows through
            plt.plotsize(width, height)
            plt._set_size(width, height)  # as textual_plotext does: plotsize alone does not stick
            self.draw(plt, data)
            text = Text.from_ansi(plt.build(), no_wrap=True)
        except Exception as exc:  # a chart must never take the app down
            text = Text(f"chart unavailable: {type(exc).__name__}")
        self.post_message(self.Built(text))

    def on_threaded_plot_built(self, message: Built) -> None:
        message.stop()
        self._building = False
        self.update(message.text, layout=False)
