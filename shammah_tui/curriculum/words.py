"""words: letter counts, reversals, upper case, first and last letters, vowels of common words."""

from __future__ import annotations

from collections.abc import Callable

from shammah_tui.curriculum.base import QuestionKind, TemplatedFamily

WORDS: tuple[str, ...] = tuple("""
    apple banana orange grape lemon cherry peach melon mango garden window table chair pencil
    paper rocket planet comet galaxy ocean river mountain valley forest desert island castle
    bridge tower village market doctor farmer artist pilot sailor guitar piano violin trumpet
    drum silver golden purple yellow green black white happy quiet gentle brave clever simple
    strong bright coffee butter cookie bread cheese pizza pasta salad tomato potato carrot onion
    pepper honey sugar winter summer autumn morning evening sunset thunder rainbow cloud storm
    breeze flower tulip daisy tiger lion zebra giraffe monkey rabbit turtle dolphin eagle falcon
    parrot penguin kitten puppy horse camel donkey spider beetle butterfly jacket sweater pocket
    button ribbon candle lantern mirror basket bottle kettle ladder hammer wrench engine wagon
    bicycle airplane harbor anchor compass treasure pirate knight dragon wizard giant puzzle
    riddle secret shadow journey alphabet school library museum kitchen blanket pillow carpet
    marble crystal diamond emerald copper velvet cotton orchestra keyboard laptop printer camera
    umbrella volcano glacier meadow
""".split())
#: "y" is not counted: the answer must not depend on how a word is pronounced.
_VOWELS = frozenset("aeiou")

_WORD_SLOT = {"word": "[a-z]{1,40}"}


def _word_kind(name: str, templates: tuple[str, ...], answer: Callable[[str], str]) -> QuestionKind:
    def resolve(slots: dict[str, str]) -> tuple[str, str] | None:
        word = slots["word"]
        return f"{name}:{word}", answer(word)

    return QuestionKind(name, templates, _WORD_SLOT, lambda: [{"word": w} for w in WORDS], resolve)


def words_family() -> TemplatedFamily:
    return TemplatedFamily("words", [
        _word_kind("letters", (
            "How many letters are in the word '{word}'?", "How many letters does '{word}' have?",
            "Count the letters in \"{word}\".", "What is the length of the word '{word}'?"),
            lambda w: str(len(w))),
        _word_kind("reverse", (
            "Reverse the word '{word}'.", "What is '{word}' spelled backwards?",
            "What is \"{word}\" reversed?", "Write '{word}' backwards."),
            lambda w: w[::-1]),
        _word_kind("uppercase", (
            "What is '{word}' in uppercase?", "Write '{word}' in capital letters.",
            "Convert \"{word}\" to uppercase.", "Uppercase the word '{word}'."),
            lambda w: w.upper()),
        _word_kind("first_letter", (
            "What is the first letter of '{word}'?", "Which letter does '{word}' start with?",
            "What letter does the word \"{word}\" begin with?"),
            lambda w: w[0]),
        _word_kind("last_letter", (
            "What is the last letter of '{word}'?", "Which letter does '{word}' end with?",
            "What letter does the word \"{word}\" end with?"),
            lambda w: w[-1]),
        _word_kind("vowels", (
            "How many vowels are in '{word}'?", "Count the vowels in the word \"{word}\".",
            "How many vowels does the word '{word}' have?"),
            lambda w: str(sum(ch in _VOWELS for ch in w))),
    ])
