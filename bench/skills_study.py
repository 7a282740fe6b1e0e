"""Skills study: can the local generator learn skills it answers on UNSEEN instances?

Trains the generator from scratch on three skills the offline teacher answers without end —
integer arithmetic, word operations and leap years — in rounds, as `teach --rounds 6` would, and
prints per skill, after every round: held-out accuracy, and the share of held-out instances
served at a confidence threshold that keeps precision >= 0.98, against wall time. Then the
latency of 64 generated tokens with and without the KV cache.

It is the recipe of docs/skills-study.md, self-contained so the team can re-run it:

* tokenizer: byte-level BPE whose pre-tokenizer splits digits one by one and the letters of a
  quoted word (or of a text that is one word, e.g. an answer) one by one (`skills_pre_tokenizer`);
* generator: the project's Generator plus *run-position embeddings* (`RunGenerator`): a token
  that is one digit or one letter gets its index in its run of such tokens, from the left and
  from the right, as two learned embeddings added to its input;
* answers that are integers are learned with their digits reversed ("-776" → "-677") and put
  back the right way before anyone sees them (`internal_answer` is its own inverse);
* training: AdamW, loss on answer tokens only, each round fresh teacher examples + replay.

Usage:  .venv/bin/python bench/skills_study.py [--rounds 6] [--threads 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
from torch.nn import functional as F
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shammah_tui.models.generator import (  # noqa: E402
    IGNORE_INDEX, Generator, GeneratorConfig, _DecodeWeights, encode_example, encode_prompt, generate)
from shammah_tui.curriculum.skills import SKILLS as PACKAGE_SKILLS  # noqa: E402
from shammah_tui.curriculum.skills import SkillInstance as Instance  # noqa: E402
from shammah_tui.models.tokenizer import SPECIAL_TOKENS, TextTokenizer, _clean  # noqa: E402

try:  # the curriculum moved from teachers/ to its own package
    from shammah_tui import curriculum as C
    C.solve  # noqa: B018
except (ImportError, AttributeError):  # pragma: no cover - older layout
    from shammah_tui.teachers import curriculum as C


# ============================================================================ tokenizer

#: One letter of a word that is quoted ('apple', "apple") or that is the whole text ("elppa").
#: \G continues right after the previous match, so every letter of such a word matches on its
#: own; a word followed by a quote and then a letter (John's, don't) does not.
SKILL_LETTERS = r"""(?:(?<=['"])|\G)[A-Za-z](?=[A-Za-z]*(?:['"](?![A-Za-z])|\z))"""


def skills_pre_tokenizer() -> pre_tokenizers.PreTokenizer:
    return pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(SKILL_LETTERS), behavior="isolated"),
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False),
    ])


def build_tokenizer(texts, vocab_size: int = 8000, skills: bool = True) -> TextTokenizer:
    """TextTokenizer.build with the skills pre-tokenizer (skills=False: today's tokenizer)."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = skills_pre_tokenizer() if skills else pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator((_clean(t) for t in texts), trainer=trainer)
    return TextTokenizer(tok)


def tokenizer_corpus():
    """models.corpus.tokenizer_corpus, without depending on where the curriculum lives."""
    yield from C.corpus_texts()
    try:
        from pydoc_data.topics import topics
    except ImportError:
        return
    for name in sorted(topics):
        yield from (line for line in topics[name].splitlines() if line.strip())


# ============================================================================ skills
# Phrasings are the curriculum's; every answer is checked against curriculum.solve (the
# offline teacher's exact text) in `check_skills`.

# The skills are the package's; the study adds a sub-kind per instance for its breakdowns and a
# sampler that skips the held-out and dev keys.
SKILLS = list(PACKAGE_SKILLS.values())


def kind_of(inst: Instance) -> str:
    """The breakdown an instance falls in: "+ 2x3", "reverse", "century" …"""
    if inst.skill == "arithmetic":
        match = re.fullmatch(r"arithmetic:(\d+)([-+*])(\d+)", inst.key)
        assert match is not None
        a, op, b = match.groups()
        return f"{op} {len(a)}x{len(b)}"
    if inst.skill == "leap":
        return "century" if int(inst.key.split(":")[1]) % 100 == 0 else "year"
    return inst.group


def sampler(skill, exclude: set[str], seed: str):
    """Draws of `skill` (a group, or uniform) whose key is not in `exclude`."""
    rng = random.Random(f"skills:{skill.name}:{seed}")

    def draw(group: str | None = None) -> Instance:
        while True:
            inst = skill.instance(skill.sample_key(rng, held_out=False, group=group), rng)
            if inst.key not in exclude:
                return inst
    return draw


def check_skills(n: int = 300) -> None:
    """Every answer must be the offline teacher's exact answer."""
    for skill in SKILLS:
        draw = sampler(skill, set(), "check")
        for _ in range(n):
            inst = draw()
            sol = C.solve(inst.query)
            if sol is None or sol.answer != inst.answer:
                raise AssertionError(f"{skill.name}: {inst.query!r} -> {inst.answer!r}, teacher says {sol}")


