"""analyze_model: accuracy per category on held-out queries, weakest areas, what to teach next."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shammah_tui.pipeline.agreement import agreement
from shammah_tui.curriculum import FAMILIES, held_out_items
from shammah_tui.core.tool_calls import ToolResult
from shammah_tui.tools.base import ToolSpec

if TYPE_CHECKING:
    from shammah_tui.tools.host import TeachingHost

SCHEMA = {
    "type": "object",
    "properties": {
        "categories": {"type": "array", "items": {"type": "string", "enum": list(FAMILIES)}, "maxItems": 20},
        "samples_per_category": {"type": "integer", "minimum": 1, "maximum": 50},
        "skills": {"type": "boolean", "description": "Also the generator's held-out accuracy per skill "
                                                     "(default true)."},
    },
    "additionalProperties": False,
}
#: Seed of the held-out queries: fixed, so analyses before and after teaching compare like with like.
HELD_OUT_SEED = 7_777


async def analyze(host: TeachingHost, categories: list[str], samples: int) -> dict[str, Any]:
    """Per category: share answered locally and correctly (accuracy), locally at all (coverage),
    and the generator's own accuracy on the same queries."""
    report: dict[str, Any] = {}
    for family in categories:
        items = held_out_items(family, samples, HELD_OUT_SEED)
        correct = local = neural_ok = 0
        for item in items:
            decision = await host.local_only(item.query)
            if decision.answer is not None:
                local += 1
                correct += agreement(decision.answer, item.answer).agrees
            draft = decision.answer if decision.source == "neural" else decision.neural_answer
            if draft:
                neural_ok += agreement(draft, item.answer).agrees
        n = len(items) or 1
        report[family] = {"accuracy": round(correct / n, 3), "coverage": round(local / n, 3),
                          "neural_accuracy": round(neural_ok / n, 3), "samples": len(items)}
    return report


NAME = "analyze_model"
DESCRIPTION = (
    "Evaluate the local models on held-out queries per category (" + ", ".join(FAMILIES) + "). "
    "Returns accuracy (answered locally and correctly), coverage and the generator's own accuracy "
    "per category, the weakest areas and what to teach next; and the generator's accuracy on each "
    "skill's fixed held-out set (arithmetic, words, leap years), per group."
)


def make(host: TeachingHost) -> ToolSpec:
    async def handler(data: dict[str, Any]) -> ToolResult:
        categories = data.get("categories") or list(FAMILIES)
        per = await analyze(host, categories, data.get("samples_per_category", 8))
        ranked = sorted(per, key=lambda f: (per[f]["accuracy"], per[f]["neural_accuracy"]))
        weakest = ranked[: min(2, len(ranked))]
        mean = sum(v["accuracy"] for v in per.values()) / max(len(per), 1)
        lines = [f"Mean accuracy {mean:.1%} over {len(per)} categories (held-out queries)."]
        lines += [f"- {f}: accuracy {v['accuracy']:.0%}, coverage {v['coverage']:.0%}, "
                  f"neural {v['neural_accuracy']:.0%}" for f, v in per.items()]
        recommendations = [f"Teach more {f} examples (accuracy {per[f]['accuracy']:.0%})." for f in weakest
                           if per[f]["accuracy"] < 0.95]
        lines += ["Weakest: " + ", ".join(weakest)] + recommendations
        skills = await host.skill_report() if data.get("skills", True) else {}
        if skills:
            lines.append("The generator on each skill's held-out questions (never trained on):")
            lines += [f"- {name}: {v['accuracy']:.0%} right, {v['served']:.0%} served by the neural tier "
                      f"({v['samples']} questions; " + ", ".join(f"{g} {a:.0%}" for g, a in v["groups"].items()) + ")"
                      for name, v in skills.items()]
        return ToolResult("\n".join(lines), data={"categories": per, "mean_accuracy": round(mean, 4),
                                                   "weakest": weakest, "recommendations": recommendations,
                                                   "skills": skills})

    return ToolSpec(
        NAME, DESCRIPTION,
        SCHEMA, handler,
        summarize=lambda r: f"mean accuracy {r.data.get('mean_accuracy', 0):.1%}; weakest "
                            + ", ".join(r.data.get("weakest", [])),
    )
