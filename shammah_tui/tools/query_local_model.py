"""query_local_model: run the local pipeline on a query, without asking the teacher."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shammah_tui.core.tool_calls import ToolResult
from shammah_tui.tools.base import ToolSpec
from shammah_tui.tools.limits import MAX_TEXT, local_decision, text_schema

if TYPE_CHECKING:
    from shammah_tui.tools.host import TeachingHost

SCHEMA = {
    "type": "object",
    "properties": {"query": text_schema("The question to put to the local models.")},
    "required": ["query"],
    "additionalProperties": False,
}


NAME = "query_local_model"
DESCRIPTION = (
    "Ask the local models a question without involving the teacher. Returns the answer the local "
    "pipeline would give (or that it would forward), its source tier, router and validator "
    f"probabilities, confidence and latency. query: at most {MAX_TEXT} bytes."
)


def make(host: TeachingHost) -> ToolSpec:
    async def handler(data: dict[str, Any]) -> ToolResult:
        decision = await local_decision(host, data["query"])
        payload = {
            "answer": decision.answer, "source": decision.source, "router_p": decision.router_p,
            "validator_p": decision.validator_p, "confidence": decision.confidence,
            "latency_ms": round(decision.latency_ms, 2), "neural_answer": decision.neural_answer,
            "neural_program": decision.neural_program,
        }
        if decision.answer is None:
            text = (f"No local answer (would forward to the teacher). Tried: {', '.join(decision.tried) or 'none'}"
                    f"{'; ' + decision.note if decision.note else ''}. Neural draft: {decision.neural_answer!r}.")
        else:
            text = f"Local answer from {decision.source}: {decision.answer}"
        if decision.neural_program:
            text += f" (the model's draft is computed by {decision.neural_program})"
        text += (f"\nrouter_p={_fmt(decision.router_p)} validator_p={_fmt(decision.validator_p)} "
                 f"confidence={_fmt(decision.confidence)} latency={decision.latency_ms:.1f} ms")
        return ToolResult(text, data=payload)

    return ToolSpec(
        NAME, DESCRIPTION,
        SCHEMA, handler,
        summarize=lambda r: (f"{r.data['source']}: {str(r.data.get('answer'))[:60]}" if r.data.get("answer") is not None
                             else "no local answer (would forward)"),
    )


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
