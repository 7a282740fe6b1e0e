"""What the serve benches share: the loopback Messages API (tests/fakeapi.py) as Claude in a
process of its own, `shammah-tui serve` started as a user starts it, and small statistics.

    python bench/serve_common.py fake      # runs the fake upstream; prints its URL, stops on SIGTERM
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

#: The key the server sends upstream; the fake accepts any.
UPSTREAM_KEY = "sk-ant-bench-upstream"
MODEL = "claude-bench-model"
#: Benches measure serving: no training run or spot check competes for the two cores mid-run.
BENCH_SETTINGS = "auto_train = false\nspot_check_rate = 0.0\n"


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def answer_for(body: dict[str, Any]) -> str:
    """The fake's reply: distinct per question, so a wrong row would show."""
    last = body.get("messages", [{}])[-1].get("content") if isinstance(body.get("messages"), list) else None
    text = last if isinstance(last, str) else json.dumps(last)[:80]
    return f"Answer to: {text}"[:400]


# --- processes ---------------------------------------------------------------------------


def start_fake() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "fake"], stdout=subprocess.PIPE,
                            text=True, cwd=ROOT)
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    if not url.startswith("http://"):
        proc.kill()
        raise RuntimeError(f"the fake upstream did not start: {url!r}")
    return proc, url


def prepare_data_dir(data_dir: Path) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "settings.toml").write_text(BENCH_SETTINGS)


def server_env(upstream_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "SHAMMAH_"))}
    return env | {"ANTHROPIC_API_KEY": UPSTREAM_KEY, "ANTHROPIC_BASE_URL": upstream_url, "SHAMMAH_TEACHER": "claude",
                  "PYTHONUNBUFFERED": "1"}


def start_server(data_dir: Path, upstream_url: str, log_path: Path, port: int = 0,
                 timeout_s: float = 120) -> tuple[subprocess.Popen[bytes], str, str]:
    """`shammah-tui serve` on `data_dir`; (process, URL, token) once it listens."""
    log = open(log_path, "wb")
    proc = subprocess.Popen([sys.executable, "-m", "shammah_tui", "serve", "--data-dir", str(data_dir),
                             "--port", str(port)], stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
                            env=server_env(upstream_url))
    log.close()  # the child holds its own descriptor
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        text = log_path.read_text(errors="replace")
        if " at http://" in text:
            url = text.split(" at ", 1)[1].split()[0]
            token = (data_dir / "serve.token").read_text().strip()
            return proc, url, token
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}: {text[-2000:]}")
        time.sleep(0.02)
    proc.kill()
    raise RuntimeError("the server did not start in time")


def stop(proc: subprocess.Popen[Any], sig: int = signal.SIGINT, timeout_s: float = 30) -> int:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            return proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait()


def machine() -> str:
    return f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start"


async def _run_fake() -> None:
    from tests.fakeapi import FakeMessagesAPI

    api = FakeMessagesAPI(responder=answer_for)
    print(await api.start(), flush=True)
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, done.set)
    loop.add_signal_handler(signal.SIGINT, done.set)
    await done.wait()
    await api.stop()


if __name__ == "__main__" and sys.argv[1:] == ["fake"]:
    asyncio.run(_run_fake())
