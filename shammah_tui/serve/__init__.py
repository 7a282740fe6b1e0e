"""`shammah-tui serve`: the Anthropic Messages API on localhost, in front of Claude.

A client changes only `ANTHROPIC_BASE_URL` (and uses Shammah's local token as its key). Text
turns go through the engine like any question: answered locally when a tier is sure, else
passed on to Claude and learned. Everything else (tools, images, unusual parameters) is passed
on unchanged and streamed back as it arrives.

- `protocol`: request checks, which requests may be answered locally, response and error shapes;
- `sse`: reading an upstream event stream as it goes by;
- `upstream`: passing a request on to Claude and relaying the answer;
- `auth`: the local token and the bind check;
- `app`: the aiohttp routes; `run`: `start_server`, used by the CLI and the TUI.

This module imports nothing heavy, so the CLI can read the defaults without aiohttp.
"""

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
