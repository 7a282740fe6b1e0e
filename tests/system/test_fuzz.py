"""Bad input, fuzzed: queries, tool inputs, settings files and batch files.

Queries go through one in-process Engine with the offline teacher (models untrained: what is
tested is that nothing raises and nothing unsafe is stored or shown). The heavy cases (a 1 MB
paste) go through `clean_query` directly.
"""

from __future__ import annotations

import asyncio
import io
import json
import math
import re
import sqlite3
import time
from argparse import Namespace
from contextlib import closing, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from shammah_tui.core.ask import AskPolicy, Question
from shammah_tui import cli
from shammah_tui.engine import Engine
from shammah_tui.core.sanitize import MAX_QUERY_CHARS, QueryRejected, clean_query
from shammah_tui.settings import Settings, SettingsError, load_settings
from shammah_tui.teachers.offline import OfflineTeacher
from shammah_tui.core.tool_calls import ToolResult
from shammah_tui.tools.base import ToolInputError, validate

#: What must never reach a terminal or the store: C0 controls but tab and newline, DEL, C1
#: controls (0x9b is a one-byte CSI), and lone surrogates (not encodable as UTF-8).
UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")

FUZZ = settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                      HealthCheck.too_slow, HealthCheck.data_too_large])


@dataclass
class Rig:
    loop: asyncio.AbstractEventLoop
    engine: Engine
    data: Path

    def run(self, coro):
        return self.loop.run_until_complete(coro)


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    """One engine for every example (offline teacher, training off)."""
    data = tmp_path_factory.mktemp("fuzz") / "data"
    data.mkdir(mode=0o700)
    (data / "settings.toml").write_text('teacher = "offline"\nbatch_size = 8\nsteps_per_run = 1\n'
                                        "auto_train = false\n")
    loop = asyncio.new_event_loop()
    engine = loop.run_until_complete(Engine.open(data, load_settings(data), OfflineTeacher(seed=0)))
    loop.run_until_complete(engine.load_models())
    yield Rig(loop, engine, data)
    loop.run_until_complete(engine.close())
    loop.close()


# ------------------------------------------------------------------------- strategies

ANY_CHAR = st.characters(exclude_categories=())  # every code point: controls, surrogates, astral
CSI = st.builds(lambda p, f: "\x1b[" + p + f, st.text("0123456789;:?<=>", max_size=10),
                st.sampled_from("mHJKABCDsuhlnq@`~"))
OSC = st.builds(lambda b, end: "\x1b]" + b + end,
                st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=30),
                st.sampled_from(["\x07", "\x1b\\", "", "\x9c"]))
