"""Command line: parse, then call the core. Exit codes: 0 ok, 1 runtime failure, 2 bad usage or settings."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

from shammah_tui.core.ask import AskPolicy, Question
from shammah_tui import __version__
from shammah_tui.engine.open import EXIT_FAILURE, EXIT_USAGE, EngineOpenError, engine_settings, open_engine
from shammah_tui.paths import resolve_data_dir
from shammah_tui.core.kinds import TEACHERS
from shammah_tui.serve import DEFAULT_HOST, DEFAULT_PORT
from shammah_tui.settings import Settings

EXIT_OK = 0


class UsageError(Exception):
    """Bad usage: exit code 2 with the message."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2, like the rest of the CLI
        raise UsageError(f"{self.prog}: {message}")


def _global_options(default: object) -> _Parser:
    options = _Parser(add_help=False)
    options.add_argument("--data-dir", default=default,
                         help="data directory (default: $SHAMMAH_HOME, else the user data dir)")
    options.add_argument("--teacher", choices=TEACHERS, default=default, help="who answers forwarded queries")
    return options


def build_parser() -> argparse.ArgumentParser:
    # A subcommand's copy of the options must not write its default over a value given before the
    # subcommand (`--data-dir X ask ...`): there the default is to leave the attribute alone.
    common = _global_options(argparse.SUPPRESS)
    parser = _Parser(prog="shammah-tui", parents=[_global_options(None)],
                     description="A local-first assistant that learns from Claude. With no command, opens the TUI.")
    parser.add_argument("--version", action="version", version=f"shammah-tui {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)

    serve_flag = _Parser(add_help=False)
    serve_flag.add_argument("--serve", nargs="?", type=_port, const=8765, metavar="PORT", default=argparse.SUPPRESS,
                            help="also serve the Messages API on 127.0.0.1 (default port 8765): the panes "
                                 "show its traffic learn")
    serve_flag.add_argument("--continue", dest="resume_last", action="store_true", default=argparse.SUPPRESS,
                            help="reopen the last conversation")
    parser.add_argument("--serve", nargs="?", type=_port, const=8765, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--continue", dest="resume_last", action="store_true", help=argparse.SUPPRESS)
    sub.add_parser("tui", parents=[common, serve_flag], help="open the terminal UI (the default)")
    ask = sub.add_parser("ask", parents=[common], help="answer one query through the pipeline")
    ask.add_argument("query", help="the question ('-' reads it from stdin)")
    ask.add_argument("--json", action="store_true", help="print one JSON object")
    batch = sub.add_parser("batch", parents=[common], help="answer a stream of queries from a file ('-' = stdin)")
    batch.add_argument("file")
    batch.add_argument("--json", action="store_true", help="one JSON object per query, in input order")
    batch.add_argument("--train-every", type=_positive, metavar="N", help="train after every N queries")
    teach = sub.add_parser("teach", parents=[common], help="headless active teaching; tool calls are printed")
    teach.add_argument("--rounds", type=_positive, default=1)
    teach.add_argument("--topic")
    train = sub.add_parser("train", parents=[common], help="train on the queue now")
    train.add_argument("--wait", action="store_true",
                       help="train in this process and print the losses (default: start a background run)")
    stats = sub.add_parser("stats", parents=[common], help="rates, losses, store and queue sizes")
    stats.add_argument("--json", action="store_true")
    bench = sub.add_parser("bench", parents=[common], help="the performance suite on this machine")
    bench.add_argument("--json", action="store_true")
    bench.add_argument("--quick", action="store_true", help="fewer repetitions (for a smoke run)")
    bench.add_argument("--save", action="store_true", help="write a results file to bench/results/")
    bench.add_argument("--pretrained", action="store_true",
                       help="also the pre-trained model's speed and learning from traffic (source checkout, ~25 min)")
    _add_conversations(sub, common)
    serve = sub.add_parser("serve", parents=[common],
                           help="a Messages-API endpoint on localhost: Claude clients learn through Shammah")
    serve.add_argument("--host", default=DEFAULT_HOST, help=f"address to listen on (default {DEFAULT_HOST})")
    serve.add_argument("--port", type=_port, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0: any free)")
    serve.add_argument("--allow-remote", action="store_true",
                       help="allow a --host other machines can reach (clients still need the token)")
    serve.add_argument("words", nargs="*", metavar="token {add NAME|revoke NAME|list}",
                       help="manage named client tokens instead of serving")
    return parser


def _add_conversations(sub, common: argparse.ArgumentParser) -> None:
    conversations = sub.add_parser("conversations", parents=[common],
                                   help="past conversations: list, show, export, rename, delete, search")
    actions = conversations.add_subparsers(dest="action", parser_class=_Parser, metavar="ACTION")
    listing = actions.add_parser("list", parents=[common], help="the most recent first (the default)")
    listing.add_argument("--limit", type=_positive, default=50, help="at most this many (default 50)")
    listing.add_argument("--json", action="store_true", help="one JSON object per conversation")
    show = actions.add_parser("show", parents=[common], help="a conversation's messages")
    show.add_argument("id", nargs="?", type=_positive, help="its number (default: the last one)")
    show.add_argument("--json", action="store_true", help="the conversation as one JSON object")
    export = actions.add_parser("export", parents=[common], help="a conversation as Markdown or JSON")
    export.add_argument("id", nargs="?", type=_positive, help="its number (default: the last one)")
    export.add_argument("--format", choices=("md", "json"), default="md", help="md (default) or json")
    export.add_argument("--output", "-o", metavar="PATH",
                        help="write to this file or folder (default: print to stdout)")
    rename = actions.add_parser("rename", parents=[common], help="give a conversation a title")
    rename.add_argument("id", type=_positive)
    rename.add_argument("title", help="the new title ('' goes back to its first question)")
    delete = actions.add_parser("delete", parents=[common], help="remove a conversation and its messages "
                                "(what was learned from it stays)")
    delete.add_argument("id", type=_positive)
    search = actions.add_parser("search", parents=[common], help="messages containing TEXT, in every conversation")
    search.add_argument("text")
    search.add_argument("--limit", type=_positive, default=50, help="at most this many (default 50)")
    search.add_argument("--json", action="store_true", help="one JSON object per message found")


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError("must be between 0 and 65535")
    return value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except UsageError as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    if getattr(args, "query", None) == "-":
        try:
            args.query = sys.stdin.read()
        except (OSError, UnicodeDecodeError) as exc:
            print(f"shammah-tui: cannot read the question from stdin: {exc}", file=sys.stderr)
            return EXIT_USAGE
    data_dir = resolve_data_dir(args.data_dir)
    try:
        settings = engine_settings(data_dir, {"teacher": args.teacher})
    except EngineOpenError as exc:
        print(f"shammah-tui: {exc.message}", file=sys.stderr)
        return exc.exit_code
    command = args.command or "tui"
    if command == "serve" and args.words:
        return _serve_token(data_dir, args.words)
    problem = _usage_problem(command, args, settings)
    if problem is not None:
        print(f"shammah-tui: {problem}", file=sys.stderr)
        return EXIT_USAGE
    if command == "serve":
        from shammah_tui.serve.auth import bind_problem

        problem = bind_problem(args.host, args.allow_remote)
        if problem is not None:
            print(f"shammah-tui: {problem}", file=sys.stderr)
            return EXIT_USAGE
    try:
        if command == "tui":
            from shammah_tui.ui import run_tui

            return run_tui(data_dir, settings, serve_port=getattr(args, "serve", None),
                           resume_last=getattr(args, "resume_last", False))
        if command == "conversations":
            return asyncio.run(_conversations(args, data_dir, settings))
        if command == "bench":
            from shammah_tui.benchmark import run_bench

            return run_bench(args, make_progress())
        if command == "train" and not args.wait:
            return _train_in_background(data_dir, args)
        return asyncio.run(_run(command, args, data_dir, settings))
    except KeyboardInterrupt:
        print("shammah-tui: interrupted", file=sys.stderr)
        return EXIT_FAILURE
    except _Failure as exc:
        print(f"shammah-tui: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except EngineOpenError as exc:
        print(f"shammah-tui: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:  # the reader went away (`... | head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILURE
    except sqlite3.Error as exc:  # e.g. the disk filled up mid-run: one line, not a traceback
        print(f"shammah-tui: database error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except OSError as exc:
        print(f"shammah-tui: {exc}", file=sys.stderr)
        return EXIT_FAILURE


def _usage_problem(command: str, args: argparse.Namespace, settings: Settings) -> str | None:
    """What makes the command line unusable before anything opens (exit 2), else None."""
    from shammah_tui.teachers.factory import missing_key

    if command in ("tui", "ask", "batch", "teach", "serve") and (problem := missing_key(settings)):
        return problem
    if command == "ask":
        from shammah_tui.core.sanitize import QueryRejected, clean_query

        try:
            clean_query(args.query)
        except QueryRejected as exc:
            return str(exc)
    if command == "batch" and args.file != "-" and not os.path.isfile(args.file):
        return f"no such file: {args.file}"
    return None


class _Failure(Exception):
    """A runtime failure reported as one line, exit code 1."""


async def _run(command: str, args: argparse.Namespace, data_dir: Path, settings: Settings) -> int:
    engine = await open_engine(data_dir, settings)
    engine.subscribe(_report_model_warnings)
    try:
        if command == "ask":
            return await _ask(engine, args)
        if command == "batch":
            return await _batch(engine, args)
        if command == "teach":
            return await _teach(engine, args)
        if command == "train":
            return await _train(engine)
        if command == "stats":
            return await _stats(engine, args)
        if command == "serve":
            return await _serve(engine, args, data_dir)
        raise _Failure(f"unknown command {command}")
    finally:
        await engine.close()


def _report_model_warnings(event) -> None:
    """A bad checkpoint or tokenizer (moved aside, replaced by fresh models) is said on stderr."""
    from shammah_tui.core.events import ModelsLoaded

    if isinstance(event, ModelsLoaded):
        for warning in event.warnings:
            print(f"shammah-tui: warning: {warning}", file=sys.stderr, flush=True)


async def _ask(engine, args) -> int:
    result = await engine.ask(Question(args.query), AskPolicy(auto_train="wait"))
    if args.json:
        print(json.dumps(result.to_json(), ensure_ascii=False), flush=True)
    elif result.error:
        print(f"shammah-tui: {result.error}", file=sys.stderr)
    else:
        print(result.answer)
        print(f"[{result.source}, {result.latency_ms:.0f} ms]", file=sys.stderr)
    return EXIT_FAILURE if result.error else EXIT_OK


def _batch_lines(path: str) -> Iterator[tuple[int, str | None, str | None]]:
    """(line number, query or None, what is wrong with the line or None) for each non-blank line."""
    handle = sys.stdin if path == "-" else open(path, encoding="utf-8", errors="replace")
    with handle:
        for number, line in enumerate(handle, start=1):
            text = line.rstrip("\n")
            if not text.strip():
                continue
            if text.lstrip().startswith("{"):
                try:
                    obj = json.loads(text)
                except (ValueError, RecursionError) as exc:  # JSONDecodeError, 5000-digit ints, deep nesting
                    reason = exc.msg if isinstance(exc, json.JSONDecodeError) else type(exc).__name__
                    yield number, None, f"not valid JSON ({reason})"
                    continue
                query = obj.get("query") if isinstance(obj, dict) else None
                if not isinstance(query, str):
                    yield number, None, "JSON line needs a string field \"query\""
                    continue
                yield number, query, None
            else:
                yield number, text, None


def batch_record(number: int, source: str | None, text: str) -> str:
    """One input line's outcome as plain text: `N: [source] answer`, N being its line number in the
    input; an answer's further lines are indented, so every line that starts with a digit starts a
    record."""
    head, *rest = text.split("\n") or [""]
    indent = " " * (len(str(number)) + 2)
    return "\n".join([f"{number}: [{source or 'error'}] {head}", *(indent + line for line in rest)])


def _lines_phrase(numbers: list[int], shown: int = 10) -> str:
    listed = ", ".join(str(n) for n in numbers[:shown])
    more = f" and {len(numbers) - shown} more" if len(numbers) > shown else ""
    return f"line{'s' if len(numbers) > 1 else ''} {listed}{more}"


async def _batch(engine, args) -> int:
    from shammah_tui.core.events import AskResult
    from shammah_tui.formatting import plural

    answered = 0
    total = 0
    failed: list[int] = []
    for number, query, problem in _batch_lines(args.file):
        total += 1
        if problem is not None:
            result = AskResult(query=None, error=f"line {number}: {problem}")  # type: ignore[arg-type]
        else:
            assert query is not None  # a line without an error has its question
            result = await engine.ask(Question(query), AskPolicy(auto_train="off" if args.train_every else "wait"))
            answered += 1
            if args.train_every and answered % args.train_every == 0:
                if (await engine.queue_counts())["queued"]:
                    await engine.train("batch")
        if result.error:
            failed.append(number)
        if args.json:
            print(json.dumps({**result.to_json(), "line": number}, ensure_ascii=False), flush=True)
        elif problem is not None:
            print(batch_record(number, None, problem), flush=True)
        else:
            print(batch_record(number, None if result.error else result.source,
                               result.error or result.answer or ""), flush=True)
    if failed:
        # Every line was still tried; the exit code and this line say that not all were answered.
        print(f"shammah-tui: {len(failed)} of {plural(total, 'query', 'queries')} not answered "
              f"({_lines_phrase(failed)})", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK


def make_progress():
    """The progress bars of a long command (drawn on stderr when it is a terminal)."""
    from shammah_tui.progress import WorkProgress

    return WorkProgress()


async def _teach(engine, args) -> int:
    from shammah_tui.core.events import ToolCalled, TrainingFinished
    from shammah_tui.formatting import format_pct, plural, teach_outcome

    registry = engine.tool_registry()
    before = (await registry.call("analyze_model", {})).data.get("categories", {})
    progress = make_progress()
    # A round of teaching ends with its training run: the bar counts runs against the rounds asked.
    rounds = progress.add("teaching", args.rounds)

    def show(event) -> None:
        progress.on_event(event)
        if isinstance(event, TrainingFinished):
            progress.advance(rounds)
        if isinstance(event, ToolCalled) and event.event.status != "running":
            e = event.event
            compact = json.dumps(e.input, ensure_ascii=False)
            compact = compact if len(compact) <= 80 else compact[:77] + "..."
            print(f"{e.name} {compact} -> {e.status} ({e.duration_ms:.0f} ms): {e.summary}", flush=True)

    unsubscribe = engine.subscribe(show)
    try:
        from shammah_tui.core.teaching import TeacherError

        with progress:
            summary = await engine.teach(rounds=args.rounds, topic=args.topic)
    except TeacherError as exc:
        raise _Failure(exc.message) from None
    finally:
        unsubscribe()
    after = (await registry.call("analyze_model", {})).data.get("categories", {})
    print(f"\nteaching {teach_outcome(summary.stopped_because)}: {plural(summary.iterations, 'turn')}, "
          f"{plural(summary.tool_calls, 'tool call')}")
    print(f"{'category':<18}{'before':>8}{'after':>8}")
    for family in after:
        print(f"{family:<18}{format_pct(before.get(family, {}).get('accuracy', 0)):>8}"
              f"{format_pct(after[family]['accuracy']):>8}")
    mean = lambda d: sum(v["accuracy"] for v in d.values()) / max(len(d), 1)  # noqa: E731
    print(f"{'mean':<18}{format_pct(mean(before)):>8}{format_pct(mean(after)):>8}")
    return EXIT_OK


async def _train(engine) -> int:
    from shammah_tui.core.events import Notice
    from shammah_tui.formatting import format_loss

    notices: list[str] = []
    progress = make_progress()

    def show(event) -> None:
        if isinstance(event, Notice):
            notices.append(event.text)
        progress.on_event(event)

    unsubscribe = engine.subscribe(show)
    try:
        with progress:
            report = await engine.train("cli")
    finally:
        unsubscribe()
    if report is None:  # nothing queued, or another process is training (the engine said which)
        print(notices[-1] if notices else "Nothing to train on: the queue is empty.")
        return EXIT_OK
    for model, loss in report.losses.items():
        print(f"{model:<10} loss {format_loss(loss.old_loss)} -> {format_loss(loss.new_loss)} "
              f"({loss.improvement_pct:+.1f}%) measured on {loss.measured_on}")
    if report.status == "failed":
        raise _Failure(f"training failed: {report.error}")
    return EXIT_OK


def _train_in_background(data_dir: Path, args: argparse.Namespace) -> int:
    """Start `train --wait` as a detached process that logs to the data dir."""
    from shammah_tui.paths import ensure_data_dir

    ensure_data_dir(data_dir)
    log_path = data_dir / "train.log"
    command = [sys.executable, "-m", "shammah_tui", "train", "--wait", "--data-dir", str(data_dir)]
    if args.teacher:
        command += ["--teacher", args.teacher]
    with open(log_path, "ab") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
    print(f"Training started in the background (pid {process.pid}); log: {log_path}")
    return EXIT_OK


async def _stats(engine, args) -> int:
    from shammah_tui.formatting import stats_text

    stats = await engine.stats()
    if args.json:
        print(json.dumps(stats.to_json(), ensure_ascii=False))
        return EXIT_OK
    print(stats_text(stats))
    return EXIT_OK


async def _conversations(args: argparse.Namespace, data_dir: Path, settings: Settings) -> int:
    """`conversations [list|show|export|rename|delete|search]`, over the store alone (no models, no teacher)."""
    from shammah_tui.teachers.offline import OfflineTeacher

    engine = await open_engine(data_dir, settings, OfflineTeacher(), use_models=False)
    try:
        return await _conversation_action(engine.store, args, data_dir)
    finally:
        await engine.close()


async def _conversation_action(store, args: argparse.Namespace, data_dir: Path) -> int:
    import time

    from shammah_tui.formatting import ellipsize, plural
    from shammah_tui.ui.export import conversation_json, conversation_markdown, export_path, iso, write_export

    action = args.action or "list"
    if action == "search":
        found = await store.search_messages(args.text, limit=args.limit)
        for m in found:
            if args.json:
                print(json.dumps({"conversation": m.conversation_id, "role": m.role, "source": m.source,
                                  "text": m.text, "at": iso(m.created_at)}, ensure_ascii=False))
            else:
                print(f"#{m.conversation_id:<5} {iso(m.created_at)[:16].replace('T', ' ')}  {m.role:<9}  "
                      f"{ellipsize(' '.join(m.text.split()), 80)}")
        if not found:
            raise _Failure(f"no message contains {args.text!r}")
        return EXIT_OK
    if action == "list":
        rows = await store.conversations(limit=getattr(args, "limit", 50))
        for row in rows:
            if getattr(args, "json", False):
                print(json.dumps({"id": row.id, "title": row.title, "messages": row.messages,
                                  "created_at": iso(row.created_at), "last_at": iso(row.last_at)},
                                 ensure_ascii=False))
            else:
                print(f"{row.id:>5}  {iso(row.last_at)[:16].replace('T', ' ')}  "
                      f"{plural(row.messages, 'message'):>13}  {ellipsize(' '.join(row.title.split()), 60)}")
        if not rows and not getattr(args, "json", False):
            print("No conversations yet.", file=sys.stderr)
        return EXIT_OK
    conversation_id = args.id
    if conversation_id is None:
        conversation_id = await store.latest_conversation()
        if conversation_id is None:
            raise _Failure("no conversations yet")
    summary = await store.conversation(conversation_id)
    if summary is None:
        raise _Failure(f"no conversation #{conversation_id} (`shammah-tui conversations list` shows them)")
    if action == "rename":
        await store.rename_conversation(conversation_id, " ".join(args.title.split()))
        print(f"Conversation #{conversation_id} renamed.")
        return EXIT_OK
    if action == "delete":
        await store.delete_conversation(conversation_id)
        print(f"Conversation #{conversation_id} deleted ({plural(summary.messages, 'message')}).")
        return EXIT_OK
    messages = await store.messages(conversation_id, limit=max(summary.messages, 1))
    now = time.time()
    if action == "show" and not args.json:
        print(f"#{conversation_id} {summary.title}".rstrip())
        for m in messages:
            who = "you" if m.role == "user" else (m.source or "shammah") if m.role == "assistant" else m.role
            print(f"\n[{who}] {m.text.rstrip()}")
        return EXIT_OK
    fmt = "json" if action == "show" else args.format
    text = (conversation_json if fmt == "json" else conversation_markdown)(conversation_id, summary.title,
                                                                           messages, now)
    output = getattr(args, "output", None)
    if not output:
        sys.stdout.write(text)
        return EXIT_OK
    path = write_export(export_path(data_dir, conversation_id, fmt, output, now), text)
    print(f"Exported {plural(len(messages), 'message')} to {path}")
    return EXIT_OK


def _serve_token(data_dir: Path, words: list[str]) -> int:
    from shammah_tui.serve.tokens import TokenCommandError, run_token_command, usage_problem
    from shammah_tui.store import StoreError

    problem = usage_problem(words)
    if problem is not None:
        print(f"shammah-tui: {problem}", file=sys.stderr)
        return EXIT_USAGE
    try:
        lines = asyncio.run(run_token_command(data_dir, words))
    except TokenCommandError as exc:
        print(f"shammah-tui: {exc}", file=sys.stderr)
        return exc.exit_code
    except (StoreError, sqlite3.Error, OSError) as exc:
        print(f"shammah-tui: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    for line in lines:
        print(line)
    return EXIT_OK


async def _serve(engine, args, data_dir: Path) -> int:
    from shammah_tui.serve.run import ServeError, serve_in_foreground

    try:
        await serve_in_foreground(engine, data_dir, args.host, args.port, allow_remote=args.allow_remote,
                                  write=lambda line: print(line, flush=True))
    except ServeError as exc:
        raise _Failure(str(exc)) from None
    return EXIT_OK
