"""The sentence encoder: a pre-trained BERT (all-MiniLM-L6-v2 class) run from its files.

Queries and stored questions are embedded into unit vectors so the semantic store can look up
questions by meaning. The model is the BERT encoder of Devlin et al. (2018) as laid out in
Hugging Face's ``modeling_bert.py``; the pooling is sentence-transformers' ``Pooling`` +
``Normalize`` modules, driven by the same files (modules.json, 1_Pooling/config.json,
sentence_bert_config.json). Nothing here downloads anything: the folder must already be on disk.

Reads top to bottom: finding the folder, config, attention, block, model, pooling, weight
loading, then ``SentenceEncoder``, the thread-safe object the pipeline calls. Shapes: B batch,
T tokens, C hidden size, h heads, hd head dim.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
from safetensors import safe_open
from tokenizers import Tokenizer
from torch.nn import functional as F

from .device import pick_device
from .encoder_files import DEFAULT_REPO, REQUIRED_FILES, hf_hub_cache, is_encoder_folder, locate_encoder

__all__ = ["DEFAULT_REPO", "REQUIRED_FILES", "EncoderError", "SentenceEncoder", "hf_hub_cache", "is_encoder_folder",
           "locate_encoder"]



class EncoderError(Exception):
    """An encoder folder is missing, incomplete or damaged, or holds a model this module can't run."""


# ----------------------------------------------------------------------------- config


@dataclass(frozen=True)
class EncoderConfig:
    # Word-piece vocabulary size; the tokenizer's ids must stay below it.
    vocab_size: int = 30522
    # MiniLM-L6: 384 wide, 6 layers, 12 heads of 32 dims, MLP 4x wide.
    n_embd: int = 384
    n_layer: int = 6
    n_head: int = 12
    n_inner: int = 1536
    # Rows of the learned position table: the hard upper bound on tokens per text.
    n_positions: int = 512
    # BERT's segment ids; a single sentence always uses segment 0.
    type_vocab_size: int = 2
    # BERT uses 1e-12 (not torch's default 1e-5); it matters at the 1e-6 level.
    layer_norm_eps: float = 1e-12
    pad_id: int = 0
    # sentence-transformers truncates to this many tokens, [CLS] and [SEP] included (256 for
    # all-MiniLM-L6-v2: it was trained on 128, and longer text adds little meaning).
    max_seq_length: int = 256
    # How token vectors become one sentence vector: "mean" (over real tokens), "cls" or "max".
    pooling: str = "mean"
    # sentence_bert_config's do_lower_case: lowercase in Python before tokenizing.
    do_lower_case: bool = False

    def __post_init__(self) -> None:
        if min(self.vocab_size, self.n_embd, self.n_layer, self.n_head, self.n_inner, self.n_positions) < 1:
            raise ValueError("sizes must be positive")
        if self.n_embd % self.n_head:
            raise ValueError(f"hidden size {self.n_embd} is not divisible by {self.n_head} heads")
        if not 2 < self.max_seq_length <= self.n_positions:
            raise ValueError(f"max_seq_length {self.max_seq_length} must be in 3..{self.n_positions}")
        if self.pooling not in ("mean", "cls", "max"):
            raise ValueError(f"unsupported pooling {self.pooling!r}")

    @classmethod
    def from_folder(cls, folder: Path) -> EncoderConfig:
        """Read config.json, modules.json, the pooling config and sentence_bert_config.json."""
        hf = _read_json(folder / "config.json")
        if hf.get("model_type", "bert") != "bert":
            raise EncoderError(f"{folder / 'config.json'}: model_type {hf.get('model_type')!r} is not bert")
        if hf.get("hidden_act", "gelu") != "gelu":
            raise EncoderError(f"{folder / 'config.json'}: hidden_act {hf.get('hidden_act')!r} is not gelu")
        if hf.get("position_embedding_type", "absolute") != "absolute":
            raise EncoderError(f"{folder / 'config.json'}: only absolute position embeddings are supported")
        pooling_dir = _check_modules(folder)
        pooling = "mean"
        if (folder / pooling_dir / "config.json").is_file():
            pooling = _pooling_mode(folder / pooling_dir / "config.json")
        sbert_file = folder / "sentence_bert_config.json"
        sbert = _read_json(sbert_file) if sbert_file.is_file() else {}
        try:
            n_positions = int(hf.get("max_position_embeddings", 512))
            cfg = cls(
                vocab_size=int(hf["vocab_size"]),
                n_embd=int(hf["hidden_size"]),
                n_layer=int(hf["num_hidden_layers"]),
                n_head=int(hf["num_attention_heads"]),
                n_inner=int(hf["intermediate_size"]),
                n_positions=n_positions,
                type_vocab_size=int(hf.get("type_vocab_size", 2)),
                layer_norm_eps=float(hf.get("layer_norm_eps", 1e-12)),
                pad_id=int(hf.get("pad_token_id", 0)),
                max_seq_length=int(sbert.get("max_seq_length") or n_positions),
                pooling=pooling,
                do_lower_case=bool(sbert.get("do_lower_case", False)),
            )
        except KeyError as e:
            raise EncoderError(f"{folder / 'config.json'} lacks {e.args[0]!r}") from None
        except (TypeError, ValueError) as e:
            raise EncoderError(f"unusable encoder config in {folder}: {e}") from None
        return cfg


