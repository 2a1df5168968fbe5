"""`weekly-bot tick` as separate processes at once, delivering through Slack's Web API (a fake on
127.0.0.1): on one SQLite file and on PostgreSQL, each owner gets exactly one prompt."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from .conftest import ROOT
from .fakes.slack_api import FakeSlackApi

OWNER_IDS = {"U0LILEI001", "U0ZHANG001", "U0CHEN0001", "U0LIUY0001", "U0ZHAO0001", "U0SUNH0001", "U0WANG0001"}


def ticks(team_file: Path, db_url: str, fake: FakeSlackApi, at: str, n: int) -> list[subprocess.CompletedProcess[str]]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(team_file.parent),
           "WEEKLY_CONFIG": str(team_file), "DATABASE_URL": db_url, "SLACK_BOT_TOKEN": "xoxb-test",
           "SLACK_API_URL": fake.api_url}
    procs = [subprocess.Popen([sys.executable, "-m", "bot", "tick", "--at", at], cwd=ROOT, env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(n)]
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=120)
        out.append(subprocess.CompletedProcess(p.args, p.returncode, stdout, stderr))
    return out


def test_concurrent_tick_processes_send_each_prompt_once(team_file: Path, prepared_db: str) -> None:
    with FakeSlackApi() as fake:
        results = ticks(team_file, prepared_db, fake, "2024-10-14T10:00+08:00", 3)
        assert [r.returncode for r in results] == [0, 0, 0], [r.stderr for r in results]
        assert all(r.stderr == "" for r in results)
        lines = [ln for r in results for ln in r.stdout.splitlines() if ln != "nothing due"]
        assert len(lines) == 7
        assert "prompt clearing 2024-W42 → li via slack: sent" in lines
        opened = Counter(c.params["users"] for c in fake.calls("conversations.open"))
        posted = fake.calls("chat.postMessage")
        assert len(posted) == 7
        assert {f"U{c.params['channel'][1:]}" for c in posted} == OWNER_IDS
        assert set(opened) <= OWNER_IDS

        again = ticks(team_file, prepared_db, fake, "2024-10-14T10:05+08:00", 2)
        assert [r.stdout for r in again] == ["nothing due\n", "nothing due\n"]
        assert len(fake.calls("chat.postMessage")) == 7


def test_tick_without_a_platform_says_so(team_file: Path, prepared_db: str) -> None:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(team_file.parent),
           "WEEKLY_CONFIG": str(team_file), "DATABASE_URL": prepared_db}
    def run(when: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "bot", "tick", "--at", when], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=60)

    quiet = run("2024-10-14T09:00+08:00")  # W41's deadline is days past, W42 not open yet
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "nothing due\n", "")
    result = run("2024-10-14T10:00+08:00")
    assert result.returncode == 2
    assert result.stderr == ("weekly-bot: error: 7 message(s) due but no chat platform is configured "
                             "(set SLACK_BOT_TOKEN, or FEISHU_APP_ID and FEISHU_APP_SECRET)\n")


@pytest.mark.parametrize("when", ["after", "before"])
def test_kill_9_of_tick_mid_fan_out_then_ticks_a_minute_apart_prompt_everyone_once(
        team_file: Path, prepared_db: str, when: str) -> None:
    """A real `tick` process killed while Slack holds a prompt (the third it gets) — just after Slack took it, or
    just before — then ticks at +1 and +2 minutes: every owner is prompted exactly once, by 10:02."""
    with FakeSlackApi() as fake:
        fake.hold("chat.postMessage", 3, when)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(team_file.parent),
               "WEEKLY_CONFIG": str(team_file), "DATABASE_URL": prepared_db, "SLACK_BOT_TOKEN": "xoxb-test",
               "SLACK_API_URL": fake.api_url}
        proc = subprocess.Popen([sys.executable, "-m", "bot", "tick", "--at", "2024-10-14T10:00+08:00"], cwd=ROOT,
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        assert fake.held.wait(60), "the tick never reached its third prompt"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        fake.release()
        taken = {c.params["channel"] for c in fake.calls("chat.postMessage")}
        # sends run in parallel: the others may have gone out before the kill; the held one did, or did not
        assert (3 if when == "after" else 2) <= len(taken) <= (7 if when == "after" else 6)

        for at in ("2024-10-14T10:01+08:00", "2024-10-14T10:02+08:00"):
            [result] = ticks(team_file, prepared_db, fake, at, 1)
            assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
        posted = Counter(f"U{c.params['channel'][1:]}" for c in fake.calls("chat.postMessage"))
        assert set(posted) == OWNER_IDS and set(posted.values()) == {1}, posted
        [later] = ticks(team_file, prepared_db, fake, "2024-10-14T10:03+08:00", 1)
        assert later.stdout == "nothing due\n"
