"""A second, independent llama forward pass in numpy (float64), reading a GGUF file's tensors as
they are stored: llama.cpp's layout, where rotary embeddings turn adjacent dims (2i, 2i+1)
together. shammah_tui.models.llama un-permutes q/k rows and rotates dims i and i + hd/2; the two
agreeing is the check that the un-permutation is right. Also a writer of tiny random llama GGUF
files for the tests.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: The chat template SmolLM2-135M-Instruct's GGUF file carries.
SMOLLM_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
    "{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

TINY = dict(n_embd=32, n_layer=2, n_head=4, n_kv_head=2, ffn_hidden=64, context=64, rope_base=1e5)
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
# A few merges, so that BPE has something to do: "hello", " world", " the", "12" never merges (digits split).
MERGES = [("h", "e"), ("l", "l"), ("he", "ll"), ("hell", "o"), ("Ġ", "w"), ("o", "r"), ("Ġw", "or"),
          ("l", "d"), ("Ġwor", "ld"), ("Ġ", "t"), ("Ġt", "he"), ("1", "2"), ("u", "s"), ("e", "r"), ("us", "er")]


def tiny_vocab() -> tuple[list[str], list[str], list[int]]:
    """(tokens, merges, token types) of a small byte-level BPE vocabulary with ChatML markers."""
    from tokenizers import pre_tokenizers

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    tokens = SPECIALS + alphabet + [a + b for a, b in MERGES]
    types = [3] * len(SPECIALS) + [1] * (len(tokens) - len(SPECIALS))
    return tokens, [f"{a} {b}" for a, b in MERGES], types


def permute_qk(w: np.ndarray, n_heads: int) -> np.ndarray:
    """Rotate-half row order -> llama.cpp's pair-interleaved order (what HF->GGUF conversion does)."""
    rows, cols = w.shape
    hd = rows // n_heads
    return w.reshape(n_heads, 2, hd // 2, cols).swapaxes(1, 2).reshape(rows, cols)


def write_tiny_gguf(path: Path, seed: int = 0, quantized: bool = True, context: int = TINY["context"]) -> None:
    """A random 2-layer llama with the tiny vocabulary, laid out and quantized as llama.cpp files are
    (``context``: its trained context length, as the file declares it)."""
    import gguf

    cfg = {**TINY, "context": context}
    tokens, merges, types = tiny_vocab()
    V, C, F = len(tokens), cfg["n_embd"], cfg["ffn_hidden"]
    h, g = cfg["n_head"], cfg["n_kv_head"]
    hd = C // h
    rng = np.random.default_rng(seed)

    def mat(rows: int, cols: int) -> np.ndarray:
        return (rng.standard_normal((rows, cols)) * 0.3).astype(np.float32)

    w = gguf.GGUFWriter(str(path), "llama")
    w.add_block_count(cfg["n_layer"])
    w.add_context_length(cfg["context"])
    w.add_embedding_length(C)
    w.add_feed_forward_length(F)
    w.add_head_count(h)
    w.add_head_count_kv(g)
    w.add_rope_freq_base(cfg["rope_base"])
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(V)
    w.add_rope_dimension_count(hd)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("smollm")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_chat_template(SMOLLM_TEMPLATE)

    def add(name: str, x: np.ndarray, qtype: gguf.GGMLQuantizationType) -> None:
        if quantized and x.ndim == 2 and qtype != gguf.GGMLQuantizationType.F32:
            w.add_tensor(name, gguf.quants.quantize(x, qtype), raw_dtype=qtype)
        else:
            w.add_tensor(name, x)

    Q8, Q4, F32 = gguf.GGMLQuantizationType.Q8_0, gguf.GGMLQuantizationType.Q4_1, gguf.GGMLQuantizationType.F32
    add("token_embd.weight", mat(V, C), Q8)
    for i in range(cfg["n_layer"]):
        add(f"blk.{i}.attn_norm.weight", (1 + 0.1 * rng.standard_normal(C)).astype(np.float32), F32)
        add(f"blk.{i}.attn_q.weight", permute_qk(mat(h * hd, C), h), Q4)
        add(f"blk.{i}.attn_k.weight", permute_qk(mat(g * hd, C), g), Q4)
        add(f"blk.{i}.attn_v.weight", mat(g * hd, C), Q4)
        add(f"blk.{i}.attn_output.weight", mat(C, h * hd), Q4)
        add(f"blk.{i}.ffn_norm.weight", (1 + 0.1 * rng.standard_normal(C)).astype(np.float32), F32)
        add(f"blk.{i}.ffn_gate.weight", mat(F, C), Q4)
        add(f"blk.{i}.ffn_up.weight", mat(F, C), Q4)
        add(f"blk.{i}.ffn_down.weight", mat(C, F), Q4)
    add("output_norm.weight", (1 + 0.1 * rng.standard_normal(C)).astype(np.float32), F32)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def numpy_logits(path: Path, ids: list[int]) -> np.ndarray:
    """Logits (T, V) of ``ids`` under the GGUF file at ``path``, computed the way llama.cpp does."""
    import gguf

    r = gguf.GGUFReader(str(path))

    def meta(key: str) -> float:
        return float(r.fields[key].contents())

    W = {t.name: gguf.quants.dequantize(t.data, t.tensor_type).reshape(tuple(reversed([int(d) for d in t.shape])))
         .astype(np.float64) for t in r.tensors}
    n_layer, nh = int(meta("llama.block_count")), int(meta("llama.attention.head_count"))
    nkv, base = int(meta("llama.attention.head_count_kv")), meta("llama.rope.freq_base")
    eps = meta("llama.attention.layer_norm_rms_epsilon")
    E = W["token_embd.weight"]
    C = E.shape[1]
    hd, T = C // nh, len(ids)

    def rms(x: np.ndarray, w: np.ndarray) -> np.ndarray:
        return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * w

    theta = np.arange(T)[:, None] * base ** (-np.arange(0, hd, 2) / hd)  # (T, hd/2)
    cos, sin = np.cos(theta)[:, None, :], np.sin(theta)[:, None, :]  # (T, 1, hd/2)

    def rope(x: np.ndarray) -> np.ndarray:  # (T, heads, hd): pairs (2i, 2i+1) turn together
        a, b = x[..., 0::2], x[..., 1::2]
        out = np.empty_like(x)
        out[..., 0::2] = a * cos - b * sin
        out[..., 1::2] = a * sin + b * cos
        return out

    x = E[ids]  # (T, C)
    causal = np.tril(np.ones((T, T), dtype=bool))
    for i in range(n_layer):
        p = f"blk.{i}."
        hN = rms(x, W[p + "attn_norm.weight"])
        q = rope((hN @ W[p + "attn_q.weight"].T).reshape(T, nh, hd))
        k = rope((hN @ W[p + "attn_k.weight"].T).reshape(T, nkv, hd))
        v = (hN @ W[p + "attn_v.weight"].T).reshape(T, nkv, hd)
        out = np.empty((T, nh, hd))
        for j in range(nh):
            kv = j // (nh // nkv)  # consecutive query heads share a kv head
            s = q[:, j] @ k[:, kv].T / np.sqrt(hd)  # (T, T)
            s = np.where(causal, s, -np.inf)
            s = np.exp(s - s.max(-1, keepdims=True))
            out[:, j] = (s / s.sum(-1, keepdims=True)) @ v[:, kv]
        x = x + out.reshape(T, C) @ W[p + "attn_output.weight"].T
        hN = rms(x, W[p + "ffn_norm.weight"])
        gate = hN @ W[p + "ffn_gate.weight"].T
        x = x + (gate / (1 + np.exp(-gate)) * (hN @ W[p + "ffn_up.weight"].T)) @ W[p + "ffn_down.weight"].T
    return rms(x, W["output_norm.weight"]) @ E.T


def converted_tiny(tmp_path_factory) -> Path:
    """The tiny llama written as a GGUF file and converted in float32, with a context long enough
    for the pre-trained model's chat prompts (its system turn alone is ~45 byte-level tokens)."""
    import torch

    from shammah_tui.models import gguf_convert

    gguf_file = tmp_path_factory.mktemp("gguf") / "tiny.gguf"
    write_tiny_gguf(gguf_file, context=512)
    out = tmp_path_factory.mktemp("base")
    gguf_convert.convert(gguf_file, out, torch.float32)
    return out
