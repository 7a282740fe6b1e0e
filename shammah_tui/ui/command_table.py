"""Every user-facing command, once: its slash word, key, palette entry and help row.

The main screen's and the app's `BINDINGS`, the slash commands, the command palette's entries
and the help screen's rows are all made from `COMMANDS`, so a command is added (or renamed) in
one place. An action is a Textual action string run on the main screen, or on the app when
`on_app` is set. A slash command whose row has an argument hint runs its action with the
argument: `/export json` runs `export('json')`.

No Textual widgets here; `Binding` is plain data.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from textual.binding import Binding, BindingType

#: When a palette entry is offered: always, or only while the Messages-API server does (not) run.
Offered = Literal["always", "serving", "not_serving"]


@dataclass(frozen=True)
class Command:
    """One command, and each way to reach it."""

    action: str
    """The Textual action it runs (`""`: a key a widget handles itself, listed in the help only)."""
    on_app: bool = False
    """The action (and the key) belongs to the app, not to the main screen."""
    key: str = ""
    """Its key binding (Textual key names, comma-separated), if any."""
    footer: str = ""
    """The key's label in the footer."""
    show: bool = True
    """Whether the footer shows the key."""
    priority: bool = False
    """A priority binding: it wins over the focused widget's keys."""
    tooltip: str = ""
    """The key's tooltip in the footer."""
    slash: str = ""
    """Its slash word (`train` for `/train`), if any."""
    args: str = ""
    """The slash command's argument hint; a row with one runs its action with the argument."""
    slash_help: str = ""
    """What the slash command does (the help's Commands section)."""
    title: str = ""
    """Its command-palette title, if it has an entry there."""
    palette_help: str = ""
    """The palette entry's help line; `{server_url}` is filled in while serving."""
    offered: Offered = "always"
    """When the palette offers it."""
    help_keys: str = ""
    """The keys as the help's Keys section shows them (`""`: no row there)."""
    help: str = ""
    """What the keys do (the help's Keys section)."""

    @property
    def action_name(self) -> str:
        """The action without its arguments: `export` for `export('md')`."""
        return self.action.partition("(")[0]

    def slash_action(self, arg: str) -> str:
        """The action a `/word arg` line runs."""
        return f"{self.action_name}({arg!r})" if self.args else self.action

    def binding(self) -> Binding:
        return Binding(self.key, self.action, self.footer, show=self.show, priority=self.priority,
                       tooltip=self.tooltip)


