"""Teach the skills from nothing, then serve unseen instances with the template tier off.

    python bench/teach_skills.py [--rounds 6] [--questions 200] [--json]

1. `shammah-tui teach --rounds N --teacher offline` on a fresh data dir, timed: the offline teacher
   teaches the skills through the tools, and `stats --json` then reports each skill's held-out
   accuracy (questions the generator never trained on).
2. Per skill, with `tier_order = ["learned", "neural"]` in settings.toml (no templates), a `batch`
   of instances neither taught nor held out. The baseline without models in the same run is the
   exact-match dictionary: it has seen none of them, so it serves 0 and everything it does not
   serve is forwarded. Reported: the share the neural tier served, its precision against the
   teacher's answer, and the share forwarded.

Every number comes from the real CLI, one process per step, as a user would run it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.shift_stream import settings_lines  # noqa: E402
from shammah_tui.curriculum.skills import SKILLS, is_held_out  # noqa: E402
from shammah_tui.paths import DB_NAME, SETTINGS_NAME  # noqa: E402
from shammah_tui.pipeline.agreement import agreement  # noqa: E402
from shammah_tui.store import Store  # noqa: E402


def cli(data: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "shammah_tui", *args, "--data-dir", str(data),
                           "--teacher", "offline"], capture_output=True, text=True, input=stdin, check=True)


#: What an instance asks, whatever the phrasing: its numbers, its quoted word, and its operation.
_OPERATIONS = [("+", r"\+|plus"), ("-", r"-|minus"), ("*", r"\*|times|multiplied"),
               ("reverse", r"revers|backwards"), ("uppercase", r"upper|capital"), ("letters", r"letters|length")]


def signature(query: str) -> tuple:
    """The question under the phrasing ("Compute 3+4." and "What is 3 plus 4?" are one)."""
    lowered = query.lower()
    operation = next((name for name, pattern in _OPERATIONS if re.search(pattern, lowered)), "")
    return operation, tuple(re.findall(r"\d+|(?<=['\"])[a-z]+(?=['\"])", lowered))


async def taught_queries(data: Path) -> set[tuple]:
    """Every question the teacher taught, trained on yet or still queued, as its signature."""
    store = await Store.open(data / DB_NAME)
    try:
        taught = [e.query for state in ("trained", "queued") for e in await store.examples(state)]
        return {signature(q) for q in taught}
    finally:
        await store.close()


def serve_unseen(data: Path, skill: str, n: int, taught: set[tuple]) -> dict:
    """`n` instances whose question was never taught in any phrasing, nor held out."""
    items = [i for i in SKILLS[skill].training(n * 3, seed="bench-unseen")
             if signature(i.query) not in taught and not is_held_out(i.key)][:n]
    lines = "\n".join(json.dumps({"query": i.query}) for i in items) + "\n"
    out = cli(data, "batch", "-", "--json", "--train-every", "1000000", stdin=lines)
    results = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
    neural = [(r, i) for r, i in zip(results, items) if r["source"] == "neural"]
    right = sum(agreement(r["answer"], i.answer).agrees for r, i in neural)
    local = [(r, i) for r, i in zip(results, items) if r["source"] not in ("forward", None)]
    local_right = sum(agreement(r["answer"], i.answer).agrees for r, i in local)
    by_source: dict[str, int] = {}
    for r in results:
        by_source[r["source"]] = by_source.get(r["source"], 0) + 1
    return {"questions": len(items), "by_source": by_source,
            "neural_share": len(neural) / max(len(items), 1),
            "neural_precision": right / len(neural) if neural else None,
            "local_precision": local_right / len(local) if local else None,
            "baseline_exact_dictionary_share": 0.0,
            "wrong_examples": [(i.query, r["answer"], i.answer) for r, i in neural
                               if not agreement(r["answer"], i.answer).agrees][:5]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--questions", type=int, default=200)
    parser.add_argument("--data-dir", help="keep the data dir here (default: a temporary one)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a settings.toml line for the teaching (e.g. batch_size=64); repeatable")
    parser.add_argument("--unseen-only", action="store_true",
                        help="skip the teaching: serve unseen instances from --data-dir as it is")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    data = Path(args.data_dir) if args.data_dir else Path(tempfile.mkdtemp(prefix="shammah-skills-"))

    lines = settings_lines(args.set)
    if lines:
        data.mkdir(parents=True, exist_ok=True)
        (data / SETTINGS_NAME).write_text("\n".join(lines) + "\n", encoding="utf-8")
    started = time.perf_counter()
    teach = None if args.unseen_only else cli(data, "teach", "--rounds", str(args.rounds))
    teach_s = time.perf_counter() - started
    stats = json.loads(cli(data, "stats", "--json").stdout)
    report: dict = {"rounds": args.rounds, "settings": lines, "teach_seconds": round(teach_s, 1), "data_dir": str(data),
                    "held_out": stats.get("skills"), "teach_tail": teach.stdout.splitlines()[-12:] if teach else []}
    (data / SETTINGS_NAME).write_text("\n".join(lines + ['tier_order = ["learned", "neural"]']) + "\n",
                                      encoding="utf-8")
    taught = asyncio.run(taught_queries(data))
    report["unseen"] = {name: serve_unseen(data, name, args.questions, taught) for name in SKILLS}
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"teach --rounds {args.rounds}: {teach_s:.0f} s")
    for name, row in (report["held_out"] or {}).items():
        print(f"  held-out {name}: {row}")
    for name, row in report["unseen"].items():
        p = row["neural_precision"]
        print(f"  unseen {name}: {row['questions']} questions, neural {row['neural_share']:.0%} "
              f"at precision {'—' if p is None else f'{p:.3f}'}; by source {row['by_source']}; "
              f"exact dictionary baseline 0%")


if __name__ == "__main__":
    main()
