"""The learning streams through the real `shammah-tui batch --json --teacher claude` path, with the
baselines without models beside it, in the same run.

    python bench/learning_streams.py [--streams qqp,gsm8k,curriculum] [--seed 0] [--json]

- **qqp**: each pair's first question, 20–200 queries later its partner, exact repeats (~15 %),
  over the pairs of ../shared/data/qqp_dev.csv the shipped acceptance weights were never fitted on
  (all 3,000 when they were fitted on other files, as their provenance says).
- **gsm8k**: new problems (must be forwarded), exact repeats and light rewordings (may be served
  with the right final number), number variants (new problems that look alike).
- **curriculum**: the 500-query offline stream, as an ablation: templates + exact dictionary,
  + lexical similarity, and the system.

A loopback Messages API (tests/fakeapi.py) answers for Claude from each query's key: the same
key's answer comes back in other words on every call, other keys' answers never agree. The data
stays in ../shared/data (read from there; the bench says so and skips a stream whose file is
missing). The sentence encoder comes from $HF_HOME (../shared/tools/hf-minilm lays it out).
Baseline rows are `bench/paraphrase_stream.py`'s simulator over the very same stream and vectors.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "bench"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import paraphrase_stream as ps  # noqa: E402

from shammah_tui.pipeline.agreement import agreement  # noqa: E402
from tests.fakeapi import FakeMessagesAPI  # noqa: E402

def _english_sentences() -> list[str]:
    """Plain English sentences (the Python docs shipped with the standard library), no code in them."""
    import re

    from pydoc_data.topics import topics

    found = []
    for name in sorted(topics):
        for sentence in re.split(r"(?<=[.!?])\s+", " ".join(topics[name].split())):
            words = sentence.split()
            if 8 <= len(words) <= 24 and sentence[0].isupper() and sentence.endswith(".") \
                    and not re.search(r"[_()\[\]{}=*`'\"<>:;|\\/0-9]", sentence):
                found.append(sentence)
    return sorted(set(found))


SENTENCES = _english_sentences()
LEADS = ["", "Sure.", "In short:", "Here is the answer.", "Good question.", "Briefly:"]
CLOSINGS = ["", "Hope that helps.", "", "Let me know if you want more detail.", "That is the gist of it."]


def english_answer_for(key: str, call_no: int) -> str:
    """The loopback teacher's answer for `key`, in real English: two sentences drawn by the key's
    hash, said again on every call with another lead-in and closing (the teacher never answers
    twice alike). Different keys draw different sentences."""
    import hashlib

    h = int(hashlib.sha256(key.encode()).hexdigest(), 16)
    first, second = SENTENCES[h % len(SENTENCES)], SENTENCES[(h // len(SENTENCES)) % len(SENTENCES)]
    parts = [LEADS[call_no % len(LEADS)], first, second, CLOSINGS[call_no % len(CLOSINGS)]]
    return " ".join(part for part in parts if part)


SETTINGS = """teacher = "claude"
claude_model = "claude-loopback"
auto_train = false
tier_order = {tiers}
spot_check_rate = 0.1
"""


async def run_system(items: Sequence[ps.StreamItem], answer: Callable[[str, int], str],
                     tiers: Sequence[str] = ("template", "learned")) -> tuple[list[dict], float]:
    """The stream through `batch --json --teacher claude` on a fresh data dir: one JSON line per
    query, in order; and the wall time."""
    key_of = {item.query: item.key for item in items}
    calls: Counter[str] = Counter()

    def responder(body: dict) -> str | None:
        last = body["messages"][-1]["content"]
        text = last if isinstance(last, str) else "".join(b.get("text", "") for b in last)
        key = key_of.get(text)
        if key is None:
            return None
        calls[key] += 1
        return answer(key, calls[key] - 1)

    api = FakeMessagesAPI(responder)
    base_url = await api.start()
    try:
        with tempfile.TemporaryDirectory(prefix="shammah-streams-") as tmp:
            data = Path(tmp) / "data"
            data.mkdir()
            (data / "settings.toml").write_text(SETTINGS.format(tiers=json.dumps(list(tiers))))
            stream = Path(tmp) / "stream.jsonl"
            stream.write_text("".join(json.dumps({"query": item.query}) + "\n" for item in items))
            env = {**os.environ, "ANTHROPIC_API_KEY": "loopback", "ANTHROPIC_BASE_URL": base_url}
            started = time.perf_counter()
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "shammah_tui", "batch", str(stream), "--json", "--data-dir", str(data),
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env)
            out, err = await proc.communicate()
            seconds = time.perf_counter() - started
            if proc.returncode not in (0, 1):  # 1: some lines were not answered; each says why
                raise SystemExit(f"batch failed ({proc.returncode}): {err.decode()[-2000:]}")
            stats = json.loads((await _stats(data, env)) or "{}")
    finally:
        await api.stop()
    rows = [json.loads(line) for line in out.decode().splitlines() if line.strip()]
    assert len(rows) == len(items), (len(rows), len(items))
    rows[0]["_stats"] = stats
    return rows, seconds


async def _stats(data: Path, env: dict[str, str]) -> str:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "shammah_tui", "stats", "--json",
                                                "--data-dir", str(data), stdout=asyncio.subprocess.PIPE, env=env)
    out, _ = await proc.communicate()
    return out.decode()


def system_summary(name: str, items: Sequence[ps.StreamItem], rows: Sequence[dict],
                   right: Callable[[ps.StreamItem, str], bool], kinds: tuple[str, str]) -> dict:
    """The system's row in the simulator's summary shape (served, precision, per-kind recall)."""
    result = ps.RunResult(name)
    for item, row in zip(items, rows):
        source = row.get("source")
        served = source in ("learned", "template", "neural")
        tier = "forward" if not served else ("semantic" if source == "learned" else "exact")
        correct = served and row.get("answer") is not None and right(item, row["answer"])
        result.outcomes.append(ps.Outcome(item.kind, tier, correct))
    summary = result.summary(kinds)
    summary["by_source"] = dict(Counter(row.get("source") for row in rows))
    summary["stats"] = {k: rows[0]["_stats"].get(k) for k in ("encoder", "acceptance_threshold",
                                                               "learned_estimated_error", "only_by_source")}
    return summary


def qqp(seed: int, cache: ps.EmbeddingCache) -> list[dict]:
    model = ps.AcceptanceModel.load()
    eval_pairs = ps.eval_pairs(model, len(ps.load_qqp(ps.QQP_CSV)))
    items, rows = ps.run_qqp(ps.QQP_CSV, model, cache, seed=seed, pairs=eval_pairs, acceptance=False)
    answers, seconds = asyncio.run(run_system(items, english_answer_for))

    def right(item: ps.StreamItem, text: str) -> bool:  # any wording of the key's own answer
        return any(agreement(text, english_answer_for(item.key, n)).agrees for n in range(len(LEADS)))

    system = system_summary("the system (batch --json, online thresholds)", items, answers, right,
                            ("duplicate_partner", "near_miss_partner"))
    system["seconds"] = round(seconds, 1)
    return rows + [system]


def gsm8k(seed: int, cache: ps.EmbeddingCache) -> list[dict]:
    items, facts = ps.build_gsm8k_stream(ps.GSM8K_JSONL, seed=seed)
    vectors = cache([it.query for it in items])
    judge = ps.math_judge(facts)
    kinds = ("reworded", "new")
    rows = [ps._math_summary(ps.simulate(items, vectors, pol, facts=facts, judge=judge).summary(kinds)) for pol in (
        ps.Policy("exact-match cache", "exact"), ps.Policy("lexical similarity ≥ 0.9", "lexical"),
        ps.Policy("cosine ≥ 0.8", "cosine", threshold=0.8), ps.Policy("cosine ≥ 0.95", "cosine", threshold=0.95))]
    answers, seconds = asyncio.run(run_system(items, lambda key, n: ps.answer_for(key, n, facts)))
    system = ps._math_summary(system_summary("the system (batch --json, online thresholds)", items, answers,
                                             judge, kinds))
    system["seconds"] = round(seconds, 1)
    return rows + [system]


def curriculum() -> list[dict]:
    """The 500-query offline stream: baselines without models, and the system's learned tier."""
    from shammah_tui import curriculum as cur

    stream = cur.stream(500, seed=0)
    items = [ps.StreamItem(it.query, it.key, it.family) for it in stream]
    answer_of = {it.key: it.answer for it in stream}
    rows = []
    for name, tiers in (("templates + exact dictionary", None), ("+ lexical similarity ≥ 0.9", "lexical")):
        rows.append(_curriculum_baseline(name, stream, tiers))

    def right(item: ps.StreamItem, text: str) -> bool:
        return agreement(text, answer_of[item.key]).agrees

    answers, seconds = asyncio.run(run_system(items, lambda key, n: answer_of[key]))
    system = system_summary("the system (batch --json)", items, answers, right, ("", ""))
    system["seconds"] = round(seconds, 1)
    return rows + [_curriculum_shape(system, answers)]


