"""A tiny BERT sentence encoder laid out like all-MiniLM-L6-v2, so tests never need real weights.

``make_tiny_encoder(folder)`` writes config.json, tokenizer.json (a WordPiece vocabulary trained
here with ``tokenizers``), model.safetensors (random weights, Hugging Face BertModel tensor
names), modules.json, 1_Pooling/config.json and sentence_bert_config.json: the files
``SentenceEncoder.load`` reads from a real snapshot.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

HIDDEN = 32
LAYERS = 2
HEADS = 2
INNER = 64
POSITIONS = 64
MAX_SEQ_LENGTH = 32  # small, so a few sentences already exercise truncation

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]

SENTENCES = [
    "How do I convert kilometres to miles?",
    "What is the capital of France? Paris is the capital.",
    "and in French? et en français ?",
    "The quick brown fox jumps over the lazy dog.",
    "Python lists, dictionaries and sets are built-in types.",
    "Why does my laptop keep crashing when I open the browser?",
    "Tell me a joke about databases and indexes.",
    "Explain nearest neighbour search with cosine similarity.",
    "東京は日本の首都です。naïve café résumé",
    "SELECT * FROM answers WHERE context = ? LIMIT 5;",
    "Numbers: 0 1 2 3 4 5 6 7 8 9 10 100 1000 3.14",
]


def build_tokenizer() -> Tokenizer:
    """A BERT-style WordPiece tokenizer (lowercasing, [CLS] ... [SEP]) with ~300 tokens."""
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    trainer = trainers.WordPieceTrainer(vocab_size=300, special_tokens=SPECIALS, show_progress=False)
    tok.train_from_iterator(SENTENCES * 3, trainer=trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))],
    )
    # The real file ships with fixed padding and truncation at 128; the encoder must override both.
    tok.enable_padding(pad_id=0, pad_token="[PAD]", length=128)
    tok.enable_truncation(max_length=128)
    return tok


def tiny_state_dict(vocab_size: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights with the tensor names and shapes of Hugging Face's BertModel."""
    g = torch.Generator().manual_seed(seed)

    def w(*shape: int, std: float = 0.2) -> torch.Tensor:
        return torch.randn(*shape, generator=g) * std

    def ln(prefix: str) -> dict[str, torch.Tensor]:
        return {prefix + "weight": 1 + w(HIDDEN, std=0.05), prefix + "bias": w(HIDDEN, std=0.05)}

    sd = {
        "embeddings.word_embeddings.weight": w(vocab_size, HIDDEN, std=1.0),
        "embeddings.position_embeddings.weight": w(POSITIONS, HIDDEN),
        "embeddings.token_type_embeddings.weight": w(2, HIDDEN),
        "embeddings.position_ids": torch.arange(POSITIONS).unsqueeze(0),  # present in the real file
        **ln("embeddings.LayerNorm."),
        "pooler.dense.weight": w(HIDDEN, HIDDEN), "pooler.dense.bias": w(HIDDEN),  # unused, as in ST
    }
    for i in range(LAYERS):
        p = f"encoder.layer.{i}."
        for name in ("query", "key", "value"):
            sd[p + f"attention.self.{name}.weight"] = w(HIDDEN, HIDDEN)
            sd[p + f"attention.self.{name}.bias"] = w(HIDDEN)
        sd[p + "attention.output.dense.weight"] = w(HIDDEN, HIDDEN)
        sd[p + "attention.output.dense.bias"] = w(HIDDEN)
        sd.update(ln(p + "attention.output.LayerNorm."))
        sd[p + "intermediate.dense.weight"] = w(INNER, HIDDEN)
        sd[p + "intermediate.dense.bias"] = w(INNER)
        sd[p + "output.dense.weight"] = w(HIDDEN, INNER)
        sd[p + "output.dense.bias"] = w(HIDDEN)
        sd.update(ln(p + "output.LayerNorm."))
    return sd


def make_tiny_encoder(folder: Path, seed: int = 0) -> Path:
    """Write a tiny sentence encoder into ``folder`` (created if needed); returns ``folder``."""
    folder = Path(folder)
    (folder / "1_Pooling").mkdir(parents=True, exist_ok=True)
    tok = build_tokenizer()
    tok.save(str(folder / "tokenizer.json"))
    config = {
        "architectures": ["BertModel"], "model_type": "bert", "hidden_act": "gelu",
        "hidden_size": HIDDEN, "num_hidden_layers": LAYERS, "num_attention_heads": HEADS,
        "intermediate_size": INNER, "max_position_embeddings": POSITIONS, "type_vocab_size": 2,
        "vocab_size": tok.get_vocab_size(), "layer_norm_eps": 1e-12, "pad_token_id": 0,
        "position_embedding_type": "absolute",
    }
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]
    pooling = {"word_embedding_dimension": HIDDEN, "pooling_mode_cls_token": False,
               "pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": False,
               "pooling_mode_mean_sqrt_len_tokens": False}
    files = {
        "config.json": config,
        "modules.json": modules,
        "1_Pooling/config.json": pooling,
        "sentence_bert_config.json": {"max_seq_length": MAX_SEQ_LENGTH, "do_lower_case": False},
    }
    for name, data in files.items():
        (folder / name).write_text(json.dumps(data, indent=2), encoding="utf-8")
    tensors = {k: v.contiguous() for k, v in tiny_state_dict(tok.get_vocab_size(), seed).items()}
    save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})
    return folder
