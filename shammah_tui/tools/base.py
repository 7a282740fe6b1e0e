"""Tool plumbing shared by every teaching tool: schema validation, timing, events.

A tool is a `ToolSpec` (name, description, JSON schema, async handler). The
registry validates input against the schema before the handler sees it, turns
any failure into an `is_error` result (the tool loop goes on), times the call,
and reports a `ToolCallEvent` when it starts and when it ends.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from shammah_tui.core.tool_calls import ToolCallEvent, ToolResult

#: Largest serialized tool input accepted, whatever the schema says.
MAX_INPUT_BYTES = 256 * 1024


class ToolInputError(ValueError):
    """The tool input does not match its schema or limits."""


Handler = Callable[[dict[str, Any]], Awaitable[ToolResult]]


@dataclass
class ToolSpec:
    """A tool the teacher can call."""

    name: str
    description: str
    input_schema: dict[str, Any]
    handler: Handler
    #: One line for the log from a successful result.
    summarize: Callable[[ToolResult], str] | None = None

    def schema(self) -> dict[str, Any]:
        """The Messages API tool definition."""
        return {"name": self.name, "description": self.description, "input_schema": self.input_schema}


def validate(value: Any, schema: dict[str, Any], where: str = "input") -> None:
    """Check `value` against the subset of JSON Schema our tools use.

    Supported: type (object, array, string, integer, number, boolean), properties,
    required, additionalProperties=false, items, minItems/maxItems,
    minLength/maxLength, maxBytes (UTF-8 size), minimum/maximum, enum.
    """
    kind = schema.get("type")
    if kind == "object":
        if not isinstance(value, dict):
            raise ToolInputError(f"{where} must be an object, got {_type_name(value)}")
        props = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in value:
                raise ToolInputError(f"{where}.{name} is required")
        if schema.get("additionalProperties") is False:
            extra = sorted(set(value) - set(props))
            if extra:
                raise ToolInputError(f"{where} has unknown field(s): {', '.join(extra)}")
        for name, sub in props.items():
            if name in value:
                validate(value[name], sub, f"{where}.{name}")
    elif kind == "array":
        if not isinstance(value, list):
            raise ToolInputError(f"{where} must be an array, got {_type_name(value)}")
        if "minItems" in schema and len(value) < schema["minItems"]:
            raise ToolInputError(f"{where} needs at least {schema['minItems']} item(s)")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            raise ToolInputError(f"{where} has {len(value)} items; at most {schema['maxItems']} allowed")
        if "items" in schema:
            for i, item in enumerate(value):
                validate(item, schema["items"], f"{where}[{i}]")
    elif kind == "string":
        if not isinstance(value, str):
            raise ToolInputError(f"{where} must be a string, got {_type_name(value)}")
        if "minLength" in schema and len(value.strip()) < schema["minLength"]:
            raise ToolInputError(f"{where} must not be empty")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            raise ToolInputError(f"{where} is {len(value)} characters; at most {schema['maxLength']} allowed")
        limit = schema.get("maxBytes")
        if limit is not None and len(value.encode("utf-8", "surrogatepass")) > limit:
            raise ToolInputError(f"{where} is larger than {limit} bytes")
    elif kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ToolInputError(f"{where} must be an integer, got {_type_name(value)}")
    elif kind == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ToolInputError(f"{where} must be a number, got {_type_name(value)}")
    elif kind == "boolean":
        if not isinstance(value, bool):
            raise ToolInputError(f"{where} must be true or false, got {_type_name(value)}")
    if "enum" in schema and value not in schema["enum"]:
        raise ToolInputError(f"{where} must be one of {', '.join(map(str, schema['enum']))}")
    if kind in ("integer", "number"):
        if "minimum" in schema and value < schema["minimum"]:
            raise ToolInputError(f"{where} must be ≥ {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            raise ToolInputError(f"{where} must be ≤ {schema['maximum']}")


def _type_name(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), type(value).__name__
    )


ToolEventSink = Callable[[ToolCallEvent], None]
ToolRecorder = Callable[[ToolCallEvent], Awaitable[None]]


class ToolRegistry:
    """The teacher's tools by name, with validation, timing, events and persistence."""

    def __init__(
        self,
        specs: list[ToolSpec],
        *,
        on_event: ToolEventSink | None = None,
        record: ToolRecorder | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._specs = {spec.name: spec for spec in specs}
        self._listeners: list[ToolEventSink] = [on_event] if on_event else []
        self._record = record
        self._clock = clock
        self._counter = 0

    @property
    def names(self) -> list[str]:
        return list(self._specs)

    def schemas(self) -> list[dict[str, Any]]:
        """Tool definitions for the Messages API `tools` parameter."""
        return [spec.schema() for spec in self._specs.values()]

    def subscribe(self, listener: ToolEventSink) -> Callable[[], None]:
        """Add an event listener; returns a function that removes it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def _emit(self, event: ToolCallEvent) -> None:
        for listener in list(self._listeners):
            listener(event)

    async def call(self, name: str, raw_input: Any, call_id: str | None = None) -> ToolResult:
        """Run one tool call. Never raises for bad input or a failing tool."""
        self._counter += 1
        call_id = call_id or f"call-{self._counter}"
        shown_input = raw_input if isinstance(raw_input, dict) else {"_raw": raw_input}
        started = self._clock()
        t0 = time.perf_counter()
        self._emit(ToolCallEvent(call_id, name, shown_input, "running", started))
        spec = self._specs.get(name)
        try:
            if spec is None:
                raise ToolInputError(f"unknown tool {name!r}; available: {', '.join(self._specs)}")
            if isinstance(raw_input, str):
                try:
                    raw_input = json.loads(raw_input)
                except json.JSONDecodeError as exc:
                    raise ToolInputError(f"input is not valid JSON: {exc.msg}") from None
            size = len(json.dumps(raw_input, ensure_ascii=False).encode("utf-8", "surrogatepass"))
            if size > MAX_INPUT_BYTES:
                raise ToolInputError(f"input is {size} bytes; at most {MAX_INPUT_BYTES} allowed")
            validate(raw_input, spec.input_schema)
            result = await spec.handler(raw_input)
        except asyncio.CancelledError:
            # The loop that called this tool was stopped: the call ends here, and says so.
            await self._finish(ToolCallEvent(
                call_id, name, shown_input, "error", started, duration_ms=(time.perf_counter() - t0) * 1000,
                summary="cancelled", result_text="The call was cancelled before it finished."))
            raise
        except ToolInputError as exc:
            result = ToolResult(f"Invalid input for {name}: {exc}", is_error=True)
        except Exception as exc:  # a tool failure is the model's to read, not a crash
            result = ToolResult(f"{name} failed: {type(exc).__name__}: {exc}", is_error=True)
        duration_ms = (time.perf_counter() - t0) * 1000
        if result.is_error:
            summary = result.text.splitlines()[0][:200] if result.text else "error"
        elif spec is not None and spec.summarize is not None:
            summary = spec.summarize(result)
        else:
            summary = result.text.splitlines()[0][:200] if result.text else "ok"
        await self._finish(ToolCallEvent(
            call_id, name, shown_input, "error" if result.is_error else "ok", started,
            duration_ms=duration_ms, summary=summary, result_text=result.text, data=result.data,
        ))
        return result

    async def _finish(self, event: ToolCallEvent) -> None:
        """Persist a finished call, then report it."""
        try:
            if self._record is not None:
                await self._record(event)
        finally:
            self._emit(event)