def _load_json(path: Path) -> object:
    """The JSON value stored at ``path``; ``EncoderError`` when it cannot be read or parsed."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EncoderError(f"missing file: {path}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise EncoderError(f"cannot read {path}: {e}") from None
    except ValueError as e:
        raise EncoderError(f"bad JSON in {path}: {e}") from None


def _read_json(path: Path) -> dict[str, Any]:
    """The JSON object stored at ``path``; ``EncoderError`` for anything else."""
    data = _load_json(path)
    if not isinstance(data, dict):
        raise EncoderError(f"bad JSON in {path}: expected an object")
    return data


def _read_json_list(path: Path) -> list[Any]:
    """The JSON list stored at ``path``; ``EncoderError`` for anything else."""
    data = _load_json(path)
    if not isinstance(data, list):
        raise EncoderError(f"bad JSON in {path}: expected a list")
    return data


def _check_modules(folder: Path) -> str:
    """The pooling folder named by modules.json; refuse pipelines this module would get wrong."""
    if not (folder / "modules.json").is_file():
        return "1_Pooling"  # a bare BERT folder: sentence-transformers' default is mean pooling
    modules = _read_json_list(folder / "modules.json")
    if not all(isinstance(m, dict) for m in modules):
        raise EncoderError(f"bad {folder / 'modules.json'}: expected a list of modules")
    kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules]
    if kinds[:2] != ["Transformer", "Pooling"] or any(k != "Normalize" for k in kinds[2:]):
        raise EncoderError(f"{folder / 'modules.json'}: unsupported module pipeline {kinds}")
    return str(modules[1].get("path") or "1_Pooling")


def _pooling_mode(path: Path) -> str:
    """"cls", "mean" or "max" from a Pooling config (the flags of sentence-transformers < 5, or
    the single ``pooling_mode`` string of later versions)."""
    conf = _read_json(path)
    if isinstance(conf.get("pooling_mode"), str):
        modes = [conf["pooling_mode"]]
    else:
        modes = [key.removeprefix("pooling_mode_").removesuffix("_tokens").removesuffix("_token")
                 for key, on in conf.items() if key.startswith("pooling_mode_") and on]
    if len(modes) != 1 or modes[0] not in ("cls", "mean", "max"):
        raise EncoderError(f"{path}: unsupported pooling {modes} (one of cls, mean or max is supported)")
    return modes[0]


# ----------------------------------------------------------------------------- model


class Linear(nn.Linear):
    """nn.Linear without the random init: this model's weights always come from a file, and
    initialising 22M parameters only to overwrite them costs ~0.1 s per load."""

    def reset_parameters(self) -> None:
        pass


class Embedding(nn.Embedding):
    """nn.Embedding without the random init, for the same reason."""

    def reset_parameters(self) -> None:
        pass


class SelfAttention(nn.Module):
    """Bidirectional multi-head attention; padded keys are masked out."""

    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        self.n_head = cfg.n_head
        self.qkv = Linear(cfg.n_embd, 3 * cfg.n_embd)  # BERT's query, key, value, fused on load
        self.proj = Linear(cfg.n_embd, cfg.n_embd)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)  # 3 x (B, T, C)
        hd = C // self.n_head
        q = q.view(B, T, self.n_head, hd).transpose(1, 2)  # (B, h, T, hd)
        k = k.view(B, T, self.n_head, hd).transpose(1, 2)
        v = v.view(B, T, self.n_head, hd).transpose(1, 2)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (B, h, T, hd)
        y = y.transpose(1, 2).reshape(B, T, C)  # (B, T, C)
        return self.proj(y)


class Block(nn.Module):
    """Post-LN transformer block, as in BERT: ln(x + attn(x)), then ln(x + mlp(x))."""

    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        self.attn = SelfAttention(cfg)
        self.ln1 = nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_eps)
        self.fc = Linear(cfg.n_embd, cfg.n_inner)
        self.mlp_proj = Linear(cfg.n_inner, cfg.n_embd)
        self.ln2 = nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_eps)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        x = self.ln1(x + self.attn(x, mask))  # (B, T, C)
        return self.ln2(x + self.mlp_proj(F.gelu(self.fc(x))))  # exact (erf) GELU, as BERT


class Bert(nn.Module):
    """Token + position + segment embeddings, LayerNorm, then post-LN blocks. No pooler head:
    sentence-transformers pools the token vectors itself."""

    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        self.config = cfg
        self.wte = Embedding(cfg.vocab_size, cfg.n_embd)
        self.wpe = Embedding(cfg.n_positions, cfg.n_embd)
        self.wtt = Embedding(cfg.type_vocab_size, cfg.n_embd)
        self.ln_emb = nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_eps)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))

    def forward(self, idx: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Token vectors (B, T, C) for ids ``idx`` (B, T); ``attention_mask`` (B, T) is 1 on real tokens."""
        B, T = idx.shape
        # Every text is one segment (type 0), so the segment embedding is a constant row.
        x = self.wte(idx) + self.wpe.weight[:T] + self.wtt.weight[0]  # (B, T, C)
        x = self.ln_emb(x)
        mask = None
        if not bool(attention_mask.all()):
            mask = attention_mask.bool()[:, None, None, :]  # (B, 1, 1, T): which keys to attend to
        for block in self.blocks:
            x = block(x, mask)
        return x


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, mode: str) -> torch.Tensor:
    """One unit vector (B, C) per text from token vectors (B, T, C), as sentence-transformers'
    Pooling then Normalize."""
    m = attention_mask.unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
    if mode == "mean":
        v = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)  # (B, C)
    elif mode == "cls":
        v = hidden[:, 0]
    else:  # "max"; padding gets -1e9 as in sentence-transformers
        v = hidden.masked_fill(m == 0, -1e9).max(1).values
    return F.normalize(v, p=2, dim=1)


