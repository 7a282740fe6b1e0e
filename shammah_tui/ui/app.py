"""ShammahApp: engine lifecycle, global keys and command palette entries.

The app opens the engine inside its own event loop (aiosqlite binds its
connection to the loop that opened it), loads the models in the background
after the first frame, and closes the engine on the way out. Everything shown
lives on `MainScreen`.

Importing this module imports neither torch nor the engine.
"""

from __future__ import annotations

import asyncio
import time
from functools import partial
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual import work
from textual.app import App, SystemCommand
from textual.color import Color
from textual.screen import Screen
from textual.theme import Theme

from shammah_tui.formatting import error_line
from shammah_tui.ui import messages as msg
from shammah_tui.ui.command_table import bindings, palette_commands
from shammah_tui.ui.commands import SettingsCommands
from shammah_tui.ui.screens.main import MainScreen

from shammah_tui.core.kinds import SOURCE_INFO

if TYPE_CHECKING:
    from shammah_tui.ui.engine_api import EngineLike

#: A source badge's text, unless the theme's background is darker.
BADGE_TEXT = Color.parse("#161616")

EngineOpener = Callable[[], Awaitable["EngineLike"]]


class ShammahApp(App[int]):
    """Shammah's terminal UI."""

    #: Widget styles, then each screen's sibling .tcss. The main screen's must be here (Textual does not
    #: read the default screen's CSS_PATH); the modal screens' are here too, so that opening one does
    #: not re-parse and re-apply the whole stylesheet (~1 s on a busy 2-core machine).
    CSS_PATH = ["app.tcss", "screens/main.tcss", "screens/help.tcss", "screens/tool_detail.tcss",
                "screens/request_detail.tcss", "screens/conversations.tcss", "screens/setting_edit.tcss"]
    TITLE = "Shammah"
    COMMANDS = App.COMMANDS | {SettingsCommands}

    BINDINGS = bindings(on_app=True)

    def get_css_variables(self) -> dict[str, str]:
        """The theme's variables, `$src-<source>` for each row of the source registry, and
        `$badge-text`, a source badge's text colour."""
        variables = super().get_css_variables()
        # The source colours are light: dark text reads on them (≥ 4.5:1, tests/ui/test_contrast.py).
        # The theme's background where it is darker still (textual-dark's), else BADGE_TEXT.
        background = Color.parse(variables["background"])
        badge_text = variables["background"] if background.brightness < BADGE_TEXT.brightness else BADGE_TEXT.hex
        return {**variables, "badge-text": badge_text,
                **{f"src-{name}": info.colour for name, info in SOURCE_INFO.items()}}

    def __init__(self, engine: EngineLike | None = None, *, open_engine: EngineOpener | None = None,
                 clock: Callable[[], float] = time.monotonic, load_models: bool = True,
                 data_dir: Path | None = None, theme: str | None = None,
                 serve_port: int | None = None, resume_last: bool = False) -> None:
        """Give an open `engine`, or `open_engine` to open one once the app runs.

        `clock` is the only time source for anything shown; `load_models=False`
        leaves the models unloaded (tests, or a UI without torch). `data_dir` is where
        settings.toml and exports live (else the engine's); `theme` is the saved theme;
        `serve_port` starts the Messages-API server once the engine is open.
        """
        super().__init__()
        self.resume_last = resume_last
        """`--continue`: reopen the conversation that was open at the last quit (else a new one)."""
        if theme and theme in self.available_themes:
            self.theme = theme
        self._saved_theme = self.theme
        if engine is None and open_engine is None:
            raise ValueError("ShammahApp needs an engine or an open_engine callable")
        self.engine: EngineLike | None = engine
        """The engine, once open."""
        self._open_engine = open_engine
        self._open_task: asyncio.Future[EngineLike] | None = None
        self._open_exit_code = 1
        self._clock = clock
        self._load_models = load_models
        self._engine_closed = False
        self._main = MainScreen(clock=clock, data_dir=data_dir)
        self._data_dir = data_dir
        self._serve_port = serve_port
        self._server: Any = None
        """The Messages-API server (`serve.run.RunningServer`) while it runs."""
        self.exit_reason: str | None = None
        """Why the app gave up (the data directory could not be opened), for the caller to print."""

    @property
    def main(self) -> MainScreen:
        """The main screen (the default screen; it lives as long as the app)."""
        return self._main

    def get_default_screen(self) -> Screen:
        return self._main

    # -------------------------------------------------------------- lifecycle
    def on_mount(self) -> None:
        self.theme_changed_signal.subscribe(self, self._theme_changed)
        if self.engine is not None:
            self._attach_engine(self.engine)
        else:
            self.call_after_refresh(self.open_engine)  # the first frame first

    @work(group="engine", exit_on_error=False)
    async def open_engine(self) -> None:
        """Open the engine; posts EngineOpened or EngineOpenFailed."""
        assert self._open_engine is not None
        # Shielded so that quitting mid-open still gets the engine back to close it.
        self._open_task = asyncio.ensure_future(self._open_engine())
        try:
            engine = await asyncio.shield(self._open_task)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            from shammah_tui.engine.open import EngineOpenError

            self._open_exit_code = exc.exit_code if isinstance(exc, EngineOpenError) else 1
            self.post_message(msg.EngineOpenFailed(error_line(exc)))
            return
        self.post_message(msg.EngineOpened(engine))

    def on_engine_opened(self, message: msg.EngineOpened) -> None:
        self.engine = message.engine
        self._attach_engine(message.engine)

    def on_engine_open_failed(self, message: msg.EngineOpenFailed) -> None:
        self.exit_reason = message.reason
        self.exit(self._open_exit_code, return_code=self._open_exit_code)

    def _attach_engine(self, engine: EngineLike) -> None:
        loading = self._load_models and not engine.models_ready
        self._main.attach(engine, loading_models=loading, then=self.load_models if loading else None,
                          resume=self.resume_last)
        if self._serve_port is not None:
            self.start_serving(self._serve_port)

    # ------------------------------------------------------------------ serving
    @work(group="serve", exclusive=True, exit_on_error=False)
    async def start_serving(self, port: int = 8765) -> None:
        """Serve the Messages API over this engine, on this loop: its traffic shows in the panes."""
        from shammah_tui.serve.run import ServeError, start_server

        if self._server is not None or self.engine is None:
            return
        data_dir = self._data_dir or self.engine.data_dir
        try:
            # The server needs the whole Engine (its store, lock and teacher), which is what the app
            # opens; only tests give the app a fake, and they do not serve.
            self._server = await start_server(self.engine, data_dir, port=port)  # type: ignore[arg-type]
        except ServeError as exc:
            self.notify(str(exc), title="Serving failed", severity="error")
            return
        server = self._server
        self._main.reveal_requests()
        upstream = "Claude" if server.upstream_url else "the offline teacher"
        self._main.conversation.add_notice("information", (
            f"Serving the Messages API at {server.url} (misses go to {upstream}). Clients set "
            f"ANTHROPIC_BASE_URL={server.url} and ANTHROPIC_API_KEY to the token in {server.token_path}."))

    async def stop_serving(self, *, announce: bool = True) -> None:
        """Stop the Messages-API server, if it runs (`announce`: say so in the conversation)."""
        server, self._server = self._server, None
        if server is not None:
            await server.stop()
            if announce:
                self._main.conversation.add_notice("information", "Stopped serving the Messages API.")

    @work(group="models", exit_on_error=False)
    async def load_models(self) -> None:
        """Load the local models (torch) after the first frame; the engine runs it in a thread."""
        assert self.engine is not None
        try:
            await self.engine.load_models()
        except Exception as exc:
            self._main.post_message(msg.ModelsFailed(error_line(exc)))

    async def on_unmount(self) -> None:
        # The screen's widgets are gone by now: nothing may be shown. The engine is closed even
        # when the server fails to stop, or its threads keep the process alive.
        try:
            await self.stop_serving(announce=False)
        finally:
            await self.close_engine()

    async def close_engine(self) -> None:
        """Cancel training, close the teacher and the store (once)."""
        if self._engine_closed:
            return
        self._engine_closed = True
        self._main.detach()
        engine = self.engine
        if engine is None and self._open_task is not None:
            try:
                engine = await self._open_task
            except Exception:
                engine = None
        if engine is not None:
            if self._main.session.engine is engine:
                try:
                    await self._main.session.save()
                except Exception:
                    pass  # the next start opens a new conversation, without the input's lines
            try:
                await engine.close()
            except Exception:
                pass

    # ------------------------------------------------------------------ settings
    def _theme_changed(self, theme: Theme) -> None:
        """A theme picked (ctrl+p, Theme) is saved to settings.toml, so the next start has it."""
        if theme.name != self._saved_theme:
            self._saved_theme = theme.name
            self._main.change_setting("theme", theme.name)

    def edit_setting(self, key: str) -> None:
        """Toggle a yes/no setting; ask for any other's new value. Saved to settings.toml."""
        from shammah_tui.ui.editable_settings import format_value, setting_value, value_problem
        from shammah_tui.ui.screens.setting_edit import SettingEditScreen

        engine = self.engine
        current = setting_value(engine.settings, key) if engine is not None else None
        if isinstance(current, bool):
            self._main.change_setting(key, not current)
            return

        def done(value: str | None) -> None:
            if value is not None:
                self._main.change_setting(key, value)

        check = (lambda text: value_problem(engine.settings, key, text)) if engine is not None else None
        self.push_screen(SettingEditScreen(key, format_value(current) if current is not None else "", check), done)

    # ---------------------------------------------------------------- actions
    def action_help(self) -> None:
        """Show the keys and commands."""
        from shammah_tui.ui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_start_serving(self, port: int = 8765) -> None:
        """Serve the Messages API on `port`."""
        self.start_serving(port)

    async def action_stop_serving(self) -> None:
        """Stop the Messages-API server."""
        await self.stop_serving()

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        server_url = self._server.url if self._server is not None else ""
        for command in palette_commands(serving=self._server is not None):
            target = self if command.on_app else self._main
            yield SystemCommand(command.title, command.palette_help.format(server_url=server_url),
                                partial(self.call_later, self.run_action, command.action, target))
