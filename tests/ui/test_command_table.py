"""Every slash command, palette entry, key binding and help row comes from the one command table."""

from __future__ import annotations

from textual.app import App
from textual.binding import BindingsMap

from shammah_tui.ui.app import ShammahApp
from shammah_tui.ui.command_table import COMMANDS, Command
from shammah_tui.ui.screens.help import help_content
from shammah_tui.ui.screens.main import MainScreen
from shammah_tui.ui.slash import SLASH_COMMANDS
from tests.ui.helpers import make_app, settle


def _target_class(command: Command) -> type:
    return ShammahApp if command.on_app else MainScreen


def test_every_row_is_reachable_and_every_action_exists():
    for command in COMMANDS:
        ways = [command.key, command.slash, command.title]
        if command.action:
            # A row with an action nobody can reach would be an orphan.
            assert any(ways), f"{command.action}: no key, slash word or palette entry"
            method = f"action_{command.action_name}"
            assert callable(getattr(_target_class(command), method, None)), f"no {method} for {command}"
        else:
            # A key a widget handles itself is only documented.
            assert command.help_keys and not any(ways), command
        if command.slash:
            assert command.slash_help, command
        if command.title:
            assert command.palette_help, command
    for field in ("key", "slash", "title", "help_keys"):
        values = [getattr(c, field) for c in COMMANDS if getattr(c, field)]
        assert len(values) == len(set(values)), f"two rows share a {field}"


def _bindings(cls: type) -> list[tuple[str, str, str]]:
    return [(b.key, b.action, b.description) for b in cls.BINDINGS]


def test_bindings_are_the_table_rows_keys():
    for cls, on_app in ((MainScreen, False), (ShammahApp, True)):
        expected = [(c.key, c.action, c.footer) for c in COMMANDS if c.key and c.on_app == on_app]
        assert _bindings(cls) == expected, f"{cls.__name__}.BINDINGS is not made from the command table"


def test_help_lists_every_key_row_and_slash_command():
    text = help_content().plain
    for command in COMMANDS:
        if command.help_keys:
            assert f"{command.help_keys}".ljust(22) in text and command.help in text
        if command.slash:
            assert f"/{command.slash} {command.args}".strip() in text and command.slash_help in text
    assert set(SLASH_COMMANDS) == {c.slash for c in COMMANDS if c.slash}
    assert all(SLASH_COMMANDS[c.slash] is c for c in COMMANDS if c.slash)


def _bound(bindings: BindingsMap) -> set[tuple[str, str]]:
    return {(key, b.action) for key, bs in bindings.key_to_bindings.items() for b in bs}


async def test_running_app_bindings_and_palette_come_from_the_table(engine, clock):
    app = make_app(engine, clock)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        for node, cls in ((app.main, MainScreen), (app, ShammahApp)):
            rows = {(key, c.action) for c in COMMANDS if c.key and c.on_app == (cls is ShammahApp)
                    for key in c.key.split(",")}
            textual_own: set[tuple[str, str]] = set()
            for base in cls.__mro__[1:]:
                if "BINDINGS" in vars(base):
                    textual_own |= _bound(BindingsMap(vars(base)["BINDINGS"]))
            if cls is ShammahApp:  # Textual binds its palette itself; the table documents the key
                textual_own.add((app.COMMAND_PALETTE_BINDING, "command_palette"))
                assert any(c.help_keys == app.COMMAND_PALETTE_BINDING for c in COMMANDS)
            bound = _bound(node._bindings)
            assert rows <= bound
            assert bound - textual_own <= rows, f"{cls.__name__} binds keys outside the command table"

        # Palette: what the app adds to Textual's own system commands is the table's entries.
        builtin = {c.title for c in App.get_system_commands(app, app.main)}
        titles = [c.title for c in app.get_system_commands(app.main) if c.title not in builtin]
        assert titles == [c.title for c in COMMANDS if c.title and c.offered != "serving"]


def test_every_answer_source_is_styled_and_explained_from_its_registry_row() -> None:
    """One registry row per source feeds the badge colour, the chart colour and the help row; the
    stylesheet defines no source colour of its own."""
    import re
    from pathlib import Path

    from shammah_tui.core.kinds import SOURCE_INFO
    from shammah_tui.ui.app import ShammahApp
    from shammah_tui.ui.screens.help import SOURCES_HELP
    from shammah_tui.ui.widgets.palette import SOURCE_RGB, hex_colour
    from tests.ui.fakes import FakeEngine

    variables = ShammahApp(FakeEngine()).get_css_variables()
    styles = (Path(__file__).resolve().parents[2] / "shammah_tui" / "ui" / "app.tcss").read_text()
    assert not re.search(r"^\$src-[\w-]+\s*:", styles, re.M)
    for name, info in SOURCE_INFO.items():
        assert variables[f"src-{name}"] == info.colour
        assert hex_colour(SOURCE_RGB[name]) == info.colour
        assert (name, info.meaning) in SOURCES_HELP
        assert f"&.-{name} " in styles, f"app.tcss has no badge rule for {name}"