# ----------------------------------------------------------------------------- weights


def _hf_state_dict(f, cfg: EncoderConfig) -> dict[str, torch.Tensor]:
    """Our state dict from an open safetensors file in Hugging Face's BertModel layout."""
    names = set(f.keys())
    prefix = "bert." if "bert.embeddings.word_embeddings.weight" in names else ""

    def get(name: str) -> torch.Tensor:
        if prefix + name not in names:
            raise EncoderError(f"weights lack tensor {prefix + name!r}")
        return f.get_tensor(prefix + name).float()

    sd = {
        "wte.weight": get("embeddings.word_embeddings.weight"),
        "wpe.weight": get("embeddings.position_embeddings.weight"),
        "wtt.weight": get("embeddings.token_type_embeddings.weight"),
        "ln_emb.weight": get("embeddings.LayerNorm.weight"),
        "ln_emb.bias": get("embeddings.LayerNorm.bias"),
    }
    for i in range(cfg.n_layer):
        hf, ours = f"encoder.layer.{i}.", f"blocks.{i}."
        for part in ("weight", "bias"):
            sd[ours + f"attn.qkv.{part}"] = torch.cat(
                [get(hf + f"attention.self.{n}.{part}") for n in ("query", "key", "value")])
            sd[ours + f"attn.proj.{part}"] = get(hf + f"attention.output.dense.{part}")
            sd[ours + f"ln1.{part}"] = get(hf + f"attention.output.LayerNorm.{part}")
            sd[ours + f"fc.{part}"] = get(hf + f"intermediate.dense.{part}")
            sd[ours + f"mlp_proj.{part}"] = get(hf + f"output.dense.{part}")
            sd[ours + f"ln2.{part}"] = get(hf + f"output.LayerNorm.{part}")
    return sd


