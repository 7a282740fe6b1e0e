"""Slash commands typed in the input line: parsing only (the screen runs their actions)."""

from __future__ import annotations

from dataclasses import dataclass

from shammah_tui.ui.command_table import Command, slash_commands

#: Slash word → its command (from the command table), in the help's order.
SLASH_COMMANDS: dict[str, Command] = slash_commands()


@dataclass(frozen=True)
class SlashCommand:
    """A parsed `/name args` line."""

    name: str
    """The command name, lower-cased, without the slash."""
    arg: str
    """Everything after the name, stripped ("" when none)."""


class SlashError(ValueError):
    """The line is a slash command that cannot run; the message says why."""


def parse_slash(line: str) -> SlashCommand | None:
    """The command in `line`, or None when it is an ordinary question.

    A line is a command when it starts with `/` followed by a letter; `//x` and
    `/ x` are questions. Raises SlashError for an unknown command or a missing
    argument.
    """
    text = line.strip()
    if len(text) < 2 or text[0] != "/" or not text[1].isalpha():
        return None
    name, _, arg = text[1:].partition(" ")
    name = name.lower()
    arg = arg.strip()
    if name not in SLASH_COMMANDS:
        known = ", ".join(f"/{n}" for n in SLASH_COMMANDS)
        raise SlashError(f"Unknown command /{name}. Commands: {known}.")
    if name == "compare" and not arg:
        raise SlashError("/compare needs a question, e.g. /compare what is 2 + 3?")
    if name == "find" and not arg:
        raise SlashError("/find needs some text, e.g. /find capital (or press ctrl+f)")
    if name == "open" and arg and not arg.lstrip("#").isdigit():
        raise SlashError(f"/open takes a conversation number, e.g. /open 3 (got {arg!r})")
    if name == "copy" and arg not in ("", "code"):
        raise SlashError(f"/copy takes nothing, or `code` for the last code block (got {arg!r})")
    return SlashCommand(name, arg)
