"""How often `agreement` hears the same answer said twice, and tells different answers apart.

    python bench/agreement_pairs.py [--n 500]

With the real sentence encoder (all-MiniLM-L6-v2, from $HF_HOME), over answers the loopback
teacher of bench/learning_streams.py gives (real English sentences; the same key is said again
with another opening and closing on every call): the share of same-key pairs that agree (should
be 1) and of different-key pairs that agree (should be 0). These verdicts are the free labels the
semantic tier is calibrated on, so a same-key pair that "disagrees" closes the tier for nothing.
Also prints the cosines the agreement tests quote (tests/unit/test_agreement.py). Skipped with a
message when the encoder's weights are absent.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "bench"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import learning_streams as ls  # noqa: E402

from shammah_tui.pipeline.agreement import agreement  # noqa: E402

QUOTED = [
    ("Paris is the capital of France.", "France's capital city is Paris."),
    ("Paris is the capital of France.", "Lyon is the capital of France."),
    ("To undo the last commit but keep the changes, run git reset --soft HEAD~1.",
     "Run git reset --soft HEAD~1: it removes the last commit and keeps your changes staged."),
    ("To undo the last commit but keep the changes, run git reset --soft HEAD~1.",
     "To discard the last commit and its changes, run git reset --hard HEAD~1."),
]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=500)
    args = ap.parse_args(argv)
    from shammah_tui.models.encoder import SentenceEncoder, locate_encoder

    folder = locate_encoder(None)
    if folder is None:
        print("skipped: no all-MiniLM-L6-v2 folder (run ../shared/tools/hf-minilm and export HF_HOME)")
        return 0
    encoder = SentenceEncoder.load(folder)
    rng = random.Random(0)
    same = different = 0
    for i in range(args.n):
        a = ls.english_answer_for(f"key{i}", rng.randrange(len(ls.LEADS)))
        b = ls.english_answer_for(f"key{i}", rng.randrange(len(ls.LEADS)))
        c = ls.english_answer_for(f"other{i}", rng.randrange(len(ls.LEADS)))
        same += agreement(a, b, encoder.embed).agrees
        different += agreement(a, c, encoder.embed).agrees
    print(f"loopback teacher answers, {args.n} pairs each: same key agree {same / args.n:.3f}, "
          f"different keys agree {different / args.n:.3f}")
    for a, b in QUOTED:
        vectors = encoder.embed([a, b])
        print(f"cosine {float(vectors[0] @ vectors[1]):.3f}  {a!r} / {b!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