# ============================================================================ model

def internal_answer(text: str) -> str:
    """An integer answer's digits reversed, sign first ("-776" <-> "-677"); anything else unchanged.
    Its own inverse: apply it to the teacher's answer before training and to the generated
    text before showing it."""
    if re.fullmatch(r"-?\d+", text):
        sign = "-" if text.startswith("-") else ""
        return sign + text[len(sign):][::-1]
    return text


RUN_MAX = 16  # run indices 0..15; row 16 = not in a run (a zero vector)
RUN_ORDS = 6  # run ordinal rows: 0..3 = 1st..4th run of its class in the prompt, 4 = answer, 5 = none
ORD_ANSWER, ORD_NONE, ORD_MAX = 4, 5, 3


def char_classes(tok: TextTokenizer) -> list[int]:
    """Per token id: 1 = one ASCII digit, 2 = one ASCII letter, 0 = anything else."""
    out = []
    for i in range(tok.vocab_size):
        s = tok.decode([i])
        out.append(1 if len(s) == 1 and s.isascii() and s.isdigit()
                   else 2 if len(s) == 1 and s.isascii() and s.isalpha() else 0)
    return out


def run_positions(ids: list[int], prompt_len: int, cls: list[int]) -> tuple[list[int], list[int], list[int]]:
    """(from_left, from_right, ordinal) per token.

    A run is a maximal stretch of single-digit tokens, or of single-letter tokens, all in the
    prompt or all in the answer. from_left/from_right: the token's index in its run (RUN_MAX
    outside runs). A prompt run knows both ends; an answer run is generated one token at a
    time, so both of its indices are its index from the left: answer digit k of a reversed
    number (place k) then carries the same from_right as the prompt digits of place k, and
    answer letter k the from_left of prompt letter k (upper-casing) or its from_right
    (reversing). ordinal: which run of its class the prompt run is (0 = first number or word,
    1 = second ...), ORD_ANSWER in the answer, ORD_NONE outside runs.
    """
    n = len(ids)
    left, right, ords = [RUN_MAX] * n, [RUN_MAX] * n, [ORD_NONE] * n
    seen = {1: 0, 2: 0}
    i = 0
    while i < n:
        c = cls[ids[i]]
        if c == 0:
            i += 1
            continue
        in_prompt = i < prompt_len
        j = i
        while j < n and cls[ids[j]] == c and (j < prompt_len) == in_prompt:
            j += 1
        o = ORD_ANSWER
        if in_prompt:
            o = min(seen[c], ORD_MAX)
            seen[c] += 1
        for k in range(i, j):
            left[k] = min(k - i, RUN_MAX - 1)
            right[k] = min(j - 1 - k, RUN_MAX - 1) if in_prompt else left[k]
            ords[k] = o
        i = j
    return left, right, ords