SNIPPETS = st.sampled_from([
    "\x07", "\x1b", "\x1bc", "\x1b(B", "\x1b7", "\x1bP1$r\x1b\\", "\x9b31m", "\x9d0;t\x9c", "\x00", "\r", "\x08",
    "\x7f", "\x85", "\u202e", "\u202d", "\u200f", "\u200b", "\u200d", "\ufeff", "\u0301\u0301\u0301", "\u2028",
    "\ud800", "\udfff", "\U0001f600", "\U0001f469\u200d\U0001f4bb", "\ufffd", "\x1b]52;c;aGVsbG8=\x07",
    "\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\", "\x1b[2J\x1b[H", "\x1b[6n", "\x1b[?1049h",
])
WORDS = st.sampled_from(["What is 2+2?", "Capital of France?", "hello", "Convert 5 km to miles.", " ", "\n",
                         "\t", "What is the capital of Peru?", "Uppercase the word 'velvet'.", "?"])
QUERY = st.lists(st.one_of(CSI, OSC, SNIPPETS, WORDS, st.text(ANY_CHAR, max_size=30)), max_size=12).map("".join)


def count_rows(rig: Rig, table: str) -> int:
    with closing(sqlite3.connect(rig.data / "shammah.db", timeout=30)) as conn:
        return conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]


def assert_safe(text: str | None, what: str) -> None:
    if text is not None:
        found = UNSAFE.search(text)
        assert found is None, f"{what} holds {found.group()!r}: {text[:200]!r}"


# ---------------------------------------------------------------------------- queries


async def _ask_and_check(rig: Rig, raw: str) -> None:
    engine = rig.engine
    before = count_rows(rig, "query_log")
    result = await engine.ask(Question(raw), AskPolicy(auto_train="off"))
    for what in ("query", "answer", "teacher_answer", "error"):
        assert_safe(getattr(result, what), what)
    try:
        cleaned = clean_query(raw)
    except QueryRejected:
        cleaned = None
    if cleaned is None:
        assert result.error and result.answer is None
        assert count_rows(rig, "query_log") == before, "a rejected query changes nothing"
        return
    assert count_rows(rig, "query_log") == before + 1
    row = (await engine.store.queries(limit=1))[-1]
    assert row.id == result.query_id and row.query == cleaned == result.query
    assert_safe(row.query, "stored query")
    assert_safe(row.answer, "stored answer")
    assert (result.answer is None) == (result.error is not None)


@FUZZ
@given(raw=QUERY)
def test_fuzzed_queries_never_raise_and_no_escape_survives(rig, raw):
    rig.run(_ask_and_check(rig, raw))


@FUZZ
@given(raw=QUERY)
def test_fuzzed_queries_through_local_only(rig, raw):
    try:
        cleaned = clean_query(raw)
    except QueryRejected:
        with pytest.raises(QueryRejected):
            rig.run(rig.engine.teaching.local_only(raw))
        return
    decision = rig.run(rig.engine.teaching.local_only(raw))
    assert_safe(decision.answer, "local answer")
    assert cleaned


EDGE_QUERIES = {
    "empty": ("", "empty"), "whitespace": ("   \n\t  ", "empty"),
    "only-escapes": ("\x1b[31m\x07\x1b]0;t\x07", "empty"),
    "zero-width": ("\u200b", None), "1MB": ("x" * 1_000_000, "limit"), "1MB-escapes": ("\x1b[31m" * 200_000, "limit"),
    "combining": ("\u0301" * (MAX_QUERY_CHARS + 1), "limit"),
    "escapes-then-question": ("\x1b[0m" * 1000 + "What is 2+2?", "4"),
    "osc52-clear-screen": ("What is 2+2?\x1b]52;c;ZXZpbA==\x07\x1b[2J", "4"), "c1-csi": ("\x9b31mWhat is 2+2?", "4"),
    "surrogates": ("\ud800What is 2+2?\udfff", None), "rtl-override": ("\u202eWhat is 2+2?", None),
}


@pytest.mark.parametrize("raw, expect", list(EDGE_QUERIES.values()), ids=list(EDGE_QUERIES))
def test_edge_queries(rig, raw, expect):
    t0 = time.perf_counter()
    result = rig.run(rig.engine.ask(Question(raw), AskPolicy(auto_train="off")))
    assert time.perf_counter() - t0 < 20  # a guard against a hang, not a speed test
    for what in ("query", "answer", "error"):
        assert_safe(getattr(result, what), what)
    if expect in ("empty", "limit"):
        assert result.error and expect in result.error and result.query_id is None
        assert len(result.query or "") <= 200
    elif expect is not None:
        assert result.answer == expect, result


HEAVY = st.builds(lambda piece, n, tail: piece * n + tail,
                  st.one_of(CSI, OSC, SNIPPETS, st.text(ANY_CHAR, min_size=1, max_size=4)),
                  st.integers(1, 60_000), st.text(ANY_CHAR, max_size=20))


@settings(deadline=None, max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow, HealthCheck.data_too_large])
@given(raw=HEAVY)
def test_heavy_pastes_are_cleaned_or_refused_quickly(raw):
    t0 = time.perf_counter()
    try:
        text = clean_query(raw)
    except QueryRejected as exc:
        assert "empty" in str(exc) or "limit" in str(exc)
    else:
        assert 0 < len(text) <= MAX_QUERY_CHARS and text == text.strip()
        assert_safe(text, "cleaned query")
    assert time.perf_counter() - t0 < 10  # a guard against a hang, not a speed test


# ------------------------------------------------------------------------- tool inputs

TEXT = st.text(ANY_CHAR, max_size=40)
JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | TEXT,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(TEXT, children, max_size=4),
    max_leaves=12,
)
TOOL_FIELDS = {
    "query_local_model": ["query"],
    "generate_training_data": ["examples", "topic"],
    "train": ["wait"],
    "compare_responses": ["query", "teacher_answer"],
    "analyze_model": ["categories", "samples_per_category"],
}
EXAMPLE_ITEM = st.dictionaries(st.sampled_from(["query", "answer", "extra"]), st.one_of(TEXT, QUERY, JSONISH),
                               max_size=3)


def tool_input(name: str) -> st.SearchStrategy[Any]:
    """Anything at all, JSON text, and objects with the tool's own fields holding wrong things."""
    field_value = st.one_of(JSONISH, QUERY, st.lists(EXAMPLE_ITEM, max_size=5),
                            st.lists(st.sampled_from(["arithmetic", "capitals", "nope", ""]), max_size=4),
                            st.integers(-5, 80), st.booleans(),
                            st.builds(lambda c, n: c * n, st.sampled_from(["x", "é", "\U0001f600"]),
                                      st.integers(8100, 9000)))
    keyed = st.dictionaries(st.sampled_from(TOOL_FIELDS[name] + ["bogus"]), field_value, max_size=3)
    return st.one_of(JSONISH, keyed, keyed.map(lambda d: json.dumps(d, default=str)), TEXT,
                     st.just("{" * 5000), st.just("[" * 100_000 + "]" * 100_000))


def _expected_invalid(name: str, spec_schema: dict, value: Any) -> bool:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            return True
    try:
        validate(value, spec_schema)
    except ToolInputError:
        return True
    except RecursionError:
        return True
    return False


@pytest.mark.parametrize("name", list(TOOL_FIELDS))
def test_fuzzed_tool_inputs_never_raise(rig, name):
    engine = rig.engine
    registry = engine.tool_registry()
    schema = next(s["input_schema"] for s in registry.schemas() if s["name"] == name)

    async def no_training(trigger: str = "tool"):  # the train tool's validation is fuzzed, not a run
        return None

    @settings(FUZZ, max_examples=60)
    @given(value=tool_input(name))
    def check(value):
        count = count_rows(rig, "tool_calls")
        result = rig.run(registry.call(name, value))
        assert isinstance(result, ToolResult) and isinstance(result.text, str) and result.text
        if _expected_invalid(name, schema, value):
            assert result.is_error, (value, result.text)
        assert count_rows(rig, "tool_calls") == count + 1, "every call is recorded"

    engine.train, engine.start_training = no_training, lambda trigger="tool": None
    try:
        check()
    finally:
        del engine.train, engine.start_training


def _deep(depth: int) -> list:
    root = node = []
    for _ in range(depth):
        node.append([])
        node = node[0]
    return root


TOOL_EDGES = {
    "huge-int": ("analyze_model", {"samples_per_category": 10**5000}),
    "huge-int-anywhere": ("query_local_model", {"query": "hi", "n": 10**5000}),
    "deep-list": ("generate_training_data", {"examples": _deep(5000)}),
    "deep-json-text": ("query_local_model", '{"query": ' + "[" * 100_000 + "]" * 100_000 + "}"),
    "surrogate-field": ("query_local_model", {"q\udc00": 1}),
    "surrogate-query": ("compare_responses", {"query": "What is 2+2?\ud800", "teacher_answer": "4\udfff"}),
    "surrogate-pairs": ("generate_training_data", {"examples": [{"query": "x\ud800y?", "answer": "z\udfff"}]}),
    "surrogate-tool-name": ("bogus\ud800", {}),
    "escape-query": ("query_local_model", {"query": "\x1b]52;c;aGk=\x07What is 2+2?"}),
    "too-big": ("generate_training_data", {"examples": [{"query": "q" * 8000, "answer": "a" * 8000}] * 40}),
    "nan": ("analyze_model", {"samples_per_category": float("nan")}),
    "not-an-object": ("train", [True]),
}


@pytest.mark.parametrize("name, value", list(TOOL_EDGES.values()), ids=list(TOOL_EDGES))
def test_tool_input_edge_cases(rig, name, value):
    registry = rig.engine.tool_registry()
    before = count_rows(rig, "tool_calls")
    result = rig.run(registry.call(name, value))
    assert isinstance(result, ToolResult) and result.text
    if name in ("query_local_model",) and value == TOOL_EDGES["escape-query"][1]:
        assert not result.is_error and "4" in result.text and "\x1b" not in result.text
    elif name in ("compare_responses",) or value is TOOL_EDGES["surrogate-pairs"][1]:
        assert not result.is_error, result.text
    else:
        assert result.is_error, result.text
    assert count_rows(rig, "tool_calls") == before + 1, "recorded, whatever the input"
    rig.run(rig.engine.store.tool_calls())  # and the log reads back


# -------------------------------------------------------------------------- settings

KNOWN_KEYS = list(Settings.__dataclass_fields__)


def toml_value(depth: int = 0) -> st.SearchStrategy[str]:
    scalars = st.one_of(
        st.integers().map(str), st.integers(min_value=2**63, max_value=2**70).map(str),
        st.floats(allow_nan=False, allow_infinity=False).map(repr), st.sampled_from(["nan", "inf", "-inf", "-0.0"]),
        st.booleans().map(lambda b: "true" if b else "false"),
        st.text(ANY_CHAR.filter(lambda c: not 0xD800 <= ord(c) <= 0xDFFF), max_size=20).map(json.dumps),
        st.sampled_from(['"auto"', '"cuda"', '"neural,learned"', "1979-05-27T07:32:00Z", "07:32:00", '""']),
    )
    if depth >= 2:
        return scalars
    inner = toml_value(depth + 1)
    return st.one_of(scalars, st.lists(inner, max_size=3).map(lambda xs: "[" + ", ".join(xs) + "]"),
                     st.dictionaries(st.sampled_from(["a", "b", "name"]), inner, max_size=2).map(
                         lambda d: "{" + ", ".join(f"{k} = {v}" for k, v in d.items()) + "}"))


SETTINGS_DOC = st.one_of(
    st.lists(st.tuples(st.one_of(st.sampled_from(KNOWN_KEYS), st.from_regex(r"[a-z_]{1,12}", fullmatch=True)),
                       toml_value()), max_size=6).map(lambda kv: "".join(f"{k} = {v}\n" for k, v in kv)),
    st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
    st.text(ANY_CHAR.filter(lambda c: not 0xD800 <= ord(c) <= 0xDFFF), max_size=200),
)


@FUZZ
@given(doc=SETTINGS_DOC, teacher_env=st.one_of(st.none(), TEXT.filter(lambda s: "\x00" not in s)))
def test_fuzzed_settings_load_or_say_why(tmp_path, doc, teacher_env):
    data = tmp_path / "settings-fuzz"
    data.mkdir(exist_ok=True)
    (data / "settings.toml").write_bytes(doc.encode("utf-8", "surrogateescape"))
    environ = {} if teacher_env is None else {"SHAMMAH_TEACHER": teacher_env}
    try:
        loaded = load_settings(data, environ=environ)
    except SettingsError as exc:  # says where: the file (and key) or the environment
        assert str(exc).startswith((str(data / "settings.toml"), "environment")), str(exc)
    else:
        loaded.validate()
        assert not math.isnan(loaded.learning_rate)


# ------------------------------------------------------------------------- batch files

GOOD_LINE = st.one_of(WORDS.filter(lambda w: w.strip()), st.sampled_from(["Capital of Kenya?", "What is 7*6?"]))
BAD_LINE = st.one_of(
    st.just(b'{"query": '), st.just(b"{not json}"), st.just(b'{"question": "What is 2+2?"}'),
    st.just(b'{"query": 5}'), st.just(b'{"query": null}'), st.just(b'{"query": ["a"]}'),
    st.just(b"{" + b'"a":[' * 3000 + b"]" * 3000 + b"}"), st.just(b'{"query": "x", "n": ' + b"9" * 5000 + b"}"),
    st.just(b'{"query": "\\ud800 What is 2+2?"}'), st.just(b'{"query": "\\u001b[31mWhat is 2+2?"}'),
    st.binary(min_size=1, max_size=60).filter(lambda b: b"\n" not in b and b"\r" not in b),
)
BLANK_LINE = st.sampled_from([b"", b"   ", b"\t"])
BATCH_LINE = st.one_of(GOOD_LINE.map(lambda s: ("good", s.encode())),
                       GOOD_LINE.map(lambda s: ("good", json.dumps({"query": s}).encode())),
                       BAD_LINE.map(lambda b: ("bad", b)), BLANK_LINE.map(lambda b: ("blank", b)))


@settings(deadline=None, max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow, HealthCheck.data_too_large])
@given(lines=st.lists(BATCH_LINE, min_size=1, max_size=10))
def test_fuzzed_batch_files_one_line_out_per_line_in_order(rig, tmp_path, lines):
    path = tmp_path / "batch-fuzz.jsonl"
    path.write_bytes(b"\n".join(raw for _, raw in lines) + b"\n")
    out = io.StringIO()
    with redirect_stdout(out):
        code = rig.run(cli._batch(rig.engine, Namespace(file=str(path), json=True, train_every=None)))
    results = [json.loads(line) for line in out.getvalue().splitlines()]
    assert code == (1 if any(r["error"] for r in results) else 0)
    # What `_batch_lines` reads: text lines, undecodable bytes replaced, blank ones skipped.
    expected = [(n, raw) for n, (_, raw) in enumerate(lines, start=1)
                if raw.decode("utf-8", "replace").strip()]
    assert len(results) == len(expected), (results, lines)
    for result, (number, raw) in zip(results, expected):
        for what in ("query", "answer", "error"):
            assert_safe(result[what], what)
        text = raw.decode("utf-8", "replace")
        if text.lstrip().startswith("{"):
            try:
                obj = json.loads(text)
                query = obj.get("query") if isinstance(obj, dict) else None
            except (ValueError, RecursionError):
                query = None
            if not isinstance(query, str):
                assert result["query"] is None and result["error"].startswith(f"line {number}:"), result
                continue
        else:
            query = text
        try:
            assert result["query"] == clean_query(query), "in input order"
        except QueryRejected:
            assert result["error"] and result["answer"] is None


