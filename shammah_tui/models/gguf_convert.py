"""GGUF -> safetensors for the pre-trained llama, once; fast loads of the converted files afterwards.

Parsing a GGUF file with ``gguf`` and dequantizing its blocks takes seconds (the vocabulary and
merges are read in Python), so the first start converts it into a directory:

    model.safetensors   weights under llama.py's parameter names, q/k rows un-permuted, in
                        bfloat16 by default (bench/llama_speed.py: as good as float32 and faster)
    tokenizer.json      the ``tokenizers`` tokenizer (llama_tokenizer.build_tokenizer)
    config.json         LlamaConfig, special ids, the chat template, and which file it came from

config.json is written last, each file atomically: a directory with a config.json is complete.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from shammah_tui.atomic import replace_atomically, write_text_atomically

from .llama import Llama, LlamaConfig
from .llama_tokenizer import ChatTokenizer, build_tokenizer

FORMAT = 1  # bump when the converted layout changes: older directories are converted again
#: The weight format a conversion stores and a load returns unless asked otherwise. Measured on the
#: busy 2-core CPU (bench/llama_speed.py, 1 thread): bfloat16 decodes 25-30 tok/s against float32's
#: 17-26, first token 50 ms against 180, half the memory, mean KL from float32 0.002 nats with 98 %
#: of argmaxes the same; torch's dynamic int8 is faster (29-53 tok/s) but its int8 activations
#: change half the argmaxes (KL 1.5).
DEFAULT_DTYPE = torch.bfloat16
_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
WEIGHTS, TOKENIZER, CONFIG = "model.safetensors", "tokenizer.json", "config.json"
_BIG_ARRAYS = ("tokenizer.ggml.tokens", "tokenizer.ggml.merges", "tokenizer.ggml.token_type", "tokenizer.ggml.scores")


@dataclass
class GGUFModel:
    """What a llama GGUF file holds, in our terms."""

    config: LlamaConfig
    meta: dict[str, Any]  # scalar metadata (the big tokenizer arrays left out)
    tensors: dict[str, np.ndarray]  # float32, llama.py parameter names, rotate-half q/k order
    tokens: list[str]
    merges: list[str]
    token_types: list[int]


def unpermute_qk(w: np.ndarray, n_heads: int) -> np.ndarray:
    """Rows of a q or k projection (n_heads * hd, C) from llama.cpp's order to rotate-half order.

    llama.cpp rotates adjacent dims (2i, 2i+1) of each head together; the model was trained
    rotating dims i and i + hd/2. The HF->GGUF converter reorders each head's rows so that the
    two conventions give the same result; this puts them back.
    """
    rows, cols = w.shape
    hd = rows // n_heads
    return w.reshape(n_heads, hd // 2, 2, cols).swapaxes(1, 2).reshape(rows, cols)


_BLOCK_NAMES = {
    "attn_norm": "attn_norm", "attn_q": "attn.wq", "attn_k": "attn.wk", "attn_v": "attn.wv",
    "attn_output": "attn.wo", "ffn_norm": "mlp_norm", "ffn_gate": "mlp.gate", "ffn_up": "mlp.up",
    "ffn_down": "mlp.down",
}


def gguf_to_ours(name: str) -> str | None:
    """llama.py's parameter name of a GGUF tensor name ("blk.3.attn_q.weight"); None if not ours."""
    if name == "token_embd.weight":
        return "wte.weight"
    if name == "output_norm.weight":
        return "norm.weight"
    parts = name.split(".")
    if len(parts) != 4 or parts[0] != "blk" or not parts[1].isdigit() or parts[3] != "weight":
        return None
    sub = _BLOCK_NAMES.get(parts[2])
    return None if sub is None else f"blocks.{int(parts[1])}.{sub}.weight"


def read_gguf(path: Path) -> GGUFModel:
    """Read and dequantize a llama GGUF file (seconds: use ``convert`` once, then ``load_converted``)."""
    import gguf  # only conversion needs it; loading a converted model must not pay for its import

    reader = gguf.GGUFReader(str(path))
    meta: dict[str, Any] = {}
    for key, field in reader.fields.items():
        if key not in _BIG_ARRAYS and not key.startswith("GGUF."):
            meta[key] = field.contents()
    tokens = list(reader.fields["tokenizer.ggml.tokens"].contents())
    cfg = LlamaConfig.from_gguf({**meta, "tokenizer.ggml.tokens": tokens})
    merges = list(reader.fields["tokenizer.ggml.merges"].contents())
    types_field = reader.fields.get("tokenizer.ggml.token_type")
    token_types = [int(t) for t in types_field.contents()] if types_field is not None else [1] * len(tokens)

    tensors: dict[str, np.ndarray] = {}
    head: np.ndarray | None = None
    for t in reader.tensors:
        w = gguf.quants.dequantize(t.data, t.tensor_type)
        w = np.array(w, dtype=np.float32).reshape(  # a copy: float32 tensors are views of the read-only map
            tuple(int(d) for d in reversed(t.shape)))  # GGUF lists dims innermost first
        if t.name == "output.weight":
            head = w
            continue
        name = gguf_to_ours(t.name)
        if name is None:
            raise ValueError(f"unexpected tensor {t.name!r} in {path}")
        if name.endswith("attn.wq.weight"):
            w = unpermute_qk(w, cfg.n_head)
        elif name.endswith("attn.wk.weight"):
            w = unpermute_qk(w, cfg.n_kv_head)
        tensors[name] = np.ascontiguousarray(w)
    if head is not None and not np.array_equal(head, tensors["wte.weight"]):
        raise ValueError(f"{path} has an output matrix of its own; only a tied head is supported")
    return GGUFModel(cfg, meta, tensors, tokens, merges, token_types)


