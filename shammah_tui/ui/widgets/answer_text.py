"""How an answer's text is drawn: the badge line, then the plain body and the error line.

Both the answer view (while its answer is plain text, as most are) and the head above a Markdown
body draw it through `answer_content`, with the `answer--*` component styles of `app.tcss`.
"""

from __future__ import annotations

from textual.content import Content
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Static

#: The component classes that style an answer's badge, meta and error spans.
ANSWER_COMPONENTS = {"answer--badge", "answer--meta", "answer--error"}


def answer_content(widget: Widget, badge: str, meta: str, body: str = "", error: str = "") -> Content:
    """The badge and meta on one line, then `body` and `error` when set, styled by `widget`'s
    component styles (read at render time, so a theme change restyles it)."""
    lines = [Content.assemble((f" {badge} ", widget.get_visual_style("answer--badge")), " ",
                              (meta, widget.get_visual_style("answer--meta")))]
    if body:
        lines.append(Content(body))
    if error:
        lines.append(Content.styled(f"✗ {error}", widget.get_visual_style("answer--error")))
    return Content("\n").join(lines)


class AnswerText(Static):
    """The badge line over a Markdown body (and the error, when there is no body to show)."""

    COMPONENT_CLASSES = ANSWER_COMPONENTS

    badge: reactive[str] = reactive("", layout=True)
    """The source or state, shown on its coloured badge."""
    meta: reactive[str] = reactive("", layout=True)
    """Latency, verification, progress: what follows the badge."""
    error: reactive[str] = reactive("", layout=True)
    """What went wrong ("" when nothing did)."""

    def __init__(self, badge: str, meta: str, error: str = "") -> None:
        super().__init__(markup=False)
        self.set_reactive(AnswerText.badge, badge)
        self.set_reactive(AnswerText.meta, meta)
        self.set_reactive(AnswerText.error, error)

    def render(self) -> Content:
        return answer_content(self, self.badge, self.meta, error=self.error)