def _curriculum_baseline(name: str, stream: Sequence, lexical: str | None) -> dict:
    from shammah_tui.pipeline.learned import LearnedIndex
    from shammah_tui.pipeline.templates import template_answer
    from shammah_tui.core.text import normalize_query
    from shammah_tui.core.records import LearnedAnswer

    index = LearnedIndex()
    sources, correct = [], []
    for n, item in enumerate(stream):
        norm = normalize_query(item.query)
        found = template_answer(item.query)
        hit = index.lookup(norm, "")
        if found is not None:
            sources.append("template")
            correct.append(agreement(found.answer, item.answer).agrees)
        elif hit is not None and (hit.exact or (lexical and index.confident(hit))):
            sources.append("learned")
            correct.append(agreement(hit.entry.answer, item.answer).agrees)
        else:
            sources.append("forward")
            correct.append(True)
            index.add(LearnedAnswer(n, norm, "", item.query, item.answer, "forward"))
    return _curriculum_row(name, sources, correct)


def _curriculum_shape(system: dict, rows: Sequence[dict]) -> dict:
    sources = [row.get("source") or "forward" for row in rows]
    row = _curriculum_row(system["policy"], sources, [])
    row["precision_all"] = system["precision"]
    row["precision"] = system["precision"]
    row["seconds"] = system["seconds"]
    row["stats"] = system["stats"]
    return row


