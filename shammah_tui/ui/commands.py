"""Command palette: the editable settings, one command each (toggle, or edit in a small dialog)."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from textual.command import DiscoveryHit, Hit, Hits, Provider

from shammah_tui.ui.editable_settings import EDITABLE, format_value, setting_value

if TYPE_CHECKING:
    from shammah_tui.ui.app import ShammahApp


class SettingsCommands(Provider):
    """`Setting: spot_check_rate (0.1)` and the like; a choice is saved to settings.toml."""

    def _commands(self) -> list[tuple[str, str, str]]:
        app = _shammah_app(self)
        settings = app.engine.settings if app.engine is not None else None
        out = []
        for key, what in EDITABLE.items():
            current = setting_value(settings, key) if settings is not None else None
            value = format_value(current) if settings is not None else "?"
            verb = "Toggle" if isinstance(current, bool) else "Set"
            out.append((key, f"{verb} setting: {key} ({value})", what))
        return out

    async def discover(self) -> Hits:
        app = _shammah_app(self)
        for key, title, what in self._commands():
            yield DiscoveryHit(title, partial(app.edit_setting, key), help=what)

    async def search(self, query: str) -> Hits:
        app = _shammah_app(self)
        matcher = self.matcher(query)
        for key, title, what in self._commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), partial(app.edit_setting, key), help=what)


def _shammah_app(provider: Provider) -> ShammahApp:
    from shammah_tui.ui.app import ShammahApp  # the app module imports this one

    app = provider.app
    assert isinstance(app, ShammahApp)
    return app
