"""The offline curriculum: task families whose questions have exact, checkable answers.

Six families: `arithmetic` and `unit_conversion` (answered by the template tier's own solver, so
both give identical text), `words`, `calendar`, `capitals` and `programming`. The offline teacher
answers from them, `analyze_model` evaluates on their held-out sets, the tokenizer's first corpus
comes from them, and the learning benchmarks draw their streams from them. Data tables live with
their family (`capitals.py`, `programming.py`, …); `base.py` holds what a family is made of.
"""

from shammah_tui.curriculum.base import CurriculumItem, Family, Question, Solution, loose, phrase
from shammah_tui.curriculum.capitals import CAPITALS
from shammah_tui.curriculum.dates import FEBRUARY_DAYS, MONTHS, WEEKDAYS, is_leap_year
from shammah_tui.curriculum.programming import IDIOMS
from shammah_tui.curriculum.registry import FAMILIES, plain_name, solve
from shammah_tui.curriculum.sampling import corpus_texts, held_out_items, sample_items, stream
from shammah_tui.curriculum.words import WORDS

__all__ = [
    "CAPITALS", "FAMILIES", "FEBRUARY_DAYS", "IDIOMS", "MONTHS", "WEEKDAYS", "WORDS", "CurriculumItem",
    "Family", "Question", "Solution", "corpus_texts", "held_out_items", "is_leap_year", "loose", "phrase",
    "plain_name",
    "sample_items", "solve", "stream",
]
