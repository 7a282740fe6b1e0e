"""`shammah-tui serve`: the Anthropic Messages API (and OpenAI's chat completions) on localhost,
in front of Claude.

A client changes only `ANTHROPIC_BASE_URL` (and uses Shammah's local token as its key). Text
turns go through the engine like any question: answered locally when a tier is sure, else
passed on to Claude and learned. Everything else (tools, images, unusual parameters) is passed
on unchanged and streamed back as it arrives.

- `protocol`: request checks, which requests may be answered locally, response and error shapes;
- `sse`: reading an upstream event stream as it goes by;
- `upstream`: passing a request on to Claude and relaying the answer;
- `auth`: the local token, named client tokens' hashes, and the bind check;
- `tokens`: `serve token add|revoke|list`;
- `app`: the aiohttp routes, the request log; `chat`: `/v1/chat/completions` in OpenAI's shape;
- `run`: `start_server`, used by the CLI and the TUI.

This module imports nothing heavy, so the CLI can read the defaults without aiohttp.
"""

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
