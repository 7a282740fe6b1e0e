"""The built-in offline teacher: exact answers from the curriculum, a scripted teaching policy.

It needs no key and no network, so a fresh machine shows the whole experience.
As a teacher it answers any query of its task families exactly and says clearly
that anything else needs Claude. As an active teacher it drives the same tools
Claude would, with a fixed policy per round: analyze → generate training data (fresh skill
instances, more of what the generator gets wrong on the skills' held-out sets; and the weakest
family's questions with their other phrasings) → train (wait) → probe with query_local_model and
compare_responses.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Sequence

from shammah_tui import curriculum
from shammah_tui.curriculum.skills import SKILLS, SkillInstance
from shammah_tui.formatting import join_words
from shammah_tui.pipeline.templates import template_answer
from shammah_tui.core.text import normalize_query
from shammah_tui.core.teaching import TeachSummary, TeacherError, TeacherReply, TextCallback, Turn
from shammah_tui.teachers.base import Teacher, TeachRequest
from shammah_tui.tools.base import ToolRegistry
from shammah_tui.tools.limits import MAX_EXAMPLES

#: Family pairs written per round (distinct questions). Three rounds on a fresh data dir moved the
#: held-out mean accuracy from 33.3% to 37.5% with 48 pairs, to 52.1% with 120.
PAIRS_PER_ROUND = 120
#: Skill instances written per round (in tool calls of MAX_EXAMPLES): the skills study's recipe
#: (docs/skills-study.md) teaches 2,000 fresh instances a round.
SKILL_EXAMPLES_PER_ROUND = 2000
#: The first round's share per skill, before any measurement (arithmetic is the hardest).
FIRST_ROUND_WEIGHTS = {"arithmetic": 3.0, "words": 1.5, "leap": 0.5}
#: Every group keeps a little of the mix, learned or not (so it is not forgotten).
MIX_FLOOR = 0.02
#: Other phrasings sent with a family question (they become positive pairs).
PARAPHRASES = 3
#: Held-out samples per category in each analysis.
ANALYZE_SAMPLES = 8
#: Accuracy at which a family counts as learned; it is taught again only when nothing else is weak.
MASTERED = 0.95


class OfflineTeacher(Teacher):
    """Answers from `curriculum`; teaches through the tool registry with a scripted policy."""

    kind = "offline"

    def __init__(self, seed: int = 0, chunk_delay_s: float = 0.0) -> None:
        self._rng = random.Random(seed)
        self._seed = seed
        self._chunk_delay_s = chunk_delay_s

    @property
    def label(self) -> str:
        return "offline curriculum"

    async def answer(self, query: str, history: Sequence[Turn] = (),
                     on_text: TextCallback | None = None) -> TeacherReply:
        solution = curriculum.solve(query)
        text = solution.answer if solution is not None else None
        if text is None:
            found = template_answer(query)
            text = found.answer if found is not None else None
        if text is None:
            raise TeacherError("unavailable", refusal(query))
        if on_text is not None:
            for piece in _chunks(text):
                on_text(piece)
                if self._chunk_delay_s:
                    await asyncio.sleep(self._chunk_delay_s)
        return TeacherReply(text)

    async def teach(self, tools: ToolRegistry, request: TeachRequest,
                    on_text: TextCallback | None = None) -> TeachSummary:
        """Each round, one turn each: analyze; teach the skills (more of the groups the generator
        gets wrong) and the weakest family; train; probe. A last analysis closes the session."""
        summary = TeachSummary()

        def say(text: str) -> None:
            if on_text is not None:
                on_text(text + "\n")

        def turn() -> None:
            if summary.iterations >= request.max_iterations:
                raise _LimitReached
            summary.iterations += 1

        async def call(name: str, data: dict) -> dict:
            summary.tool_calls += 1
            return (await tools.call(name, data)).data

        families, skills = _chosen(request.topic, say)
        taught: dict[str, int] = {}
        try:
            for round_no in range(1, request.rounds + 1):
                turn()
                analysis = await call("analyze_model", {"categories": families,
                                                        "samples_per_category": ANALYZE_SAMPLES,
                                                        "skills": bool(skills)})
                target = _weakest(analysis, families, taught)
                taught[target] = taught.get(target, 0) + 1
                turn()
                mix = _skill_mix(analysis.get("skills", {}), skills)
                accuracy = analysis.get("categories", {}).get(target, {}).get("accuracy", 0.0)
                say(round_line(round_no, skills, mix, target, accuracy))
                for part, batch in enumerate(_skill_batches(mix, SKILL_EXAMPLES_PER_ROUND,
                                                            f"{self._seed}:{round_no}")):
                    await call("generate_training_data", {
                        "examples": [{"query": i.query, "answer": i.answer} for i in batch],
                        "topic": f"skills, part {part + 1}"})
                items = _distinct_items(PAIRS_PER_ROUND, self._seed * 1000 + round_no, target)
                await call("generate_training_data", {"examples": [_with_paraphrases(i) for i in items],
                                                      "topic": target})
                turn()
                await call("train", {"wait": True})
                turn()
                probes = curriculum.sample_items(3, self._seed * 1000 + 500 + round_no, families=[target])
                for item in probes[:2]:
                    await call("query_local_model", {"query": item.query})
                await call("compare_responses", {"query": probes[-1].query, "teacher_answer": probes[-1].answer})
            turn()
            final = await call("analyze_model", {"categories": families, "samples_per_category": ANALYZE_SAMPLES,
                                                 "skills": bool(skills)})
            held = "; ".join(f"{SKILL_NAMES.get(name, name)} {v['accuracy']:.1%}"
                             for name, v in final.get("skills", {}).items())
            summary.final_text = (f"Mean accuracy now {final.get('mean_accuracy', 0.0):.1%}."
                                  + (f" Held-out skills: {held}." if held else ""))
            summary.stopped_because = "done"
        except _LimitReached:
            summary.stopped_because = "iteration_limit"
        say(summary.final_text or f"Stopped: {summary.stopped_because}.")
        return summary


def _chosen(topic: str | None, say: Callable[[str], None]) -> tuple[list[str], list[str]]:
    """(families, skills) a session teaches: all, or those a topic names."""
    families, skills = list(curriculum.FAMILIES), list(SKILLS)
    if not topic:
        return families, skills
    wanted_skills = [s for s in skills if topic.lower() in s.lower()]
    wanted = [f for f in families if topic.lower() in f.lower()]
    if not wanted and not wanted_skills:
        say(f"No curriculum family or skill matches {topic!r}; teaching all of them.")
        return families, skills
    return wanted or families, wanted_skills


def _weakest(analysis: dict, families: list[str], taught: dict[str, int]) -> str:
    """The family to teach: the weakest by the analysis, among those taught least this session
    (a family the models cannot learn from a batch must not take every round); mastered last."""
    per = analysis.get("categories", {})

    def need(f: str) -> tuple:
        accuracy = per.get(f, {}).get("accuracy", 0.0)
        return accuracy >= MASTERED, taught.get(f, 0), accuracy, families.index(f)

    return min(families, key=need)


def _skill_mix(report: dict, skills: list[str]) -> list[tuple[str, str, float]]:
    """(skill, group, weight) cells: before any measurement the skills' first-round weights spread over
    their groups, then each group by its held-out error (what the generator gets wrong gets more)."""
    cells = []
    for name in skills:
        skill = SKILLS[name]
        groups = report.get(name, {}).get("groups", {})
        for group in skill.groups:
            if groups:
                weight = 1.0 - groups.get(group, 0.0) + MIX_FLOOR
            else:
                weight = FIRST_ROUND_WEIGHTS.get(name, 1.0) / len(skill.groups)
            cells.append((name, group, weight))
    return cells


def _skill_batches(mix: list[tuple[str, str, float]], n: int, seed: str) -> list[list[SkillInstance]]:
    """`n` fresh skill instances (never a held-out question) drawn by the mix, in tool-sized batches."""
    if not mix:
        return []
    total = sum(w for _, _, w in mix)
    items: list[SkillInstance] = []
    for name, group, weight in mix:
        count = round(n * weight / total)
        items += SKILLS[name].training(count, f"{seed}:{group}", groups=[group])
    random.Random(seed).shuffle(items)
    return [items[i:i + MAX_EXAMPLES] for i in range(0, len(items), MAX_EXAMPLES)]


#: Each skill as a person would name it.
SKILL_NAMES = {"arithmetic": "arithmetic", "words": "word operations", "leap": "leap years"}


def round_line(round_no: int, skills: Sequence[str], mix: list[tuple[str, str, float]], family: str,
               accuracy: float) -> str:
    """What a round teaches, in a sentence: the skills (and the groups most of it goes to), and
    the family with its accuracy before the round."""
    taught = f"{curriculum.plain_name(family, short=True)} ({accuracy:.0%} accuracy so far)"
    if not skills:
        return f"Round {round_no}: teaching {taught}."
    names = join_words(SKILL_NAMES.get(s, s) for s in skills)
    focus = _describe(mix)
    return (f"Round {round_no}: teaching the skill{'s' if len(skills) > 1 else ''} {names}"
            + (f" (most of all {focus})" if focus else "") + f", and {taught}.")


def _describe(mix: list[tuple[str, str, float]]) -> str:
    """The heaviest cells of the mix, each skill named once: `arithmetic * and -, word operations
    reverse`; empty when those are all the cells there are (nothing is singled out)."""
    top = sorted(mix, key=lambda cell: -cell[2])[:3]
    if len(top) == len(mix):
        return ""
    groups: dict[str, list[str]] = {}
    for name, group, _ in top:
        groups.setdefault(name, [])
        if group != name:
            groups[name].append(group)
    return join_words(f"{SKILL_NAMES.get(name, name)} {join_words(g)}".strip() for name, g in groups.items())


def refusal(query: str) -> str:
    """Why the offline teacher cannot answer `query`, and what it can answer, in plain words."""
    from shammah_tui.curriculum.capitals import unknown_country

    known = join_words(curriculum.plain_name(f) for f in curriculum.FAMILIES)
    country = unknown_country(query)
    lead = (f"The offline teacher does not know the capital of {country}. "
            if country else "The offline teacher cannot answer that. ")
    return (f"{lead}Offline it answers only {known}. "
            "For anything else, set ANTHROPIC_API_KEY and use --teacher claude.")


def _with_paraphrases(item: curriculum.CurriculumItem) -> dict:
    """A family question as the teacher writes it: the question, its answer, and other phrasings
    of the same question (they become positive pairs for the semantic store)."""
    others = [q for q in _phrasings(item) if normalize_query(q) != normalize_query(item.query)][:PARAPHRASES]
    return {"query": item.query, "answer": item.answer, **({"paraphrases": others} if others else {})}


def _phrasings(item: curriculum.CurriculumItem) -> list[str]:
    family = curriculum.FAMILIES[item.family]
    questions = family.questions()
    if questions is None:
        return []
    return next((list(q.phrasings) for q in questions if q.key == item.key), [])


class _LimitReached(Exception):
    pass


def _distinct_items(n: int, seed: int, family: str) -> list[curriculum.CurriculumItem]:
    """Up to `n` items of `family`, no two the same question once normalized (the tool would
    reject the repeats as duplicates)."""
    items: list[curriculum.CurriculumItem] = []
    seen: set[str] = set()
    batch = 0
    while len(items) < n and batch < 8:
        for item in curriculum.sample_items(n, seed * 16 + batch, families=[family]):
            norm = normalize_query(item.query)
            if norm not in seen and len(items) < n:
                seen.add(norm)
                items.append(item)
        batch += 1
    return items


def _chunks(text: str, size: int = 12) -> list[str]:
    """Pieces of the answer, as a streaming teacher would send them."""
    return [text[i:i + size] for i in range(0, len(text), size)] or [""]
