"""A progress bar drawn from its width at render time (no animation, no rounding on update)."""

from __future__ import annotations

from typing import ClassVar

from rich.style import Style
from textual.app import RenderResult
from textual.reactive import reactive
from textual.renderables.bar import Bar as BarRenderable
from textual.widget import Widget


class RunBar(Widget):
    """A one-line bar filled to `fraction`.

    Textual's ProgressBar rounds the fraction to the bar's width when the value
    is set, so the same progress can draw differently depending on whether the
    bar had been laid out yet; this one draws from `fraction` and its width when
    it renders, so a frame depends only on the data.
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {"run-bar--bar", "run-bar--background"}

    fraction: reactive[float] = reactive(0.0)
    """How much is done, in [0, 1]."""

    def validate_fraction(self, fraction: float) -> float:
        return min(1.0, max(0.0, fraction))

    def render(self) -> RenderResult:
        bar = self.get_component_rich_style("run-bar--bar")
        background = self.get_component_rich_style("run-bar--background")
        return BarRenderable(
            highlight_range=(0, self.size.width * self.fraction),
            highlight_style=Style.from_color(bar.color),
            background_style=Style.from_color(background.color),
        )
