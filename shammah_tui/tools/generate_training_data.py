"""generate_training_data: queue teacher-written Q&A pairs as examples and learned answers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shammah_tui.curriculum.skills import is_held_out_question
from shammah_tui.core.sanitize import QueryRejected, clean_query, strip_controls
from shammah_tui.core.text import normalize_query
from shammah_tui.core.tool_calls import ToolResult
from shammah_tui.tools.base import ToolSpec
from shammah_tui.tools.limits import MAX_EXAMPLES, MAX_TEXT

#: Other phrasings one example may carry.
MAX_PARAPHRASES = 10

if TYPE_CHECKING:
    from shammah_tui.tools.host import TeachingHost


def item_text_schema(description: str) -> dict[str, Any]:
    return {"type": "string", "description": description, "maxBytes": MAX_TEXT}


SCHEMA = {
    "type": "object",
    "properties": {
        "examples": {
            "type": "array",
            "description": "Question and answer pairs written by the teacher.",
            "minItems": 1,
            "maxItems": MAX_EXAMPLES,
            "items": {
                "type": "object",
                # No minLength here: an empty question or answer rejects that example (with its
                # reason), not the whole call.
                "properties": {
                    "query": item_text_schema("A question a user might ask."),
                    "answer": item_text_schema("The exact, short answer."),
                    "paraphrases": {
                        "type": "array", "maxItems": MAX_PARAPHRASES,
                        "description": "Other ways to ask the same question (same answer).",
                        "items": item_text_schema("The same question, worded otherwise."),
                    },
                },
                "required": ["query", "answer"],
                "additionalProperties": False,
            },
        },
        "topic": {"type": "string", "description": "What these examples teach.", "maxLength": 200},
    },
    "required": ["examples"],
    "additionalProperties": False,
}


NAME = "generate_training_data"
DESCRIPTION = (
    f"Teach the local models: give up to {MAX_EXAMPLES} question/answer pairs. Each is stored as a "
    "learned answer (served on an exact repeat at once) and queued as a training example for the "
    "generator. Keep each answer short and exactly right. Returns how many were queued and why any "
    "were rejected."
)


def make(host: TeachingHost) -> ToolSpec:
    async def handler(data: dict[str, Any]) -> ToolResult:
        accepted: list[tuple[str, str]] = []
        groups: list[list[str]] = []
        rejects: list[dict[str, Any]] = []
        seen: set[str] = set()
        for i, item in enumerate(data["examples"]):
            try:
                query = clean_query(item["query"])
            except QueryRejected as exc:
                rejects.append({"index": i, "reason": f"query: {exc}"})
                continue
            answer = strip_controls(item["answer"]).strip()
            if not answer:
                rejects.append({"index": i, "reason": "answer is empty"})
                continue
            norm = normalize_query(query)
            if norm in seen:
                rejects.append({"index": i, "reason": "duplicate of an earlier question in this call"})
                continue
            if is_held_out_question(query):
                rejects.append({"index": i, "reason": "a held-out question: kept for measuring the skills"})
                continue
            seen.add(norm)
            group = [query]
            for other in item.get("paraphrases", []):
                try:
                    phrased = clean_query(other)
                except QueryRejected:
                    continue  # a bad phrasing drops itself, not its question
                if normalize_query(phrased) not in seen and not is_held_out_question(phrased):
                    seen.add(normalize_query(phrased))
                    group.append(phrased)
            accepted += [(q, answer) for q in group]
            if len(group) > 1:
                groups.append(group)
        queued = await host.learn_pairs(accepted, "tool") if accepted else 0
        if groups:
            await host.add_paraphrases(groups)
        counts = await host.queue_counts()
        text = f"Queued {queued} example(s); rejected {len(rejects)}. Queue now holds {counts['queued']}."
        if groups:
            text += f" {len(groups)} question(s) came with other phrasings (kept as paraphrase pairs)."
        for r in rejects[:20]:
            text += f"\n- example {r['index']}: {r['reason']}"
        return ToolResult(text, is_error=queued == 0,
                          data={"queued": queued, "rejected": rejects, "queue_size": counts["queued"]})

    return ToolSpec(
        NAME, DESCRIPTION,
        SCHEMA, handler,
        summarize=lambda r: f"queued {r.data.get('queued', 0)}, rejected {len(r.data.get('rejected', []))}",
    )