COMMANDS: tuple[Command, ...] = (
    # In the order of the help's Keys section, which leads with the input's own keys.
    Command("", help_keys="enter", help="send the question (or run the /command)"),
    Command("", help_keys="shift+enter / ctrl+j", help="a new line (a pasted question keeps its lines)"),
    Command("train", key="ctrl+t", footer="Train", tooltip="Train on the queued examples now",
            slash="train", slash_help="train on the queued examples now",
            title="Train now", palette_help="Train the local models on the queued examples",
            help_keys="ctrl+t", help="train now on the queued examples"),
    Command("toggle_teaching", key="ctrl+g", footer="Teach", tooltip="Start or stop a teaching session",
            slash="teach", args="[topic]", slash_help="start (or stop) teaching through the tools",
            help_keys="ctrl+g", help="start / stop a teaching session"),
    Command("teach", title="Start teaching", palette_help="Let the teacher teach through its tools"),
    Command("stop_teaching", title="Stop teaching", palette_help="Stop the teaching session"),
    Command("cancel", key="escape", footer="Cancel", tooltip="Cancel the answer, teaching or training run",
            title="Cancel", palette_help="Cancel the answer in flight, teaching, or the training run",
            help_keys="esc", help="cancel the answer, teaching, or training run"),
    Command("cancel_training", title="Cancel training",
            palette_help="Stop the running training run (models stay unchanged)"),
    Command("reset_adapter", title="Reset the adapter",
            palette_help="Forget what the pre-trained model's adapter learned (answer_model smollm2)"),
    Command("analyze", slash="analyze", slash_help="evaluate the local models per category",
            title="Analyze models", palette_help="Evaluate the local models per category (/analyze)"),
    Command("compare", slash="compare", args="<question>",
            slash_help="local answer vs teacher answer for a question"),
    Command("stats", slash="stats", slash_help="rates, losses, queue and token counts",
            title="Show stats", palette_help="Rates, losses, queue and token counts (/stats)"),
    Command("copy('')", slash="copy", args="[code]", slash_help="copy the last answer (or its last code block)",
            title="Copy last answer", palette_help="Copy the last answer to the clipboard (/copy)"),
    Command("copy('code')", title="Copy last code block",
            palette_help="Copy the last code block of the conversation (/copy code)"),
    Command("clear", key="ctrl+l", footer="New chat",
            tooltip="Start a new conversation (ctrl+o brings the last back)",
            slash="clear", slash_help="start a new conversation",
            title="Clear conversation", palette_help="Start a new conversation",
            help_keys="ctrl+l", help="new conversation (ctrl+o brings the last back)"),
    Command("open_conversations('')", key="ctrl+o", footer="History", tooltip="Past conversations: reopen one",
            slash="open", args="[number]", slash_help="past conversations, or reopen one by number",
            title="Open a past conversation", palette_help="List past conversations and reopen one (ctrl+o)",
            help_keys="ctrl+o", help="past conversations: pick one to reopen it"),
    Command("undo_clear", title="Undo clear",
            palette_help="Go back to the conversation before the last clear or reopen"),
    Command("search('')", key="ctrl+f", footer="Find", tooltip="Search the conversation",
            slash="find", args="<text>", slash_help="search the conversation",
            title="Find in conversation", palette_help="Search the messages (ctrl+f)",
            help_keys="ctrl+f", help="find in the conversation (enter: next match)"),
    Command("export('md')", key="ctrl+s", footer="Export", show=False, tooltip="Export the conversation as Markdown",
            slash="export", args="[md|json] [path]", slash_help="save the conversation (into the data dir's exports/)",
            title="Export conversation as Markdown", palette_help="Write it to exports/ in the data dir (/export md)",
            help_keys="ctrl+s", help="export as Markdown (/export json: as JSON)"),
    Command("export('json')", title="Export conversation as JSON",
            palette_help="Write it to exports/ in the data dir (/export json)"),
    Command("set('')", slash="set", args="[key value]", slash_help="settings, or change one (into settings.toml)",
            title="Settings", palette_help="Show the settings you can change (/set)"),
    Command("start_serving(8765)", on_app=True, title="Serve the Messages API",
            palette_help="Let any Claude client learn through Shammah (127.0.0.1:8765); its traffic shows here",
            offered="not_serving"),
    Command("stop_serving", on_app=True, title="Stop serving",
            palette_help="Stop the Messages-API server at {server_url}", offered="serving"),
    # ? where it is not typed: outside the input, and in it while it is empty (PromptInput._on_key).
    Command("help", on_app=True, key="f1,question_mark", footer="Help", tooltip="Keys and commands (f1, ?)",
            slash="help", slash_help="keys and commands",
            title="Help", palette_help="Keys and slash commands",
            help_keys="f1 / ?", help="this help (? where the input is empty)"),
    Command("show_pane('chat')", key="f2", footer="Chat", show=False,
            tooltip="The input; again: the messages (↑/↓, c copies)",
            title="Show chat pane", palette_help="Show and focus the chat pane",
            help_keys="f2", help="the input; again: the messages"),
    Command("", help_keys="  ↑ ↓ / k j", help="in the messages: move between them"),
    Command("", help_keys="  c / y", help="in the messages: copy it / its last code block"),
    Command("", help_keys="  i / enter", help="in the messages: back to the input"),
    Command("show_pane('tools')", key="f3", footer="Tools", show=False, tooltip="The tool-call log",
            title="Show tools pane", palette_help="Show and focus the tools pane",
            help_keys="f3 / f4", help="tool calls / metrics (its border lights up)"),
    Command("show_pane('metrics')", key="f4", footer="Metrics", show=False, tooltip="Rates, losses, training",
            title="Show metrics pane", palette_help="Show and focus the metrics pane"),
    Command("show_pane('requests')", key="f5", footer="Requests", show=False,
            tooltip="Requests served to Claude clients",
            title="Show requests pane", palette_help="Show and focus the log of served requests",
            help_keys="f5", help="served requests (enter: request and response)"),
    Command("", help_keys="↑ / ↓ in the input", help="earlier lines"),
    Command("", help_keys="enter on a tool call", help="its full input and result"),
    Command("", help_keys="ctrl+p", help="palette: every action, settings, theme"),
    Command("quit", on_app=True, key="ctrl+q", footer="Quit", tooltip="Quit (cancels a training run)",
            priority=True, help_keys="ctrl+q", help="quit (a running training run is cancelled)"),
)


def bindings(*, on_app: bool) -> list[BindingType]:
    """The app's (`on_app`) or the main screen's key bindings."""
    return [c.binding() for c in COMMANDS if c.key and c.on_app == on_app]


def slash_commands() -> dict[str, Command]:
    """Slash word → its command, in the help's order."""
    return {c.slash: c for c in COMMANDS if c.slash}


def palette_commands(*, serving: bool) -> Iterator[Command]:
    """The commands the palette offers now."""
    hidden = "not_serving" if serving else "serving"
    return (c for c in COMMANDS if c.title and c.offered != hidden)


def help_keys() -> list[tuple[str, str]]:
    """(keys, what they do) for the help's Keys section."""
    return [(c.help_keys, c.help) for c in COMMANDS if c.help_keys]
