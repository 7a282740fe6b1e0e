"""train: train the local models on the queue now."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shammah_tui.core.tool_calls import ToolResult
from shammah_tui.tools.base import ToolSpec

if TYPE_CHECKING:
    from shammah_tui.tools.host import TeachingHost

SCHEMA = {
    "type": "object",
    "properties": {
        "wait": {"type": "boolean", "description": "true: wait and return the losses; false: start in the background."},
    },
    "additionalProperties": False,
}


NAME = "train"
DESCRIPTION = (
    "Train the generator, router and validator on the queued examples (with replay of earlier ones). "
    "wait=true (default) returns each model's loss before and after on the same evaluation batch (the "
    "generator's: held-out skill questions it never trained on), what that batch was, and the improvement "
    "in percent; wait=false starts the run in the background."
)


def make(host: TeachingHost) -> ToolSpec:
    async def handler(data: dict[str, Any]) -> ToolResult:
        if not data.get("wait", True):
            counts = await host.queue_counts()
            if not host.training and not (counts["queued"] or counts["trained"]):
                return ToolResult("Nothing to train on: the queue is empty and nothing was trained before.",
                                  is_error=True, data={"status": "empty", "started": False})
            task = host.start_training("tool")
            if task is None:
                return ToolResult("A training run is already in progress.", data={"started": False})
            return ToolResult("Training started in the background.", data={"started": True})
        report = await host.train("tool")
        if report is None:
            return ToolResult("Nothing to train on: the queue is empty and nothing was trained before.",
                              is_error=True, data={"status": "empty"})
        losses = {m: {"old_loss": round(l.old_loss, 4), "new_loss": round(l.new_loss, 4),
                      "improvement_pct": round(l.improvement_pct, 1), "measured_on": l.measured_on}
                  for m, l in report.losses.items()}
        lines = [f"Training {report.status}: {report.steps} steps, {report.examples} examples, "
                 f"{report.examples_per_s:.0f} examples/s, {report.duration_s:.1f} s."]
        lines += [f"- {m}: loss {v['old_loss']} → {v['new_loss']} ({v['improvement_pct']:+.1f}%), "
                  f"measured on {v['measured_on']}" for m, v in losses.items()]
        if report.error:
            lines.append(f"Error: {report.error}")
        return ToolResult("\n".join(lines), is_error=report.status == "failed",
                          data={"status": report.status, "losses": losses, "steps": report.steps,
                                "duration_s": round(report.duration_s, 2)})

    def summarize(result: ToolResult) -> str:
        losses = result.data.get("losses", {})
        name = "adapter" if "adapter" in losses else "generator"
        gen = losses.get(name)
        if gen:
            return f"{name} {gen['old_loss']:.3f}→{gen['new_loss']:.3f} ({gen['improvement_pct']:+.1f}%)"
        return str(result.data.get("status", result.text.splitlines()[0] if result.text else ""))

    return ToolSpec(
        NAME, DESCRIPTION,
        SCHEMA, handler, summarize=summarize,
    )