def _load_weights(model: Bert, path: Path) -> str:
    """Copy the tensors at ``path`` into ``model``; returns the hex sha256 of the file's header."""
    cfg = model.config
    try:
        with safe_open(str(path), framework="pt") as f:
            sd = _hf_state_dict(f, cfg)
    except EncoderError:
        raise
    except Exception as e:  # safetensors raises its own types for truncated or garbage files
        raise EncoderError(f"unreadable weights {path} (truncated or not safetensors): {_first_line(e)}") from None
    ours = model.state_dict()
    for name, t in sd.items():
        if t.shape != ours[name].shape:
            raise EncoderError(f"weights {path}: {name} has shape {tuple(t.shape)}, "
                               f"config.json implies {tuple(ours[name].shape)}")
        if not torch.isfinite(t).all():
            raise EncoderError(f"weights {path}: {name} holds non-finite values")
    model.load_state_dict(sd, strict=True)
    with open(path, "rb") as fh:  # the header names every tensor's dtype, shape and byte range
        n = int.from_bytes(fh.read(8), "little")
        return hashlib.sha256(fh.read(n)).hexdigest()


def _first_line(e: BaseException) -> str:
    text = " ".join(line.strip() for line in str(e).splitlines() if line.strip())
    return (text or type(e).__name__)[:300]


def _clean(text: str) -> str:
    """Make ``text`` encodable: lone surrogates (possible in a Python str) become '?'."""
    return text.encode("utf-8", "replace").decode("utf-8")


# ----------------------------------------------------------------------------- the encoder


