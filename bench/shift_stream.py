"""The shift stream: after teaching, traffic of patterns nobody taught, through the real
`shammah-tui batch --json --teacher claude` path, with a baseline without models in the same run.

    python bench/shift_stream.py [--rounds 3] [--questions 1000] [--seed 0] [--json]

1. `teach --rounds N --teacher offline` on a fresh data dir (the skills and families taught).
2. A stream of questions answered by a loopback Messages API that answers each one exactly:
   new patterns (binary, percent, time conversions the templates lack, arithmetic in other
   wordings, word operations without quotes), the skills in their own wordings (instances never
   taught nor held out), and the offline curriculum's general questions. `batch --train-every`
   trains on what was forwarded as the stream goes, so whatever the generator learns from the
   traffic may be served.
3. Reported, on the stream (answers the models never trained on when asked): served precision
   overall and per pattern; served answers of a new pattern before that pattern had
   MIN_REGION_LABELS forwards in the stream (evidence the region could have had); each skill's
   held-out accuracy before → after the stream (`stats --json`); the tiers' bounds beside the
   errors spot checks measured; what the generator learned from the traffic (its drafts of the
   stream's second half, forwarded questions it had not trained on, right per kind). Beside it,
   the baseline without models: templates + an exact-match dictionary + lexical similarity, over
   the very same stream.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from shammah_tui.curriculum import sample_items  # noqa: E402
from shammah_tui.curriculum.skills import SKILLS, WORD_ANSWERS, is_held_out_question  # noqa: E402
from shammah_tui.curriculum.words import WORDS  # noqa: E402
from shammah_tui.pipeline.agreement import agreement  # noqa: E402
from shammah_tui.pipeline.learned import LearnedIndex  # noqa: E402
from shammah_tui.pipeline.regions import MIN_REGION_LABELS, pattern_of  # noqa: E402
from shammah_tui.pipeline.templates import template_answer  # noqa: E402
from shammah_tui.core.text import normalize_query  # noqa: E402
from shammah_tui.core.records import LearnedAnswer  # noqa: E402
from tests.fakeapi import FakeMessagesAPI  # noqa: E402


@dataclass(frozen=True)
class Question:
    query: str
    answer: str
    kind: str
    """new pattern (binary, percent, …), skill (arithmetic, words, leap) or general"""


def _new_patterns(rng: random.Random) -> list[Question]:
    """One question of a pattern the curriculum never taught; the template tier answers none."""
    a, b = rng.randint(10, 999), rng.randint(10, 999)
    word = rng.choice(WORDS)
    makers: list[Callable[[], Question]] = [
        lambda: Question(f"What is {a} in binary?", bin(a)[2:], "binary"),
        lambda: (lambda p, q: Question(f"What is {p}% of {q}?", str(p * q // 100), "percent"))(
            rng.randrange(5, 100, 5), rng.randrange(20, 2000, 20)),
        lambda: Question(f"How many minutes are in {a % 48 + 1} hours?", str((a % 48 + 1) * 60), "time_units"),
        lambda: Question(f"How many days are in {a % 60 + 1} weeks?", str((a % 60 + 1) * 7), "time_units"),
        lambda: Question(f"What is the sum of {a} and {b}?", str(a + b), "arithmetic_reworded"),
        lambda: Question(f"Subtract {min(a, b)} from {max(a, b)}.", str(max(a, b) - min(a, b)),
                         "arithmetic_reworded"),
        lambda: Question(f"Uppercase the word {word}.", WORD_ANSWERS["uppercase"](word), "words_unquoted"),
        lambda: Question(f"Reverse the word {word}.", WORD_ANSWERS["reverse"](word), "words_unquoted"),
    ]
    return [rng.choice(makers)()]


def build_stream(n: int, seed: int) -> list[Question]:
    """`n` questions: half new patterns, a quarter skills in their own wordings, a quarter general.
    None is a held-out question in any wording."""
    rng = random.Random(f"shift:{seed}")
    skills = [Question(i.query, i.answer, i.skill) for name in SKILLS
              for i in SKILLS[name].training(n // 12 + 5, seed=f"shift-{seed}")]
    general = [Question(i.query, i.answer, "general") for i in sample_items(n // 4 + 5, seed=seed + 17)]
    out: list[Question] = []
    while len(out) < n:
        u = rng.random()
        q = (_new_patterns(rng)[0] if u < 0.5 else skills.pop(rng.randrange(len(skills))) if u < 0.75 and skills
             else general.pop(rng.randrange(len(general))) if general else _new_patterns(rng)[0])
        if not is_held_out_question(q.query):
            out.append(q)
    return out


def cli(data: Path, *args: str, env: dict[str, str] | None = None, stdin: str | None = None,
        teacher: str = "offline") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "shammah_tui", *args, "--data-dir", str(data), "--teacher", teacher],
                          capture_output=True, text=True, input=stdin, check=True, env=env)


async def run_stream(data: Path, stream: Sequence[Question], train_every: int) -> list[dict]:
    """The stream through `batch --json --teacher claude`, Claude played by a loopback server that
    answers each question exactly."""
    answer_of = {q.query: q.answer for q in stream}

    def responder(body: dict) -> str | None:
        last = body["messages"][-1]["content"]
        text = last if isinstance(last, str) else "".join(b.get("text", "") for b in last)
        return answer_of.get(text)

    api = FakeMessagesAPI(responder)
    base_url = await api.start()
    try:
        env = {**os.environ, "ANTHROPIC_API_KEY": "loopback", "ANTHROPIC_BASE_URL": base_url}
        lines = "".join(json.dumps({"query": q.query}) + "\n" for q in stream)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "shammah_tui", "batch", "-", "--json", "--train-every", str(train_every),
            "--data-dir", str(data), "--teacher", "claude", stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env)
        out, err = await proc.communicate(lines.encode())
        if proc.returncode not in (0, 1):
            raise SystemExit(f"batch failed ({proc.returncode}): {err.decode()[-2000:]}")
    finally:
        await api.stop()
    rows = [json.loads(line) for line in out.decode().splitlines() if line.strip()]
    assert len(rows) == len(stream), (len(rows), len(stream))
    return rows


def baseline(stream: Sequence[Question]) -> list[str | None]:
    """Templates, then an exact-match dictionary, then lexical similarity ≥ 0.9: what each question
    would be served with no model at all (None: forwarded, then remembered)."""
    index = LearnedIndex()
    served: list[str | None] = []
    for n, q in enumerate(stream):
        found = template_answer(q.query)
        hit = index.lookup(normalize_query(q.query), "")
        if found is not None:
            served.append(found.answer)
        elif hit is not None and index.confident(hit):
            served.append(hit.entry.answer)
        else:
            served.append(None)
            index.add(LearnedAnswer(n, normalize_query(q.query), "", q.query, q.answer, "forward"))
    return served


def score(stream: Sequence[Question], answers: Sequence[str | None], sources: Sequence[str | None]) -> dict:
    """Served share and precision overall and per kind and per pattern; new-pattern answers served
    before their pattern had MIN_REGION_LABELS forwards in the stream."""
    per_kind: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])  # asked, served, right
    per_pattern: dict[str, list[int]] = defaultdict(lambda: [0, 0])  # served, right
    forwards: Counter[str] = Counter()
    early = 0
    for q, answer, source in zip(stream, answers, sources):
        pattern = pattern_of(q.query)
        row = per_kind[q.kind]
        row[0] += 1
        if answer is None or source in (None, "forward"):
            forwards[pattern] += 1
            continue
        right = agreement(answer, q.answer).agrees
        row[1] += 1
        row[2] += right
        per_pattern[pattern][0] += 1
        per_pattern[pattern][1] += right
        if source == "neural" and forwards[pattern] < MIN_REGION_LABELS:
            early += 1
    served = sum(r[1] for r in per_kind.values())
    right = sum(r[2] for r in per_kind.values())
    return {
        "served_share": round(served / len(stream), 4),
        "precision": round(right / served, 4) if served else None,
        "by_kind": {k: {"asked": a, "served_share": round(s / a, 3), "precision": round(r / s, 3) if s else None}
                    for k, (a, s, r) in sorted(per_kind.items())},
        "patterns_served_10_plus": {p: round(r / s, 3) for p, (s, r) in per_pattern.items() if s >= 10},
        "worst_pattern_precision_10_plus": min((r / s for s, r in per_pattern.values() if s >= 10), default=None),
        "neural_served_before_evidence": early,
    }


async def forward_drafts(data: Path) -> dict[str, bool]:
    """The generator's drafts of forwarded questions, judged against the teacher's answer at the
    forward (out of sample: a forwarded question is trained on only after it was asked)."""
    from shammah_tui.paths import DB_NAME
    from shammah_tui.store import Store

    store = await Store.open(data / DB_NAME)
    try:
        points = await store.calibration_points("validator", 1_000_000)
    finally:
        await store.close()
    return {p.query: p.agreed for p in points if p.origin == "forward"}


def draft_accuracy(stream: Sequence[Question], drafts: dict[str, bool], start: int) -> dict:
    """What the generator learned from the traffic: per kind, its drafts' accuracy on the stream's
    questions from `start` on (after the runs that trained on the first ones)."""
    per_kind: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for q in stream[start:]:
        if q.query in drafts:
            per_kind[q.kind][0] += 1
            per_kind[q.kind][1] += drafts[q.query]
    return {k: {"drafts": n, "right": round(r / n, 3)} for k, (n, r) in sorted(per_kind.items())}


def settings_lines(items: Sequence[str]) -> list[str]:
    """`--set KEY=VALUE` items as settings.toml lines."""
    return [f"{k.strip()} = {v.strip()}" for k, _, v in (item.partition("=") for item in items)]


def _write_settings(data: Path, lines: Sequence[str]) -> None:
    """settings.toml with these `key = value` lines, each replacing the file's own line for its key."""
    path = data / "settings.toml"
    keys = {line.partition("=")[0].strip() for line in lines}
    kept = [line for line in (path.read_text(encoding="utf-8").splitlines() if path.exists() else [])
            if line.partition("=")[0].strip() not in keys]
    path.write_text("\n".join([*kept, *lines]) + "\n", encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--questions", type=int, default=1000)
    ap.add_argument("--train-every", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data-dir", help="an already taught data dir to copy (skips the teaching)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a settings.toml line for teaching and stream (e.g. replay_fraction=0.5); repeatable")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    stream = build_stream(args.questions, args.seed)
    report: dict = {"questions": len(stream), "seed": args.seed, "settings": args.set,
                    "kinds": dict(Counter(q.kind for q in stream))}
    with tempfile.TemporaryDirectory(prefix="shammah-shift-") as tmp:
        data = Path(tmp) / "data"
        started = time.perf_counter()
        lines = settings_lines(args.set)
        if args.data_dir:
            import shutil

            shutil.copytree(args.data_dir, data)
            if lines:
                _write_settings(data, lines)
        else:
            if lines:
                data.mkdir(parents=True)
                _write_settings(data, lines)
            cli(data, "teach", "--rounds", str(args.rounds))
        report["teach_seconds"] = round(time.perf_counter() - started, 1)
        before = json.loads(cli(data, "stats", "--json").stdout)
        started = time.perf_counter()
        rows = asyncio.run(run_stream(data, stream, args.train_every))
        report["stream_seconds"] = round(time.perf_counter() - started, 1)
        after = json.loads(cli(data, "stats", "--json").stdout)
        drafts = asyncio.run(forward_drafts(data))
    report["system"] = score(stream, [r.get("answer") for r in rows], [r.get("source") for r in rows])
    report["system"]["by_source"] = dict(Counter(r.get("source") for r in rows))
    report["system"]["errors"] = sum(1 for r in rows if r.get("error"))
    base = baseline(stream)
    report["baseline_templates_dictionary_lexical"] = score(stream, base, ["template" if a else None for a in base])
    report["skills_held_out_before_after"] = {
        name: [before["skills"].get(name, {}).get("held_out_accuracy"), row.get("held_out_accuracy")]
        for name, row in after.get("skills", {}).items()}
    report["bounds_after"] = after.get("bounds")
    report["generator_drafts_second_half"] = draft_accuracy(stream, drafts, start=len(stream) // 2)
    wrong = [(q.query, r.get("answer"), q.answer, r.get("source")) for q, r in zip(stream, rows)
             if r.get("source") not in (None, "forward") and not agreement(r.get("answer") or "", q.answer).agrees]
    report["wrong_examples"] = wrong[:10]
    print(json.dumps(report, indent=None if args.json else 2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