def llama_from_tensors(cfg: LlamaConfig, tensors: Mapping[str, torch.Tensor | np.ndarray],
                       dtype: torch.dtype = torch.float32) -> Llama:
    """A Llama holding ``tensors`` (every parameter, by name), without a random initialization first."""
    with torch.device("meta"):
        model = Llama(cfg)  # shapes only: 135M random numbers would cost a second for nothing
    state = {k: (torch.from_numpy(v) if isinstance(v, np.ndarray) else v).to(dtype) for k, v in tensors.items()}
    model.load_state_dict(state, strict=True, assign=True)
    return model.eval()


def model_from_gguf(path: Path, dtype: torch.dtype = DEFAULT_DTYPE) -> tuple[Llama, ChatTokenizer]:
    """The model and tokenizer straight from a GGUF file (slow; the reference ``convert`` must match)."""
    g = read_gguf(path)
    return llama_from_tensors(g.config, g.tensors, dtype), _tokenizer_of(g)


def _tokenizer_of(g: GGUFModel) -> ChatTokenizer:
    if g.meta.get("tokenizer.ggml.model") != "gpt2":
        raise ValueError(f"unsupported tokenizer model {g.meta.get('tokenizer.ggml.model')!r}")
    pre = str(g.meta.get("tokenizer.ggml.pre", "gpt2"))
    return ChatTokenizer(build_tokenizer(g.tokens, g.merges, g.token_types, pre))


def source_id(gguf_path: Path) -> dict[str, Any]:
    """What identifies the GGUF file a directory was converted from (cheap: no hashing of 100 MB)."""
    st = Path(gguf_path).stat()
    return {"name": Path(gguf_path).name, "size": st.st_size}


def convert(gguf_path: Path, model_dir: Path, dtype: torch.dtype = DEFAULT_DTYPE) -> dict[str, Any]:
    """Convert ``gguf_path`` into ``model_dir`` with weights in ``dtype`` (see the module docstring);
    returns config.json's content."""
    from safetensors.torch import save_file

    t0 = time.perf_counter()
    gguf_path, model_dir = Path(gguf_path), Path(model_dir)
    g = read_gguf(gguf_path)
    tok = _tokenizer_of(g)
    model_dir.mkdir(parents=True, exist_ok=True)
    tok.save(model_dir / TOKENIZER)
    dtype_name = next(k for k, v in _DTYPES.items() if v == dtype)
    weights = {k: torch.from_numpy(v).to(dtype).contiguous() for k, v in g.tensors.items()}
    replace_atomically(model_dir / WEIGHTS, lambda tmp: save_file(weights, str(tmp)))
    info = {
        "format": FORMAT,
        "dtype": dtype_name,
        "model": g.config.to_dict(),
        "tokenizer_version": tok.version,
        "stop_ids": tok.stop_ids,
        "chat_template": g.meta.get("tokenizer.chat_template"),
        "source": source_id(gguf_path),
        "name": g.meta.get("general.name"),
        "license": g.meta.get("general.license"),
        "convert_seconds": round(time.perf_counter() - t0, 2),
    }
    write_text_atomically(model_dir / CONFIG, json.dumps(info, indent=2) + "\n")
    return info


def read_info(model_dir: Path) -> dict[str, Any] | None:
    """config.json of a complete conversion in ``model_dir``, or None (absent, torn, older format)."""
    try:
        info = json.loads((Path(model_dir) / CONFIG).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict) or info.get("format") != FORMAT or info.get("dtype") not in _DTYPES:
        return None
    if not all((Path(model_dir) / f).is_file() for f in (WEIGHTS, TOKENIZER)):
        return None
    return info


def load_converted(model_dir: Path, dtype: torch.dtype | None = None) -> tuple[Llama, ChatTokenizer]:
    """The model (in eval mode) and tokenizer from a converted directory, its weights in ``dtype``
    (default: as stored, which costs no cast)."""
    from safetensors.torch import load_file

    model_dir = Path(model_dir)
    info = read_info(model_dir)
    if info is None:
        raise FileNotFoundError(f"no converted model in {model_dir}")
    tok = ChatTokenizer.load(model_dir / TOKENIZER)
    if tok.version != info["tokenizer_version"]:
        raise ValueError(f"{model_dir / TOKENIZER} is not the tokenizer the model was converted with")
    model = llama_from_tensors(LlamaConfig.from_dict(info["model"]), load_file(str(model_dir / WEIGHTS)),
                               dtype or _DTYPES[info["dtype"]])
    return model, tok
