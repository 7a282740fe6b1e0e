"""The real app in a real terminal: tmux starts it, types questions, exports the conversation, quits."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time

import pytest

pytestmark = [pytest.mark.terminal,
              pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")]


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, timeout=30).stdout


def wait_for(session: str, text: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < deadline:
        screen = tmux("capture-pane", "-t", session, "-p")
        if text in screen:
            return screen
        time.sleep(0.3)
    raise AssertionError(f"{text!r} did not appear within {timeout} s; screen:\n{screen}")


def test_start_ask_see_a_labelled_answer_and_quit(tmp_path):
    session = f"shammah-test-{tmp_path.name}"
    done = tmp_path / "exit-code"
    command = (f"{sys.executable} -m shammah_tui --teacher offline --data-dir {tmp_path / 'data'}; "
               f"echo $? > {done}")
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "120", "-y", "40", command],
                   check=True, timeout=30)
    try:
        wait_for(session, "Ask a question", 30)
        wait_for(session, "params", 120)  # the models loaded (header shows their size)
        tmux("send-keys", "-t", session, "What is the capital of Japan?", "Enter")
        screen = wait_for(session, "Tokyo", 60)
        assert "forward" in screen
        tmux("send-keys", "-t", session, "what is 6 * 7", "Enter")
        # The answer's own line: a bare "42" also turns up in paths on screen (pytest-342/…).
        screen = wait_for(session, "▌ 42", 30)
        assert "template" in screen
        # Export the conversation; the app says where the file went, and the file holds it all.
        tmux("send-keys", "-t", session, "/export md", "Enter")
        wait_for(session, "Exported 4 messages", 30)
        exports = sorted((tmp_path / "data" / "exports").glob("conversation-*.md"))
        assert len(exports) == 1, exports
        text = exports[0].read_text()
        assert "## You\n\nWhat is the capital of Japan?" in text and "Tokyo" in text
        assert "## Shammah · template" in text and "42" in text
        tmux("send-keys", "-t", session, "C-q")
        deadline = time.monotonic() + 20
        while not done.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert done.exists(), "the app did not quit"
        assert done.read_text().strip() == "0"
        assert "\x1b" not in screen
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True, timeout=30)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_quit_while_serving_exits_0_and_closes_the_port(tmp_path):
    session = f"shammah-serve-{tmp_path.name}"
    done = tmp_path / "exit-code"
    port = free_port()
    command = (f"{sys.executable} -m shammah_tui --teacher offline --data-dir {tmp_path / 'data'} --serve {port}; "
               f"echo $? > {done}; sleep 60")  # the pane stays, to show what went wrong
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "120", "-y", "40", command],
                   check=True, timeout=30)
    try:
        wait_for(session, "Serving the Messages API", 60)
        assert port_open(port)
        tmux("send-keys", "-t", session, "C-q")
        deadline = time.monotonic() + 20
        while not done.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        screen = tmux("capture-pane", "-t", session, "-p")
        assert done.exists(), f"the app did not quit; screen:\n{screen}"
        assert done.read_text().strip() == "0", screen
        assert "Error" not in screen
        assert not port_open(port)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True, timeout=30)
