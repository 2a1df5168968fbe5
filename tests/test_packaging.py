"""The wheel carries what `weekly-bot demo` needs: it runs outside the source tree."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from .conftest import ROOT


def test_the_demo_runs_from_the_wheel_outside_the_checkout(tmp_path: Path) -> None:
    source = tmp_path / "source"  # a copy, so the build leaves nothing in the checkout
    shutil.copytree(ROOT, source, symlinks=True, ignore=shutil.ignore_patterns(
        ".venv", ".git", "build", "*.egg-info", "__pycache__", ".*_cache", "*.db*"))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(tmp_path / "dist"), str(source)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("weekly_bot-*.whl")
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        z.extractall(site)
    assert {"bot/demo_data/team.yaml", "bot/demo_data/report-2024-W38-W39.md",
            "bot/demo_data/answers/settlement.md", "storage/migrations/versions/0004_identities.py",
            "handlers/slack/plugin.py", "prompts/__init__.py", "handlers/webview/templates/participation.html",
            "handlers/webview/static/chart.umd.min.js", "handlers/webview/static/participation.js",
            "storage/migrations/versions/0008_web.py"} <= names
    # the wheel's code and data only (the dependencies from this environment), far from the checkout
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONPATH": str(site)}
    code = "import sys, bot; assert bot.__file__.startswith(sys.argv[1]), bot.__file__; " \
           "from bot.cli import main; raise SystemExit(main(['demo']))"
    demo = subprocess.run([sys.executable, "-c", code, str(site)], capture_output=True, text=True, cwd="/",
                          env=env | {k: v for k, v in os.environ.items() if k == "VIRTUAL_ENV"}, timeout=120)
    assert demo.returncode == 0, demo.stderr
    assert demo.stderr == ""
    assert "imported 2024-W38&W39: 7 sections" in demo.stdout and "bot → #C0WEEKLY01" in demo.stdout
