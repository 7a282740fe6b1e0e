"""compare_responses: the local answer against the teacher's, with the agreement verdict."""

from __future__ import annotations

from typing import Any

from shammah_tui.pipeline.agreement import agreement
from shammah_tui.core.records import Label
from shammah_tui.core.tool_calls import ToolResult
from shammah_tui.tools.base import ToolSpec
from shammah_tui.tools.host import TeacherUnavailable, TeachingHost
from shammah_tui.tools.limits import local_decision, text_schema

SCHEMA = {
    "type": "object",
    "properties": {
        "query": text_schema("The question."),
        "teacher_answer": text_schema("The teacher's answer; asked from the teacher when left out."),
    },
    "required": ["query"],
    "additionalProperties": False,
}


NAME = "compare_responses"
DESCRIPTION = (
    "Compare the local models' answer to a question with the teacher's answer (given, or asked). "
    "Returns both texts, the agreement score and the verdict; the verdict also becomes a label "
    "for the router and validator."
)


def make(host: TeachingHost) -> ToolSpec:
    async def handler(data: dict[str, Any]) -> ToolResult:
        decision = await local_decision(host, data["query"])
        teacher_answer = data.get("teacher_answer")
        if teacher_answer is None:
            try:
                teacher_answer = await host.ask_teacher(data["query"])
            except TeacherUnavailable as exc:
                return ToolResult(f"The teacher could not answer: {exc.message}", is_error=True)
        local = decision.answer if decision.answer is not None else (decision.neural_answer or "")
        verdict = agreement(local, teacher_answer)
        if decision.answer is None:
            label_source: str = "neural"
        else:
            assert decision.source is not None, "a local answer names the tier that gave it"
            label_source = decision.source
        neural = 1.0 if label_source == "neural" else 0.0
        await host.add_labels([Label(data["query"], local, label_source, int(verdict.agrees), "compare", "",
                                     verdict.score, [decision.confidence or 0.0, neural, 0.0])])
        text = (f"Local ({decision.source or 'would forward; neural draft'}): {local!r}\n"
                f"Teacher: {teacher_answer!r}\n"
                f"Agreement {verdict.score:.2f} ({verdict.method}): {'AGREE' if verdict.agrees else 'DISAGREE'}")
        return ToolResult(text, data={"local_answer": local, "local_source": decision.source,
                                      "teacher_answer": teacher_answer, "score": round(verdict.score, 4),
                                      "method": verdict.method, "agrees": verdict.agrees})

    return ToolSpec(
        NAME, DESCRIPTION,
        SCHEMA, handler,
        summarize=lambda r: f"{'agree' if r.data.get('agrees') else 'disagree'} ({r.data.get('score', 0):.2f})",
    )
