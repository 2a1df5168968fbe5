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
    rows = {line.split()[0]: line.split()[1:] for line in lines[3:] if line.startswith("examples/")}
    assert rows["examples/eval/report-2024-W41-payments.md"] == ["offline", "6", "8", "80%", "100%", "0", "0", "0"]
    total = next(line for line in lines if line.startswith("total"))
    assert total.split()[-3:] == ["0", "0", "0"]  # nothing dropped, no line twice, no finished result as a goal
