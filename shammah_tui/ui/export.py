"""A conversation as a Markdown or JSON file: pure text building, and where the file goes.

No Textual here: the screen reads the messages from the store, calls these, and writes the
file in a worker thread.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

from shammah_tui.core.records import Message

#: The formats `/export` writes, and their file extensions.
FORMATS = {"md": "md", "markdown": "md", "json": "json"}
#: Folder of the data dir that exports go to unless a path is given.
EXPORTS_DIR = "exports"


def iso(ts: float) -> str:
    """A timestamp as local ISO 8601 with its offset, to the second."""
    return time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(ts))


def conversation_markdown(conversation_id: int, title: str, messages: Sequence[Message],
                          exported_at: float) -> str:
    """The conversation as Markdown: a heading per message, answers labelled with their source."""
    lines = [f"# {title or f'Conversation {conversation_id}'}", "",
             f"_Shammah conversation {conversation_id} · {len(messages)} messages · exported "
             f"{iso(exported_at)}_", ""]
    for m in messages:
        if m.role == "user":
            heading = "## You"
        elif m.role == "assistant":
            heading = f"## Shammah · {m.source or 'answer'}"
        else:
            heading = "## Notice"
        lines += [heading, "", m.text.rstrip(), ""]
    return "\n".join(lines).rstrip() + "\n"


def conversation_json(conversation_id: int, title: str, messages: Sequence[Message], exported_at: float) -> str:
    """The conversation as JSON: its id, title, export time, and each message with its source and time."""
    return json.dumps({
        "conversation_id": conversation_id,
        "title": title,
        "exported_at": iso(exported_at),
        "messages": [{"role": m.role, "text": m.text, "source": m.source, "query_id": m.query_id,
                      "created_at": iso(m.created_at)} for m in messages],
    }, ensure_ascii=False, indent=2) + "\n"


def export_path(data_dir: Path | None, conversation_id: int, fmt: str, given: str | None,
                exported_at: float, cwd: Path | None = None) -> Path:
    """Where an export goes: `given` (a file, or a folder to put it in; relative to `cwd`), else
    `<data dir>/exports/conversation-<id>-<time>.<ext>`."""
    ext = FORMATS[fmt]
    name = f"conversation-{conversation_id}-{time.strftime('%Y%m%d-%H%M%S', time.localtime(exported_at))}.{ext}"
    if given:
        path = Path(given).expanduser()
        if not path.is_absolute():
            path = (cwd or Path.cwd()) / path
        if path.is_dir() or given.endswith(("/", "\\")):
            return path / name
        return path if path.suffix else path.with_suffix(f".{ext}")
    if data_dir is None:
        raise ValueError("no data directory to export into; give a path: /export md PATH")
    return data_dir / EXPORTS_DIR / name


def write_export(path: Path, text: str) -> Path:
    """Write the export (creating its folder); returns the path written. Runs in a worker thread."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


def parse_export_args(arg: str) -> tuple[str, str | None]:
    """(format, path or None) from `/export [md|json] [path]`; raises ValueError for a bad format."""
    parts = arg.split(maxsplit=1)
    if not parts:
        return "md", None
    first = parts[0].lower()
    if first in FORMATS:
        return first if first != "markdown" else "md", (parts[1].strip() if len(parts) > 1 else None)
    if len(parts) == 1 and Path(parts[0]).suffix.lower() in (".md", ".json"):
        return Path(parts[0]).suffix.lower()[1:], parts[0]
    raise ValueError(f"/export takes md or json, then an optional path (got {parts[0]!r})")
