"""The command line as a user meets it: one clear line and exit ≠ 0 on errors, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import EXAMPLES, ROOT

W40 = EXAMPLES / "report-2024-W40.md"


def cli(tmp_path: Path, *args: str, db: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "WEEKLY_CONFIG": str(EXAMPLES / "team.yaml"),
           "DATABASE_URL": db or f"sqlite:///{tmp_path / 'weekly.db'}"}
    return subprocess.run([sys.executable, "-m", "bot", *args], capture_output=True, text=True, cwd=tmp_path,
                          env=env, timeout=60)


def test_import_then_report_and_status(tmp_path: Path) -> None:
    imported = cli(tmp_path, "import", str(W40))
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout == "imported 1 report(s) into clearing: 2024-W40 (8 sections)\n"

    md = cli(tmp_path, "report", "--cycle", "2024-W40", "--no-summarize")
    assert md.returncode == 0, md.stderr
    original = W40.read_text(encoding="utf-8")
    body = original.split("\n## 收获与反思")[0]
    assert md.stdout.startswith("# 2024-W40\n\nCreated: ")
    assert md.stdout.split("\n", 3)[3] == body.split("\n", 3)[3].rstrip("\n") + "\n"

    js = cli(tmp_path, "report", "--cycle", "2024-W40", "--summarize", "--format", "json")
    data = json.loads(js.stdout)
    assert data["summary_source"] == "offline"
    assert data["reflections"] and data["next_week"]
    assert all(item["sources"] for item in data["reflections"] + data["next_week"])

    out = tmp_path / "r.md"
    written = cli(tmp_path, "report", "--cycle", "2024-W40", "--summarize", "-o", str(out))
    assert written.returncode == 0 and out.read_text(encoding="utf-8") == data["markdown"]

    status = cli(tmp_path, "status", "--cycle", "2024-W40", "--format", "json")
    st = json.loads(status.stdout)
    assert (st["opens_at"], st["deadline"]) == ("2024-09-30T10:00:00+08:00", "2024-09-30T18:00:00+08:00")
    assert [s["state"] for s in st["sections"]] == ["submitted"] * 8


@pytest.mark.parametrize(("make", "expected"), [
    (lambda p: p.write_bytes(b""), "the file is empty"),
    (lambda p: p.write_bytes(bytes(range(256)) * 4), "a binary file, not a Markdown report"),
    (lambda p: None, "no such file"),
    (lambda p: p.write_text(W40.read_text(encoding="utf-8").replace("# 2024-W40", "# 周报"), encoding="utf-8"),
     "no cycle in its title (like '# 2024-W40'): pass --cycle"),
])
def test_bad_imports_give_one_line_and_change_nothing(tmp_path: Path, make, expected: str) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.md"
    make(bad)
    result = cli(tmp_path, "import", str(bad))
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == f"weekly-bot: error: {bad}: {expected}\n"
    after = cli(tmp_path, "report", "--cycle", "2024-W40", "--no-summarize", "--format", "json")
    assert [s["state"] for s in json.loads(after.stdout)["sections"]] == ["missing"] * 8


def test_import_draws_a_progress_bar_on_a_terminal_and_none_into_a_pipe(tmp_path: Path) -> None:
    import fcntl
    import os
    import struct
    import termios

    files = [str(EXAMPLES / "report-2024-W39.md"), str(W40)]
    piped = cli(tmp_path, "import", *files, db=f"sqlite:///{tmp_path / 'piped.db'}")
    assert (piped.returncode, piped.stderr) == (0, "")  # stderr is a pipe: no bar, not even a blank line
    said = "imported 2 report(s) into clearing: 2024-W39, 2024-W40 (15 sections)\n"
    assert piped.stdout == said

    master, terminal = os.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "WEEKLY_CONFIG": str(EXAMPLES / "team.yaml"),
           "DATABASE_URL": f"sqlite:///{tmp_path / 'tty.db'}"}
    proc = subprocess.Popen([sys.executable, "-m", "bot", "import", *files], stdout=subprocess.PIPE,
                            stderr=terminal, cwd=tmp_path, env=env)
    os.close(terminal)
    drawn = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # the process closed its end of the terminal
            break
        if not chunk:
            break
        drawn += chunk
    os.close(master)
    out, _ = proc.communicate(timeout=60)
    assert (proc.returncode, out.decode()) == (0, said)
    frames = drawn.decode().split("\r")
    assert frames[1].startswith("importing:   0%|") and " 0/2 [" in frames[1]
    assert frames[-2].startswith("importing: 100%|██") and " 2/2 [" in frames[-2]
    assert frames[-2].endswith(", 2024-W40]") and "report" in frames[-2]  # the rate, then the cycle just written
    assert frames[-1] == "\n"


def test_bad_database_url_is_one_line(tmp_path: Path) -> None:
    result = cli(tmp_path, "status", db="nonsense://")
    assert result.returncode == 2
    assert result.stderr.startswith("weekly-bot: error: ") and result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr


def test_unreachable_postgres_is_one_line(tmp_path: Path) -> None:
    result = cli(tmp_path, "status", db="postgresql://nobody@127.0.0.1:1/none")
    assert result.returncode == 2
    assert result.stderr.startswith("weekly-bot: error: database postgresql+psycopg://nobody@127.0.0.1:1/none")
    assert result.stderr.count("\n") == 1


def test_unknown_cycle_is_one_line(tmp_path: Path) -> None:
    result = cli(tmp_path, "report", "--cycle", "2024-W99")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "2024-W99" in result.stderr


def test_demo_runs_a_whole_cycle_offline() -> None:
    result = subprocess.run([sys.executable, "-m", "bot", "demo"], capture_output=True, text=True, cwd=ROOT,
                            env={"PATH": "/usr/bin:/bin", "HOME": str(ROOT)}, timeout=120)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert result.stderr == ""
    # the merged National Day cycle, opening on Tuesday, with the imported Mid-Autumn cycle's plan
    assert "    2024-W40&W41   opens Tue 10-08 10:00  due Thu 10-10 18:00  upcoming\n" in out
    assert ("bot → 李雷 (DM): 李雷你好，支付清算中心周报 2024-W40&W41 开始收集了。"
            "请回复【结算通道、O1 业务服务】这两周的进展") in out
    assert "      上期计划：\n        - 结算通道：招商银行直连完成联调，10月中旬进入验收。\n" in out
    assert out.count("开始收集了") == 6  # every owner prompted once, but 陈静, away over the deadline
    prompted = [line.split(" (DM)")[0].split("→ ")[1] for line in out.splitlines() if "开始收集了" in line]
    assert prompted == ["李雷", "张伟", "刘洋", "赵敏", "孙浩", "王芳"]  # the terminal takes one send at a time
    assert "bot → 陈静 (DM)" not in out and "本周" not in out.split("owners answer in chat")[0]
    assert "  (nothing due)" in out
    assert "bot → 刘洋 (DM): 提醒：" in out
    assert "bot → 王芳 (DM): 支付清算中心周报 2024-W40&W41 已到截止时间，仍未提交：【O1 业务服务】(李雷)" in out
    assert "    🌴 风控引擎 — 陈静 (请假)\n" in out
    assert "    ✅ O1 业务服务 — 赵敏、李雷 (已提交，迟交)\n" in out
    assert "## 收获与反思" in out and "# 下周工作及目标" in out
    assert "bot → #C0WEEKLY01: 支付清算中心周报 2024-W40&W41" in out


@pytest.mark.parametrize(("args", "expected"), [
    (("report", "--format", "xml"),
     "weekly-bot: error: argument --format: invalid choice: 'xml' (choose from 'markdown', 'json') "
     "(see weekly-bot report --help)\n"),
    (("db", "downgrade"),
     "weekly-bot: error: argument action: invalid choice: 'downgrade' (choose from 'upgrade') "
     "(see weekly-bot db --help)\n"),
    (("serve", "--port", "99999"),
     "weekly-bot: error: argument --port: '99999' is not a port (1 to 65535) (see weekly-bot serve --help)\n"),
])
def test_usage_mistakes_are_one_line(tmp_path: Path, args: tuple[str, ...], expected: str) -> None:
    result = cli(tmp_path, *args)
    assert (result.returncode, result.stdout, result.stderr) == (2, "", expected)


def test_serve_on_a_port_in_use_or_out_of_range_is_one_line(tmp_path: Path) -> None:
    """Not uvicorn's traceback (a port over 65535) nor its error after start-up (a port in use)."""
    import socket

    with socket.socket() as held:
        held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        held.bind(("0.0.0.0", 0))
        held.listen()
        port = held.getsockname()[1]
        busy = cli(tmp_path, "serve", "--port", str(port), "--no-scheduler")
    assert busy.returncode == 2 and "Traceback" not in busy.stderr
    assert busy.stderr.splitlines()[-1] == f"weekly-bot: error: cannot listen on 0.0.0.0:{port} (Address already in use)"
    env_port = subprocess.run([sys.executable, "-m", "bot", "serve"], capture_output=True, text=True, cwd=tmp_path,
                              env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PORT": "70000",
                                   "WEEKLY_CONFIG": str(EXAMPLES / "team.yaml")}, timeout=60)
    assert (env_port.returncode, env_port.stderr) == (
        2, "weekly-bot: error: environment: PORT: Input should be less than or equal to 65535\n")