class RunGenerator(Generator):
    """Generator + run-position embeddings: three small tables added to the token embedding
    (from_left and from_right: RUN_MAX + 1 rows, ordinal: RUN_ORDS rows; each "none" row zero)."""

    def __init__(self, cfg: GeneratorConfig) -> None:
        super().__init__(cfg)
        self.wleft = nn.Embedding(RUN_MAX + 1, cfg.n_embd)
        self.wright = nn.Embedding(RUN_MAX + 1, cfg.n_embd)
        self.wrun = nn.Embedding(RUN_ORDS, cfg.n_embd)
        for emb, none in ((self.wleft, RUN_MAX), (self.wright, RUN_MAX), (self.wrun, ORD_NONE)):
            nn.init.normal_(emb.weight, mean=0.0, std=0.02)
            with torch.no_grad():
                emb.weight[none].zero_()

    def run_embedding(self, runs):
        """runs: (3, B, T) long -> (B, T, C)."""
        return self.wleft(runs[0]) + self.wright(runs[1]) + self.wrun(runs[2])

    def embed(self, idx, runs, pos0=0):
        T = idx.size(1)
        return self.wte(idx) + self.wpe.weight[pos0:pos0 + T] + self.run_embedding(runs)

    def hidden(self, idx, runs, caches=None, pos0=0):
        x = self.embed(idx, runs, pos0)
        for i, block in enumerate(self.blocks):
            x = block(x, None if caches is None else caches[i], pos0)
        return self.ln_f(x)

    def answer_loss(self, idx, targets, runs):
        """Mean loss over answer positions; the LM head runs on those positions only."""
        h = self.hidden(idx, runs)
        keep = targets != IGNORE_INDEX
        return F.cross_entropy(self.lm_head(h[keep]), targets[keep])


class Codec:
    """Tokenizer + run classes: encodes training examples and prompts for RunGenerator."""

    def __init__(self, tok: TextTokenizer, block_size: int) -> None:
        self.tok, self.block = tok, block_size
        self.cls = char_classes(tok)

    def example(self, query: str, answer: str):
        x, y = encode_example(self.tok, query, "", internal_answer(answer), block_size=self.block)
        return x, y, run_positions(x, x.index(self.tok.assistant_id) + 1, self.cls)

    def batch(self, examples):
        T = max(len(x) for x, _, _ in examples)
        X = torch.full((len(examples), T), self.tok.pad_id, dtype=torch.long)
        Y = torch.full((len(examples), T), IGNORE_INDEX, dtype=torch.long)
        R = torch.full((3, len(examples), T), RUN_MAX, dtype=torch.long)
        R[2] = ORD_NONE
        for i, (x, y, runs) in enumerate(examples):
            X[i, :len(x)] = torch.tensor(x)
            Y[i, :len(y)] = torch.tensor(y)
            R[:, i, :len(x)] = torch.tensor(runs)
        return X, Y, R

    def prompt(self, query: str) -> list[int]:
        return encode_prompt(self.tok, query, "", block_size=self.block)


@dataclass
class Answer:
    text: str  # what the user sees (integers put back in order)
    confidence: float  # min p(chosen token), eos included: generator._confidence
    mean_logp: float
    stopped: bool


@torch.inference_mode()
def answer_batch(model: RunGenerator, codec: Codec, queries: list[str], max_new: int = 16) -> list[Answer]:
    """Greedy answers for many queries, grouped by prompt length (no padding, so each row is
    exactly what a single generation computes)."""
    model.eval()
    prompts = [codec.prompt(q) for q in queries]
    out: list[Answer | None] = [None] * len(queries)
    groups: dict[int, list[int]] = {}
    for i, p in enumerate(prompts):
        groups.setdefault(len(p), []).append(i)
    eos = codec.tok.eos_id
    for plen, rows in groups.items():
        seqs = [list(prompts[i]) for i in rows]
        toks = [[] for _ in rows]
        probs = [[] for _ in rows]
        done = [False] * len(rows)
        for _ in range(max_new):
            R = torch.tensor([run_positions(s, plen, codec.cls) for s in seqs]).transpose(0, 1)  # (3, B, T)
            h = model.hidden(torch.tensor(seqs), R)[:, -1]
            p = torch.softmax(model.lm_head(h).float(), -1)
            nxt = p.argmax(-1)
            pn = p.gather(1, nxt[:, None])[:, 0].tolist()
            for j, t in enumerate(nxt.tolist()):
                if done[j]:
                    continue
                probs[j].append(pn[j])
                if t == eos:
                    done[j] = True
                else:
                    toks[j].append(t)
            if all(done):
                break
            for j, t in enumerate(nxt.tolist()):
                seqs[j].append(t)
        for j, i in enumerate(rows):
            ps = probs[j]
            out[i] = Answer(internal_answer(codec.tok.decode(toks[j])), min(ps),
                            sum(math.log(max(v, 1e-12)) for v in ps) / len(ps), done[j])
    return out  # type: ignore[return-value]


