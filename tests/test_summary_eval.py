"""bench/summary_eval.py: the offline rules scored on the example reports' own closing sections."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_offline_evaluation_prints_its_table() -> None:
    run = subprocess.run([sys.executable, str(ROOT / "bench" / "summary_eval.py")], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stderr == ""
    lines = run.stdout.splitlines()
    assert lines[0] == "summarizer: offline rules"
    assert lines[1].split() == ["report", "src", "L", "G", "L", "cov", "G", "cov", "dropped", "dup", "done", "G"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[3:] if line.startswith("bot/demo_data/")}
    assert rows["bot/demo_data/eval/report-2024-W41-payments.md"] == ["offline", "6", "8", "80%", "100%", "0", "0", "0"]
    total = next(line for line in lines if line.startswith("total"))
    assert total.split()[-3:] == ["0", "0", "0"]  # nothing dropped, no line twice, no finished result as a goal


def test_an_llm_is_scored_through_its_url_and_its_fallbacks_are_said() -> None:
    from tests.fakes.openai_server import FakeOpenAI, answer

    reply = {"reflections": [{"text": "一句话", "sources": ["s0"]}],
             "next_week": [{"text": "招商银行直连10月下旬上线。", "sources": ["s0"]}]}
    with FakeOpenAI(answer(reply)) as server:
        run = subprocess.run([sys.executable, str(ROOT / "bench" / "summary_eval.py"), "bot/demo_data/report-2024-W40.md",
                              "--generated", "0", "--url", server.base_url, "--model", "fake", "--timeout", "5"],
                             capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == f"summarizer: LLM fake at {server.base_url}"
    row = next(line for line in lines if line.startswith("bot/demo_data/report-2024-W40.md")).split()
    # the goal is kept (the model's), the placeholder lesson dropped and the lessons drafted by the rules
    assert row[1:3] == ["llm", "3"] and row[3] == "1" and row[6] == "1"
    assert "dropped because: placeholder (the prompt's example) ×1" in lines
