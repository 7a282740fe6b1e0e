"""The one-line header: app name, teacher, device and model size, what is running."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.reactive import reactive
from textual.widgets import Label

#: What the models slot says before the models are ready, by state.
MODEL_STATES = {
    "opening": "opening data…",
    "loading": "⏳ loading models…",
    "off": "models not loaded",
    "failed": "✗ models unavailable",
}


class HeaderBar(Horizontal):
    """App name, teacher label, models (device, size) and the current activity."""

    teacher: reactive[str] = reactive("…")
    """The teacher's label, e.g. `offline curriculum` or `claude-sonnet-5`."""
    teacher_kind: reactive[str] = reactive("")
    """`offline` or `claude`: picks the teacher's colour."""
    models_state: reactive[str] = reactive("opening")
    """`opening`, `loading`, `ready`, `off` or `failed`."""
    device: reactive[str] = reactive("")
    """Where the models run (`cpu`, `cuda:0`), once loaded."""
    model_size: reactive[str] = reactive("")
    """Parameter count and shape of the models, once loaded."""
    activity: reactive[str] = reactive("")
    """What runs now (`training run #3 · 45%`, `teaching`), empty when idle."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._shown_length = 0

    def compose(self) -> ComposeResult:
        yield Label("◉ Shammah", id="brand")
        yield Label(id="teacher")
        yield Label(id="models")
        yield Label(id="activity")

    def on_mount(self) -> None:
        self._show_teacher()
        self._show_models()
        self._show_activity()

    def watch_teacher(self) -> None:
        self._show_teacher()

    def watch_teacher_kind(self) -> None:
        self._show_teacher()

    def watch_models_state(self) -> None:
        self._show_models()

    def watch_device(self) -> None:
        self._show_models()

    def watch_model_size(self) -> None:
        self._show_models()

    def watch_activity(self) -> None:
        self._show_activity()

    def _show_teacher(self) -> None:
        if not self.is_mounted:
            return
        label = self.query_one("#teacher", Label)
        label.update(f"teacher: {self.teacher}")
        label.set_class(self.teacher_kind == "offline", "-offline")
        label.set_class(self.teacher_kind == "claude", "-claude")

    def _show_models(self) -> None:
        if not self.is_mounted:
            return
        label = self.query_one("#models", Label)
        if self.models_state == "ready":
            parts = [p for p in (self.device, self.model_size) if p]
            label.update(" · ".join(parts) or "models ready")
        else:
            label.update(MODEL_STATES.get(self.models_state, self.models_state))
        for state in ("opening", "loading", "ready", "off", "failed"):
            label.set_class(self.models_state == state, f"-{state}")

    def _show_activity(self) -> None:
        if not self.is_mounted:
            return
        label = self.query_one("#activity", Label)
        # Its width follows its text, so the teacher's label gives way instead of the progress;
        # the text keeps its length while a run goes (`training #3 ·  7%`), so that costs a
        # relayout only when a run starts or ends.
        label.update(self.activity, layout=len(self.activity) != self._shown_length)
        self._shown_length = len(self.activity)
        label.set_class(bool(self.activity), "-busy")