def _curriculum_row(name: str, sources: Sequence[str], correct: Sequence[bool]) -> dict:
    local = [i for i, s in enumerate(sources) if s != "forward"]
    last = [s for s in sources[400:] if s != "forward"]
    row = {"policy": name, "local_share": len(local) / len(sources), "local_share_last100": len(last) / 100,
           "by_source": dict(Counter(sources))}
    if correct:
        row["precision"] = sum(correct[i] for i in local) / max(len(local), 1)
    return row


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--streams", default="qqp,gsm8k,curriculum")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "shammah-embeddings"))
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    wanted = set(args.streams.split(","))
    results: dict[str, list[dict]] = {}
    cache = ps.EmbeddingCache(args.cache)
    if "qqp" in wanted:
        if ps.QQP_CSV.exists():
            results["qqp"] = qqp(args.seed, cache)
        else:
            print(f"skipped qqp: {ps.QQP_CSV} is missing (development data, outside the repo)", file=sys.stderr)
    if "gsm8k" in wanted:
        if ps.GSM8K_JSONL.exists():
            results["gsm8k"] = gsm8k(args.seed, cache)
        else:
            print(f"skipped gsm8k: {ps.GSM8K_JSONL} is missing", file=sys.stderr)
    if "curriculum" in wanted:
        results["curriculum"] = curriculum()
    if args.json:
        print(json.dumps({k: [{kk: vv for kk, vv in r.items() if kk != "by_kind"} for r in v]
                          for k, v in results.items()}, default=str))
        return 0
    for name, rows in results.items():
        print(f"\n{name}")
        for row in rows:
            print("  " + json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()
                                     if k not in ("by_kind", "final_taus", "opened")}, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
