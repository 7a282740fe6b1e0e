"""The last training run: per model, loss before → after on the same evaluation batch (what that
batch was: held-out questions, or the run's own training batch); per skill, the generator's accuracy
on its held-out set, run after run."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from textual.content import Content
from textual.widgets import Static

from shammah_tui.formatting import format_loss
from shammah_tui.core.kinds import MODELS
from shammah_tui.core.records import ModelLoss
from shammah_tui.ui.widgets.palette import MODEL_RGB, hex_colour

#: Column widths: model, old loss, new loss, improvement.
WIDTHS = (10, 10, 10, 13)


class RunTable(Static):
    """Title line plus a model | old | new | improvement table."""

    def on_mount(self) -> None:
        self.show_run("No training run yet.", {})

    def show_run(self, title: str, losses: Mapping[str, ModelLoss],
                 skills: Mapping[str, Sequence[float]] | None = None) -> None:
        """Show a run's title, its per-model losses (models it did not train show —) and each
        skill's held-out accuracy over the last runs (oldest first)."""
        head = "underline $text-muted"
        lines = [
            Content.styled(title, "$text-muted"),
            Content.assemble(("model".ljust(WIDTHS[0]), head), " ", ("old loss".rjust(WIDTHS[1]), head), " ",
                             ("new loss".rjust(WIDTHS[2]), head), " ", ("improvement".rjust(WIDTHS[3]), head)),
        ]
        for model in MODELS:
            loss = losses.get(model)
            if loss is None and model == ("generator" if "adapter" in losses else "adapter"):
                continue  # one answering model at a time: no empty row for the other one
            label = (model.ljust(WIDTHS[0]), f"bold {hex_colour(MODEL_RGB[model])}")
            if loss is None:
                lines.append(Content.assemble(label, " ", "—".rjust(WIDTHS[1]), " ", "—".rjust(WIDTHS[2]), " ",
                                              "—".rjust(WIDTHS[3])))
                continue
            pct = loss.improvement_pct
            pct_style = "$text-success" if pct > 0 else ("$text-error" if pct < 0 else "")
            lines.append(Content.assemble(
                label, " ", format_loss(loss.old_loss).rjust(WIDTHS[1]), " ",
                format_loss(loss.new_loss).rjust(WIDTHS[2]), " ", (f"{pct:+.1f}%".rjust(WIDTHS[3]), pct_style)))
        for name in ("generator", "adapter"):
            answering = losses.get(name)
            if answering is not None:
                lines.append(Content.styled(f"{name} loss measured on {answering.measured_on}", "$text-muted"))
        if skills:
            lines.append(Content.assemble(("skill".ljust(WIDTHS[0]), head), " ",
                                          ("held-out accuracy, run by run".ljust(sum(WIDTHS[1:]) + 2), head)))
            for name, history in skills.items():
                trend = " → ".join(f"{a:.0%}" for a in list(history)[-4:])
                lines.append(Content.assemble((name.ljust(WIDTHS[0]), "bold"), " ", trend))
        self.update(Content("\n").join(lines))