class SentenceEncoder:
    """Texts -> unit vectors, matching sentence-transformers on the same folder.

    Safe to call from several threads at once: the model is read-only and runs under
    ``torch.inference_mode``; the tokenizers are configured once at load and never changed.
    """

    def __init__(self, model: Bert, tokenizer_json: str, name: str, fingerprint: str,
                 path: Path, device: torch.device) -> None:
        self.model = model.eval()
        self.config: EncoderConfig = model.config
        self.name = name
        """Short model name, e.g. ``"all-MiniLM-L6-v2"``."""
        self.fingerprint = fingerprint
        """Changes whenever the config, pooling, tokenizer or weights change: stored embeddings
        made under another fingerprint must be recomputed."""
        self.path = path
        self.device = device
        self.dim = self.config.n_embd
        """Length of every embedding (384 for all-MiniLM-L6-v2)."""
        # The shipped tokenizer.json pads and truncates to a fixed 128. We pad per batch ourselves
        # and truncate where sentence-transformers does: max_seq_length tokens, specials included.
        self._tok = Tokenizer.from_str(tokenizer_json)
        self._tok.no_padding()
        self._tok.enable_truncation(max_length=self.config.max_seq_length)
        # Tokens of the text itself that survive truncation ([CLS] and [SEP] take 2 of the 256).
        self._content_tokens = self.config.max_seq_length - self._tok.num_special_tokens_to_add(False)
        # A second copy that never truncates: it tells where the kept tokens of a long text end.
        self._probe = Tokenizer.from_str(tokenizer_json)
        self._probe.no_padding()
        self._probe.no_truncation()

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu") -> SentenceEncoder:
        """Build the encoder from a model folder; raises ``EncoderError`` with a one-line reason."""
        folder = Path(path).expanduser()
        if not folder.is_dir():
            raise EncoderError(f"encoder folder not found: {folder}")
        missing = [n for n in REQUIRED_FILES if not (folder / n).is_file()]
        if missing:
            raise EncoderError(f"encoder folder {folder} lacks {', '.join(missing)}")
        try:
            dev = pick_device(str(device))
        except ValueError as e:
            raise EncoderError(str(e)) from None
        cfg = EncoderConfig.from_folder(folder)
        try:
            tokenizer_json = (folder / "tokenizer.json").read_text(encoding="utf-8")
            vocab = Tokenizer.from_str(tokenizer_json).get_vocab_size()
        except (OSError, UnicodeDecodeError) as e:
            raise EncoderError(f"cannot read {folder / 'tokenizer.json'}: {e}") from None
        except Exception as e:  # the Rust side raises plain Exception on bad JSON
            raise EncoderError(f"bad tokenizer {folder / 'tokenizer.json'}: {_first_line(e)}") from None
        if vocab > cfg.vocab_size:
            raise EncoderError(f"tokenizer has {vocab} tokens, the model only {cfg.vocab_size}")
        # Uninitialised until the weights are copied in (torch's "meta" device would do the same
        # but its first use imports ~800 modules, sympy among them: ~1.5 s).
        model = Bert(cfg)
        header_hash = _load_weights(model, folder / "model.safetensors")
        fp = hashlib.sha256()
        fp.update(json.dumps(asdict(cfg), sort_keys=True).encode())
        fp.update(hashlib.sha256(tokenizer_json.encode()).digest())
        fp.update(bytes.fromhex(header_hash))
        fp.update(_sample_digest(folder / "model.safetensors"))
        name = _model_name(folder)
        return cls(model.to(dev), tokenizer_json, name, f"{name}-{fp.hexdigest()[:16]}", folder, dev)

    @torch.inference_mode()
    def embed(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Unit vectors of shape (len(texts), dim), float32. Texts longer than
        ``max_seq_length`` tokens are cut; the empty string embeds like [CLS] [SEP]."""
        if isinstance(texts, str):
            raise TypeError("embed takes a sequence of texts, not one str: use embed([text])")
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        prepared = [self._prepare(t) for t in texts]
        ids = [e.ids for e in (self._tok.encode_batch(prepared) if len(prepared) > 1
                               else [self._tok.encode(prepared[0])])]
        # Longest first, as sentence-transformers does, so each batch pads little.
        order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            T = max(len(ids[i]) for i in chunk)
            idx = torch.full((len(chunk), T), self.config.pad_id, dtype=torch.long)  # (B, T)
            mask = torch.zeros((len(chunk), T), dtype=torch.long)  # (B, T)
            for row, i in enumerate(chunk):
                idx[row, :len(ids[i])] = torch.tensor(ids[i])
                mask[row, :len(ids[i])] = 1
            idx, mask = idx.to(self.device), mask.to(self.device)
            hidden = self.model(idx, mask)  # (B, T, C)
            out[chunk] = pool(hidden, mask, self.config.pooling).float().cpu().numpy()
        return out

    def _prepare(self, text: str) -> str:
        """The text as the tokenizer should see it; a very long text is cut to a prefix that
        tokenizes to exactly the same kept tokens (tokenizing 1 MB whole takes ~1 s)."""
        if not isinstance(text, str):
            raise TypeError(f"texts must be str, got {type(text).__name__}")
        text = _clean(text)
        if self.config.do_lower_case:
            text = text.lower()
        keep = self._content_tokens
        n = 16 * keep  # a word-piece token rarely spans more than a few characters
        while n < len(text):
            words = self._probe.encode(text[:n], add_special_tokens=False).word_ids
            # The cut at n can only change the prefix's last word: if every kept token and the
            # first dropped one come from earlier words, the full text keeps the same tokens.
            if len(words) > keep:
                first_dropped, last = words[keep], words[-1]
                if first_dropped is not None and last is not None and first_dropped < last:
                    return text[:n]
            n *= 4
        return text

    def __repr__(self) -> str:
        return f"SentenceEncoder({self.name!r}, dim={self.dim}, device={self.device}, fingerprint={self.fingerprint!r})"


def _sample_digest(path: Path, blocks: int = 256, size: int = 4096) -> bytes:
    """sha256 of ``blocks`` evenly spaced ``size``-byte reads (1 MB of ~90): catches retrained
    weights whose header (names, shapes, offsets) stayed the same, for ~1 ms instead of the
    ~50 ms of hashing the whole file on every start. An edit confined to a few small tensors
    could slip through; swapping or fine-tuning a model does not."""
    h = hashlib.sha256()
    total = path.stat().st_size
    with open(path, "rb") as fh:
        for i in range(blocks):
            fh.seek(max(0, (total - size) * i // max(1, blocks - 1)))
            h.update(fh.read(size))
    return h.digest()


def _model_name(folder: Path) -> str:
    """``all-MiniLM-L6-v2`` for a HF-cache snapshot of it, else the folder's own name."""
    for part in reversed(folder.resolve().parts):
        if part.startswith("models--"):
            return part.split("--")[-1]
    return folder.name