def test_batch_cli_with_junk_lines_goes_on_and_exits_1(tmp_path):
    """The real CLI over a file of bad lines between good ones: an error line for each bad one,
    answers for the rest, in input order, exit 1 (not every line was answered)."""
    import subprocess
    import sys

    data = tmp_path / "data"
    data.mkdir()
    (data / "settings.toml").write_text('teacher = "offline"\nauto_train = false\n')
    lines = [b"What is 2+2?", b'{"query": ', b"\xff\xfe\x00\x1b[31m junk \x80", b"", b'{"query": 7}',
             b'{"nope": "x"}', b"{" + b"[" * 5000 + b"}", b'{"query": "Capital of France?"}',
             b"\x1b]52;c;ZXZpbA==\x07What is 3+4?"]
    path = tmp_path / "junk.txt"
    path.write_bytes(b"\n".join(lines))
    out = subprocess.run([sys.executable, "-m", "shammah_tui", "batch", str(path), "--json", "--data-dir",
                          str(data)], capture_output=True, timeout=180)
    assert out.returncode == 1, out.stderr  # the stream went on; the exit code says not every line was answered
    assert b"Traceback" not in out.stderr
    results = [json.loads(line) for line in out.stdout.decode().splitlines()]
    assert [r["answer"] for r in results][:1] == ["4"]
    assert [bool(r["error"]) for r in results] == [False, True, True, True, True, True, False, False]
    assert results[1]["error"].startswith("line 2:") and results[5]["error"].startswith("line 7:")
    assert [r["line"] for r in results] == [1, 2, 3, 5, 6, 7, 8, 9]
    assert results[6]["answer"] == "Paris" and results[7]["answer"] == "7"
    assert "\x1b" not in out.stdout.decode() and "\\u001b" not in out.stdout.decode()