class AnswerRun:
    """Tracks the run position of each generated token (the decode loop's only extra state)."""

    def __init__(self, cls: list[int]) -> None:
        self.cls, self.run_cls, self.length = cls, 0, 0

    def push(self, tok: int) -> tuple[int, int, int]:
        c = self.cls[tok]
        self.length = self.length + 1 if c and c == self.run_cls else (1 if c else 0)
        self.run_cls = c
        if not c:
            return RUN_MAX, RUN_MAX, ORD_NONE
        k = min(self.length - 1, RUN_MAX - 1)
        return k, k, ORD_ANSWER


def _decode_step_runs(w: _DecodeWeights, model: RunGenerator, caches, tok: int, pos: int, run: tuple[int, int, int]):
    """generator._decode_step plus the run embedding of the new token: one more add."""
    cfg = model.config
    C, h = cfg.n_embd, cfg.n_head
    x = (w.wte.select(0, tok) + w.wpe.select(0, pos) + model.wleft.weight.select(0, run[0])
         + model.wright.weight.select(0, run[1]) + model.wrun.weight.select(0, run[2])).view(1, C)
    for (l1w, l1b, qkv_w, qkv_b, pr_w, pr_b, l2w, l2b, fc_w, fc_b, out_w, out_b), cache in zip(w.layers, caches):
        qkv = torch.addmm(qkv_b, F.layer_norm(x, (C,), l1w, l1b), qkv_w)
        q, k, v = qkv.view(3, 1, h, 1, C // h).unbind(0)
        cache.k.narrow(2, pos, 1).copy_(k)
        cache.v.narrow(2, pos, 1).copy_(v)
        y = F.scaled_dot_product_attention(q, cache.k.narrow(2, 0, pos + 1), cache.v.narrow(2, 0, pos + 1))
        x = x + torch.addmm(pr_b, y.view(1, C), pr_w)
        hid = F.gelu(torch.addmm(fc_b, F.layer_norm(x, (C,), l2w, l2b), fc_w), approximate="tanh")
        x = x + torch.addmm(out_b, hid, out_w)
    x = F.layer_norm(x, (C,), *w.ln_f)
    return (x @ w.head).view(-1)


@torch.inference_mode()
def generate_runs(model: RunGenerator, codec: Codec, prompt: list[int], max_new: int = 64,
                  eos_id: int | None = None, use_cache: bool = True) -> list[int]:
    """Greedy decoding with run positions: the KV-cache fast path (as generator.generate) or
    full recomputation each step (the reference); both give the same tokens."""
    model.eval()
    plen, seq, out = len(prompt), list(prompt), []
    R = torch.tensor([run_positions(seq, plen, codec.cls)]).transpose(0, 1)
    caches = model.new_caches(1, plen + max_new) if use_cache else None
    logits = model.lm_head(model.hidden(torch.tensor([seq]), R, caches=caches)[:, -1])[0]
    fast = _DecodeWeights.of(model) if use_cache else None
    run = AnswerRun(codec.cls)
    for step in range(max_new):
        t = int(torch.argmax(logits))
        if t == eos_id:
            break
        out.append(t)
        seq.append(t)
        if step == max_new - 1:
            break
        if use_cache:
            logits = _decode_step_runs(fast, model, caches, t, len(seq) - 1, run.push(t))
        else:
            R = torch.tensor([run_positions(seq, plen, codec.cls)]).transpose(0, 1)
            logits = model.lm_head(model.hidden(torch.tensor([seq]), R)[:, -1])[0]
    return out


# ============================================================================ training

@dataclass
class Recipe:
    n_embd: int = 128
    n_layer: int = 2
    n_head: int = 4
    block_size: int = 96
    lr: float = 2e-3
    lr_min_frac: float = 0.1  # cosine per round from lr to lr * this
    warmup: int = 100  # first steps of the first round only
    weight_decay: float = 0.01
    batch_size: int = 64
    replay_fraction: float = 0.5
    new_per_round: int = 2000  # fresh teacher examples per round (10 calls of 200)
    steps_per_round: int = 1000  # ~55 s on 2 idle cores (2 threads), ~95 s on 1
    #: first round's mix per skill (spread evenly over its groups); later rounds weight each
    #: (skill, group) cell by its dev error + `floor`, as a teacher steered by analyze_model would
    weights: tuple[float, ...] = (3.0, 1.5, 0.5)
    adaptive: bool = True
    floor: float = 0.02


def coverage_at_precision(scored: list[tuple[float, int]], target: float = 0.98) -> tuple[float, float | None]:
    """Largest served share whose precision is >= target, serving the most confident first;
    and the confidence threshold that gives it."""
    s = sorted(scored, key=lambda t: -t[0])
    best, thr, ok = 0.0, None, 0
    for i, (c, r) in enumerate(s, 1):
        ok += r
        if i < len(s) and s[i][0] == c:
            continue
        if ok / i >= target:
            best, thr = i / len(s), c
    return best, thr


def evaluate(model, codec, sets: dict[str, list[Instance]]) -> dict[str, dict]:
    res = {}
    for name, items in sets.items():
        answers = answer_batch(model, codec, [i.query for i in items])
        right = [int(a.stopped and a.text == i.answer) for a, i in zip(answers, items)]
        kinds: dict[str, list[int]] = {}
        for r, i in zip(right, items):
            kinds.setdefault(kind_of(i), []).append(r)
        cov, thr = coverage_at_precision([(a.confidence, r) for a, r in zip(answers, right)])
        groups: dict[str, list[int]] = {}
        for r, i in zip(right, items):
            groups.setdefault(i.group, []).append(r)
        res[name] = dict(acc=sum(right) / len(right), cov98=cov, thr98=thr,
                         kinds={k: round(sum(v) / len(v), 3) for k, v in sorted(kinds.items())},
                         groups={k: sum(v) / len(v) for k, v in groups.items()},
                         scored=[(a.confidence, r, a.mean_logp) for a, r in zip(answers, right)])
    return res


def serve_report(dev: dict, held: dict, precision: float = 0.99) -> dict:
    """One confidence threshold chosen on the dev sets (lowest one whose dev precision, all
    skills pooled, is >= `precision`), then applied to the held-out sets."""
    pooled = sorted(((c, r) for v in dev.values() for c, r, _ in v["scored"]), key=lambda t: -t[0])
    thr, ok = 1.0, 0
    for i, (c, r) in enumerate(pooled, 1):
        ok += r
        if ok / i >= precision:
            thr = c
    out = {"threshold": thr}
    for name, v in held.items():
        served = [r for c, r, _ in v["scored"] if c >= thr]
        out[name] = dict(served=len(served) / len(v["scored"]),
                         precision=(sum(served) / len(served)) if served else None)
        # the same rule with one threshold per skill, each chosen on that skill's dev set
        own = sorted(((c, r) for c, r, _ in dev[name]["scored"]), key=lambda t: -t[0])
        t_own, ok = 1.0, 0
        for i, (c, r) in enumerate(own, 1):
            ok += r
            if ok / i >= precision:
                t_own = c
        served = [r for c, r, _ in v["scored"] if c >= t_own]
        out[name].update(own_threshold=t_own, own_served=len(served) / len(v["scored"]),
                         own_precision=(sum(served) / len(served)) if served else None)
    return out


def train(args) -> dict:
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    recipe = Recipe(steps_per_round=args.steps_per_round, new_per_round=args.new_per_round)
    if args.lr:
        recipe.lr = args.lr
    t_start = time.perf_counter()
    tok = build_tokenizer(tokenizer_corpus())
    t_tok = time.perf_counter() - t_start
    codec = Codec(tok, recipe.block_size)
    held = {s.name: s.held_out(args.held_out) for s in SKILLS}
    dev = {s.name: s.held_out(args.held_out + args.dev)[args.held_out:] for s in SKILLS}  # unseen, not held-out
    never = {s.name: {i.key for i in held[s.name]} | {i.key for i in dev[s.name]} for s in SKILLS}
    draws = {s.name: sampler(s, never[s.name], f"train:{args.seed}") for s in SKILLS}
    cfg = GeneratorConfig(vocab_size=tok.vocab_size, n_embd=recipe.n_embd, n_layer=recipe.n_layer,
                          n_head=recipe.n_head, block_size=recipe.block_size)
    model = RunGenerator(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay, betas=(0.9, 0.98))
    rng = random.Random(args.seed)
    cells = [(s.name, g) for s in SKILLS for g in s.groups]
    weights = [w / len(s.groups) for s, w in zip(SKILLS, recipe.weights) for _ in s.groups]
    print(f"tokenizer: vocab {tok.vocab_size}, built in {t_tok:.1f}s; generator {model.num_params():,} params; "
          f"{args.threads} thread(s); held-out {args.held_out}/skill, dev {args.dev}/skill", flush=True)
    pool: list = []
    rows, step, train_s, eval_s = [], 0, 0.0, 0.0
    names = [s.name for s in SKILLS]
    for rnd in range(1, args.rounds + 1):
        t0 = time.perf_counter()
        new = []  # what the teacher sends this round
        for _ in range(recipe.new_per_round):
            skill, group = rng.choices(cells, weights)[0]
            inst = draws[skill](group)
            new.append(codec.example(inst.query, inst.answer))
        old = list(pool)
        pool.extend(new)
        n_old = int(round(recipe.batch_size * recipe.replay_fraction)) if old else 0
        n_steps = recipe.steps_per_round
        i = 0
        while (time.perf_counter() - t0 < args.round_seconds) if args.round_seconds else i < n_steps:
            if args.round_seconds:  # the schedule needs a length: estimate it from the speed so far
                n_steps = max(i + 1, int(args.round_seconds / max((time.perf_counter() - t0) / max(i, 1), 1e-3)))
            batch = ([rng.choice(new) for _ in range(recipe.batch_size - n_old)]
                     + [rng.choice(old) for _ in range(n_old)])
            X, Y, R = codec.batch(batch)
            f = min(i / n_steps, 1.0)
            lr = recipe.lr * (recipe.lr_min_frac + (1 - recipe.lr_min_frac) * 0.5 * (1 + math.cos(math.pi * f)))
            if step < recipe.warmup:
                lr = recipe.lr * (step + 1) / recipe.warmup
            for g in opt.param_groups:
                g["lr"] = lr
            model.train()
            loss = model.answer_loss(X, Y, R)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            step += 1
            i += 1
        train_s += time.perf_counter() - t0
        t1 = time.perf_counter()
        d = evaluate(model, codec, dev)
        h = evaluate(model, codec, held)
        eval_s += time.perf_counter() - t1
        if recipe.adaptive:  # the next round's mix: by dev error, as analyze_model would steer it
            weights = [1.0 - d[n]["groups"].get(g, 0.0) + recipe.floor for n, g in cells]
        srv = serve_report(d, h)
        row = dict(round=rnd, steps=step, train_s=round(train_s, 1), eval_s=round(eval_s, 1),
                   loss=round(loss.item(), 4),
                   threshold=srv["threshold"],
                   skills={n: dict(acc=h[n]["acc"], cov98=h[n]["cov98"], thr98=h[n]["thr98"],
                                   served=srv[n]["served"], served_precision=srv[n]["precision"],
                                   own_threshold=srv[n]["own_threshold"], own_served=srv[n]["own_served"],
                                   own_precision=srv[n]["own_precision"],
                                   kinds=h[n]["kinds"]) for n in names},
                   next_mix={f"{n}:{g}": round(w / sum(weights), 3) for (n, g), w in zip(cells, weights)})
        rows.append(row)
        print(f"round {rnd}: {step} steps, train {train_s:.0f}s, eval {eval_s:.0f}s, loss {loss.item():.3f}, "
              f"threshold {srv['threshold']:.3f}", flush=True)
        for n in names:
            s = row["skills"][n]
            prec = "-" if s["served_precision"] is None else f"{s['served_precision']:.3f}"
            own = "-" if s["own_precision"] is None else f"{s['own_precision']:.3f}"
            print(f"    {n:10s} held-out acc {s['acc']:.3f}  oracle cov@0.98 {s['cov98']:.2f}"
                  f"  served {s['served']:.2f} at precision {prec} (shared threshold)"
                  f"  {s['own_served']:.2f} at {own} (own threshold {s['own_threshold']:.3f})", flush=True)
            print(f"    {'':10s} {s['kinds']}", flush=True)
    result = dict(recipe=recipe.__dict__, params=model.num_params(), vocab=tok.vocab_size, rounds=rows,
                  wall_s=round(time.perf_counter() - t_start, 1), threads=args.threads)
    result["confidence"] = confidence_table(d, h)
    result["latency"] = latency(model, codec, args.threads)
    print(f"wall {result['wall_s']:.0f}s in total (tokenizer, training, evaluation)")
    return result


def confidence_table(dev, held) -> dict:
    """Coverage at precision 0.98 on held-out per confidence score; thresholds from dev."""
    out = {}
    for score, col in (("min_prob", 0), ("mean_logp", 2)):
        row = {}
        for n, v in held.items():
            row[n] = round(coverage_at_precision([(t[col], t[1]) for t in v["scored"]])[0], 3)
        out[score] = row
    print("coverage at precision 0.98 (oracle threshold per skill):", json.dumps(out))
    return out


def latency(model: RunGenerator, codec: Codec, threads: int, n: int = 30) -> dict:
    """p50 of 64 new tokens, eos ignored: RunGenerator (this recipe) and the stock generate()
    of a Generator of the same size, each with and without the KV cache."""
    torch.set_num_threads(threads)
    prompt = codec.prompt("What is 347 + 589?")
    stock = Generator(model.config).eval()
    out = {}
    for name, fn in (
        ("run_generator_cache", lambda: generate_runs(model, codec, prompt, 64, None, True)),
        ("run_generator_nocache", lambda: generate_runs(model, codec, prompt, 64, None, False)),
        ("stock_generate_cache", lambda: generate(stock, prompt, 64, eos_id=None, use_cache=True)),
        ("stock_generate_nocache", lambda: generate(stock, prompt, 64, eos_id=None, use_cache=False)),
    ):
        for _ in range(3):
            fn()
        ts = []
        for _ in range(n):
            t0 = time.perf_counter()
            fn()
            ts.append((time.perf_counter() - t0) * 1000)
        out[name] = round(statistics.median(ts), 1)
    # the cached and uncached paths must agree
    a = generate_runs(model, codec, prompt, 24, None, True)
    b = generate_runs(model, codec, prompt, 24, None, False)
    out["cache_matches_nocache"] = a == b
    print("latency p50 ms, 64 new tokens:", json.dumps(out), flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--steps-per-round", type=int, default=Recipe.steps_per_round)
    ap.add_argument("--new-per-round", type=int, default=Recipe.new_per_round)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--held-out", type=int, default=300, help="held-out instances per skill")
    ap.add_argument("--dev", type=int, default=200, help="dev instances per skill (threshold, mix)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--round-seconds", type=float, default=0.0,
                    help="train each round for this long instead of --steps-per-round")
    ap.add_argument("--lr", type=float, default=0.0)
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    check_skills()
    result = train(args)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
