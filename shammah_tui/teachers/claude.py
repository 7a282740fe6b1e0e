"""Claude as the teacher, through the anthropic SDK (2.x, on httpx2).

`answer` streams a reply with `messages.stream`. `teach` runs the tool loop by
hand over raw stream events, so every call goes through our `ToolRegistry`
(validation, timing, events) and a tool input that does not parse becomes an
error result instead of aborting the turn. Every failure leaves as a
`TeacherError` with one line fit for the UI; the API key never appears in it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import anthropic
import httpx2
from anthropic import AsyncAnthropic
from anthropic.types import ContentBlockParam, MessageParam, RawContentBlockDelta, ToolParam, ToolResultBlockParam

from shammah_tui.teachers.anthropic_errors import error_kind
from shammah_tui.core.teaching import Role, TeachSummary, TeacherError, TeacherReply, TextCallback, Turn
from shammah_tui.teachers.base import Teacher, TeachRequest
from shammah_tui.tools.registry import tool_descriptions

if TYPE_CHECKING:
    from shammah_tui.tools.base import ToolRegistry

SYSTEM_PROMPT_ANSWER = (
    "You answer questions from a developer at a terminal. Your answers also become training "
    "data for a small local model, so be short and exact: give the answer itself first (a number, "
    "a word, a line of code, a sentence), add at most a few lines of explanation only when the "
    "question needs it, and avoid filler, greetings and caveats."
)


def teach_system_prompt(tools: Sequence[tuple[str, str]]) -> str:
    """The system prompt of a teaching session: what is taught, each tool by its own description
    (`tools`: name, description), and the strategy."""
    listed = "\n".join(f"- {name}: {description}" for name, description in tools)
    return (
        "You are teaching a small local assistant: a tiny causal transformer (the generator), a store "
        "of learned answers, and rule-based templates, with a router and a validator that decide when "
        f"a local answer is good enough. You act only through these {len(tools)} tools:\n"
        f"{listed}\n"
        "Strategy for each round: analyze, write focused training data for the weak areas (many "
        "short, varied, correct pairs), train with wait=true, then check with query_local_model or "
        "compare_responses. Do not repeat a call whose result will not change. When the rounds are "
        "done, stop calling tools and summarize in a few lines what you taught and what changed."
    )


SYSTEM_PROMPT_TEACH = teach_system_prompt(tool_descriptions())


#: How many identical tool calls in a row are run before the loop refuses them.
REPEAT_LIMIT = 3


@dataclass
class _ToolCall:
    id: str
    name: str
    input: Any  # a dict, or the raw text when the streamed JSON did not parse


@dataclass
class _TurnResult:
    content: list[dict[str, Any]] = field(default_factory=list)
    calls: list[_ToolCall] = field(default_factory=list)
    stop_reason: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0

    @property
    def text(self) -> str:
        return "".join(b.get("text", "") for b in self.content if b.get("type") == "text")


class ClaudeTeacher(Teacher):
    """The Claude teacher. The client is made on first use, on the loop that uses it."""

    kind = "claude"

    def __init__(
        self,
        model: str,
        api_key: str | None = None,
        base_url: str | None = None,
        max_retries: int = 2,
        timeout_s: float = 60.0,
        max_tokens: int = 1024,
        client: AsyncAnthropic | None = None,
    ) -> None:
        self.model = model
        self._api_key = api_key
        self._base_url = base_url
        self.max_retries = max_retries
        self.timeout_s = timeout_s
        self.max_tokens = max_tokens
        self._client = client

    @property
    def label(self) -> str:
        return self.model

    # --- client ----------------------------------------------------------------------

    def _key(self) -> str | None:
        return self._api_key or os.environ.get("ANTHROPIC_API_KEY") or None

    def _get_client(self) -> AsyncAnthropic:
        if self._client is None:
            key = self._key()
            if not key:
                raise TeacherError(
                    "auth", "No ANTHROPIC_API_KEY is set; set it to use Claude, or use the offline teacher."
                )
            # Created lazily: an AsyncAnthropic is bound to the loop of its first request.
            self._client = AsyncAnthropic(
                api_key=key,
                base_url=self._base_url,
                max_retries=self.max_retries,
                timeout=httpx2.Timeout(self.timeout_s, connect=min(5.0, self.timeout_s)),
            )
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.close()

    # --- answer ----------------------------------------------------------------------

    async def answer(
        self,
        query: str,
        history: Sequence[Turn] = (),
        on_text: TextCallback | None = None,
    ) -> TeacherReply:
        if not query.strip():
            raise TeacherError("bad_request", "The question is empty.")
        messages = build_messages(history, query)
        client = self._get_client()
        parts: list[str] = []
        finished = False
        try:
            async with client.messages.stream(
                model=self.model, max_tokens=self.max_tokens, system=SYSTEM_PROMPT_ANSWER, messages=messages
            ) as stream:
                async for event in stream:
                    if event.type == "text":
                        parts.append(event.text)
                        if on_text is not None:
                            on_text(event.text)
                    elif event.type == "message_stop":
                        finished = True
                message = await stream.get_final_message() if finished else None
        except TeacherError:
            raise
        except Exception as exc:  # every SDK/transport failure becomes one user-facing line
            raise self._error(exc) from exc
        if message is None:
            # The body ended cleanly but without message_stop: still an unfinished answer.
            raise TeacherError("stream_cut", "Claude's answer stopped before it was complete; it was discarded.")
        return TeacherReply(
            text="".join(parts),
            input_tokens=message.usage.input_tokens or 0,
            output_tokens=message.usage.output_tokens or 0,
        )

    # --- teach -----------------------------------------------------------------------

    async def teach(
        self,
        tools: ToolRegistry,
        request: TeachRequest,
        on_text: TextCallback | None = None,
    ) -> TeachSummary:
        client = self._get_client()
        schemas = [_tool_param(schema) for schema in tools.schemas()]
        messages: list[MessageParam] = [{"role": "user", "content": teach_prompt(request)}]
        summary = TeachSummary()
        last_sig: str | None = None
        streak = 0
        warned = False
        spoke = False  # whether any turn has streamed text yet

        while True:
            summary.iterations += 1
            turn_spoke = False

            def emit(fragment: str) -> None:
                # Turns are separated by tool calls; keep their texts apart for the reader.
                nonlocal spoke, turn_spoke
                if on_text is None:
                    return
                if spoke and not turn_spoke:
                    on_text("\n\n")
                spoke = turn_spoke = True
                on_text(fragment)

            turn = await self._stream_turn(client, messages, schemas, emit)
            summary.input_tokens += turn.input_tokens
            summary.output_tokens += turn.output_tokens
            if turn.text.strip():
                summary.final_text = turn.text
            if turn.content:
                messages.append({"role": "assistant", "content": _echoed(turn.content)})

            if not turn.calls:
                if turn.stop_reason == "pause_turn" and summary.iterations < request.max_iterations:
                    continue  # the API paused a long turn; sending it back lets it go on
                summary.stopped_because = (
                    "done" if turn.stop_reason in ("end_turn", "stop_sequence", None) else turn.stop_reason
                )
                return summary
            if summary.iterations >= request.max_iterations:
                # The last allowed turn asked for tools: stop before running calls whose
                # results nobody would read.
                summary.stopped_because = "iteration_limit"
                return summary

            results: list[ToolResultBlockParam] = []
            for call in turn.calls:
                sig = _signature(call)
                streak = streak + 1 if sig == last_sig else 1
                last_sig = sig
                if streak >= REPEAT_LIMIT:
                    if warned:
                        summary.stopped_because = "repeated_call"
                        return summary
                    warned = True
                    results.append(_tool_result(
                        call.id,
                        f"Refused: {call.name} was called with the same input {streak} times in a row and "
                        "its result will not change. Do something different; another repeat ends the session.",
                        is_error=True,
                    ))
                    continue
                result = await tools.call(call.name, call.input, call_id=call.id)
                summary.tool_calls += 1
                results.append(_tool_result(call.id, result.text, is_error=result.is_error))
            messages.append({"role": "user", "content": results})

    async def _stream_turn(
        self,
        client: AsyncAnthropic,
        messages: list[MessageParam],
        schemas: list[ToolParam],
        on_text: TextCallback | None,
    ) -> _TurnResult:
        """One model turn over raw events, accumulated here (see the module docstring)."""
        turn = _TurnResult()
        blocks: dict[int, dict[str, Any]] = {}
        raw_json: dict[int, str] = {}
        finished = False
        try:
            stream = await client.messages.create(
                model=self.model, max_tokens=self.max_tokens, system=SYSTEM_PROMPT_TEACH,
                messages=messages, tools=schemas, stream=True,
            )
            async with stream:
                async for event in stream:
                    if event.type == "message_start":
                        turn.input_tokens = event.message.usage.input_tokens or 0
                        turn.output_tokens = event.message.usage.output_tokens or 0
                    elif event.type == "content_block_start":
                        blocks[event.index] = event.content_block.model_dump(exclude_none=True)
                    elif event.type == "content_block_delta":
                        _apply_delta(blocks[event.index], raw_json, event.index, event.delta, on_text)
                    elif event.type == "message_delta":
                        turn.stop_reason = event.delta.stop_reason
                        # usage on message_delta is cumulative: overwrite, don't add
                        turn.output_tokens = event.usage.output_tokens or turn.output_tokens
                        if event.usage.input_tokens is not None:
                            turn.input_tokens = event.usage.input_tokens
                    elif event.type == "message_stop":
                        finished = True
        except TeacherError:
            raise
        except Exception as exc:  # every SDK/transport failure becomes one user-facing line
            raise self._error(exc) from exc
        if not finished:
            raise TeacherError("stream_cut", "Claude's reply stopped before it was complete; it was discarded.")

        for index in sorted(blocks):
            block = blocks[index]
            if block.get("type") == "text" and not block.get("text"):
                continue  # the API rejects empty text blocks when they are sent back
            if block.get("type") == "tool_use":
                call_input: Any = block.get("input") or {}
                if index in raw_json and raw_json[index].strip():
                    try:
                        call_input = json.loads(raw_json[index])
                    except json.JSONDecodeError:
                        call_input = raw_json[index]  # the registry reports it as invalid JSON
                # The echoed block must carry an object; the model learns what went wrong from
                # the tool_result instead.
                block["input"] = call_input if isinstance(call_input, dict) else {}
                turn.calls.append(_ToolCall(block["id"], block["name"], call_input))
            turn.content.append(block)
        return turn

    # --- errors ----------------------------------------------------------------------

    def _error(self, exc: BaseException) -> TeacherError:
        err = map_error(exc, base_url=self._shown_base_url(), timeout_s=self.timeout_s, model=self.model)
        key = self._key()
        if key and key in err.message:  # belt and braces: never show the key
            err = TeacherError(err.kind, err.message.replace(key, "[redacted]"))
        return err

    def _shown_base_url(self) -> str:
        url = str(self._client.base_url) if self._client is not None else (self._base_url or "")
        try:
            parsed = httpx2.URL(url)
            # credentials in the URL must not reach the screen
            return str(parsed.copy_with(userinfo=b"")) if parsed.userinfo else url
        except Exception:
            return "the configured base URL"


# --- helpers ---------------------------------------------------------------------------


def build_messages(history: Sequence[Turn], query: str) -> list[MessageParam]:
    """History + query as alternating messages that start with a user turn."""
    merged: list[tuple[Role, str]] = []
    turns: list[tuple[Role, str]] = [(t.role, t.text) for t in history] + [("user", query)]
    for role, text in turns:
        if not text.strip():
            continue  # the API rejects empty content
        if merged and merged[-1][0] == role:
            merged[-1] = (role, merged[-1][1] + "\n\n" + text)
        else:
            merged.append((role, text))
    # An assistant turn before any question answers something we no longer have.
    while merged and merged[0][0] != "user":
        merged.pop(0)
    return [{"role": "user", "content": text} if role == "user" else {"role": "assistant", "content": text}
            for role, text in merged]


def teach_prompt(request: TeachRequest) -> str:
    """The user message that opens a teaching session."""
    rounds = max(1, request.rounds)
    what = f"Teach the local model about: {request.topic}." if request.topic else (
        "Find the local model's weakest areas and teach those."
    )
    return (
        f"{what} Run {rounds} round{'s' if rounds != 1 else ''} of analyze → training data → "
        f"train (wait=true) → check, then summarize. You have at most {request.max_iterations} turns."
    )


def _apply_delta(block: dict[str, Any], raw_json: dict[int, str], index: int, delta: RawContentBlockDelta,
                 on_text: TextCallback | None) -> None:
    if delta.type == "text_delta":
        block["text"] = block.get("text", "") + delta.text
        if on_text is not None and delta.text:
            on_text(delta.text)
    elif delta.type == "input_json_delta":
        raw_json[index] = raw_json.get(index, "") + delta.partial_json
    elif delta.type == "thinking_delta":
        block["thinking"] = block.get("thinking", "") + delta.thinking
    elif delta.type == "signature_delta":
        block["signature"] = delta.signature


def _signature(call: _ToolCall) -> str:
    try:
        shown = json.dumps(call.input, sort_keys=True, ensure_ascii=False)
    except (TypeError, ValueError):
        shown = repr(call.input)
    return f"{call.name}\x00{shown}"


def _tool_param(schema: dict[str, Any]) -> ToolParam:
    """A tool definition of ours (`ToolSpec.schema`: name, description, input_schema) as the SDK types it."""
    return {"name": schema["name"], "description": schema["description"], "input_schema": schema["input_schema"]}


def _echoed(blocks: list[dict[str, Any]]) -> list[ContentBlockParam]:
    """A turn's content blocks, to send back as the assistant message.

    They are the SDK's own response blocks (`model_dump`, with the streamed deltas applied), which
    the API takes back as they are; `model_dump` types them only as plain dicts.
    """
    return cast("list[ContentBlockParam]", blocks)


def _tool_result(tool_use_id: str, text: str, *, is_error: bool) -> ToolResultBlockParam:
    return {"type": "tool_result", "tool_use_id": tool_use_id, "content": text or "(no output)",
            "is_error": is_error}


def _one_line(text: str | None, limit: int = 200) -> str:
    line = " ".join((text or "").split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _retry_after(exc: anthropic.APIStatusError) -> str:
    headers = exc.response.headers
    try:
        if "retry-after-ms" in headers:
            return f"; retry after {float(headers['retry-after-ms']) / 1000:g} s"
        if "retry-after" in headers:
            return f"; retry after {float(headers['retry-after']):g} s"
    except ValueError:
        return f"; retry after {_one_line(headers.get('retry-after'), 40)}"
    return ""


def map_error(exc: BaseException, *, base_url: str, timeout_s: float, model: str) -> TeacherError:
    """One TeacherError (kind + one line) for any failure of a Claude call."""
    if isinstance(exc, TeacherError):
        return exc
    if isinstance(exc, anthropic.APITimeoutError):
        return TeacherError("timeout", f"Claude did not answer within {timeout_s:g} s (after retries).")
    if isinstance(exc, anthropic.APIConnectionError):
        cause = exc.__cause__ or exc.__context__
        why = f": {_one_line(str(cause), 120)}" if cause and str(cause) else ""
        return TeacherError(
            "connection",
            f"Could not connect to Claude at {base_url or 'the default API URL'}{why}. "
            "Check the network or ANTHROPIC_BASE_URL.",
        )
    if isinstance(exc, anthropic.APIStatusError):
        return _status_error(exc, model)
    if isinstance(exc, httpx2.TimeoutException):
        return TeacherError(
            "timeout", f"Claude stopped sending for more than {timeout_s:g} s; the answer was discarded."
        )
    if isinstance(exc, httpx2.HTTPError):
        return TeacherError(
            "stream_cut",
            f"The connection to Claude dropped mid-answer ({type(exc).__name__}); the partial answer was discarded.",
        )
    if isinstance(exc, anthropic.AnthropicError):
        return TeacherError("unknown", f"Claude call failed: {type(exc).__name__}: {_one_line(str(exc))}")
    return TeacherError("unknown", f"Unexpected error talking to Claude: {type(exc).__name__}: {_one_line(str(exc))}")


def _status_error(exc: anthropic.APIStatusError, model: str) -> TeacherError:
    status = exc.status_code
    detail = _one_line(exc.api_message) or f"HTTP {status}"
    # a status under 400 is an `event: error` mid-stream: the body's type decides
    kind = error_kind(status if status >= 400 else None, exc.type)
    code = f" ({status})" if status >= 400 else " (mid-stream)"
    messages: dict[str, str] = {
        "auth": f"Claude rejected the API key{code}. Check ANTHROPIC_API_KEY.",
        "permission": f"Claude refused access{code}: {detail}. The key may lack access to {model}.",
        "rate_limit": f"Claude's rate limit was reached{code}{_retry_after(exc)}.",
        "overloaded": f"Claude is overloaded{code}; try again in a moment.",
        "server": f"Claude had a server error{code}: {detail}.",
        "bad_request": f"Claude rejected the request{code}: {detail}."
        + (f" Check the model name ({model})." if status == 404 else ""),
        "timeout": f"Claude timed out{code}: {detail}.",
        "unknown": f"Claude returned an error{code}: {detail}.",
    }
    return TeacherError(kind, messages[kind])