def test_publish_without_a_platform_is_one_line_and_compiles_nothing(tmp_path: Path) -> None:
    import sqlite3

    done = cli(tmp_path, "publish")
    assert (done.returncode, done.stdout, done.stderr) == (
        2, "", "weekly-bot: error: no chat platform is configured (set SLACK_BOT_TOKEN, or FEISHU_APP_ID and "
               "FEISHU_APP_SECRET): nothing could be delivered\n")
    with sqlite3.connect(tmp_path / "weekly.db") as db:
        assert db.execute("SELECT (SELECT count(*) FROM snapshots) + (SELECT count(*) FROM summaries)").fetchone() == (0,)


def test_report_o_keeps_off_the_team_file_the_database_and_symlinks(tmp_path: Path) -> None:
    import shutil

    team = tmp_path / "team.yaml"
    shutil.copy(EXAMPLES / "team.yaml", team)
    before = team.read_bytes()
    (tmp_path / "link.md").symlink_to(team)
    env_db = f"sqlite:///{tmp_path / 'weekly.db'}"
    for target, why in ((str(team), "which weekly-bot uses; not overwritten"),
                        (str(tmp_path / "weekly.db"), "which weekly-bot uses; not overwritten"),
                        (str(tmp_path / "link.md"), "is a symbolic link; not written")):
        done = subprocess.run(
            [sys.executable, "-m", "bot", "report", "--config", str(team), "--db", env_db, "--no-summarize",
             "-o", target], capture_output=True, text=True, cwd=tmp_path, timeout=60,
            env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
        assert (done.returncode, done.stdout) == (2, "") and why in done.stderr and done.stderr.count("\n") == 1
    assert team.read_bytes() == before
    forced = subprocess.run([sys.executable, "-m", "bot", "report", "--config", str(team), "--db", env_db,
                             "--no-summarize", "-o", str(tmp_path / "link.md"), "--force"],
                            capture_output=True, text=True, cwd=tmp_path, timeout=60,
                            env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert forced.returncode == 0 and team.read_text(encoding="utf-8").startswith("# ")


def test_report_o_that_cannot_be_written_is_one_line_before_any_draft(tmp_path: Path) -> None:
    """`-o` into a directory, a missing one, or an empty name: refused first, as one line — not after drafting
    (and storing) the closing sections and printing the draft's notice."""
    import sqlite3

    (tmp_path / "out").mkdir()
    for target, expected in ((str(tmp_path / "out"), f"weekly-bot: error: {tmp_path / 'out'}: is a directory; "
                                                     f"name a file (like {tmp_path / 'out' / 'report.md'})\n"),
                             ("nowhere/r.md", "weekly-bot: error: nowhere/r.md: no such directory 'nowhere'\n"),
                             ("", "weekly-bot: error: -o: the file name is empty\n")):
        done = cli(tmp_path, "report", "-o", target)
        assert (done.returncode, done.stdout, done.stderr) == (2, "", expected)
    with sqlite3.connect(tmp_path / "weekly.db") as db:
        assert db.execute("SELECT count(*) FROM summaries").fetchone() == (0,)  # nothing was drafted


def test_import_reads_regular_files_only_and_not_without_end(tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "fifo.md"
    os.mkfifo(fifo)
    big = tmp_path / "big.md"
    big.write_bytes(b"# 2024-W40\n" + b"- x\n" * 2_000_000)
    for path, why in ((str(fifo), "not a regular file"), ("/dev/zero", "not a regular file"),
                      (str(big), "too big for a report")):
        done = cli(tmp_path, "import", path)
        assert done.returncode == 2 and why in done.stderr and done.stderr.count("\n") == 1, done.stderr
    listed = json.loads(cli(tmp_path, "cycles", "--format", "json", "--from", "2024-W40", "--to", "2024-W41").stdout)
    assert [c["state"] for c in listed["cycles"]] == ["closed"]  # nothing was imported
