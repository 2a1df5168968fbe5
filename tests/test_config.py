"""The team file: a valid one loads; each broken one names file, key path and problem."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bot.config import load_team_file
from bot.errors import ConfigError

from .conftest import EXAMPLES, ROOT

GOOD = (EXAMPLES / "team.yaml").read_text(encoding="utf-8")


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "team.yaml"
    p.write_text(text, encoding="utf-8")
    return p


def error_of(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as info:
        load_team_file(write(tmp_path, text))
    return str(info.value)


def test_example_team_file_loads() -> None:
    tf = load_team_file(EXAMPLES / "team.yaml")
    team = tf.team(None)
    assert team.key == "clearing"
    assert [s.key for s in team.sections] == [
        "settlement", "reconciliation", "risk", "gateway", "o1_business", "metrics", "incidents", "other"]
    assert team.schedule.holidays == "CN"
    assert str(team.schedule.deadline) == "thu 18:00"
    assert tf.member_by("slack", "U0LILEI001") == "li"


def test_unknown_owner_names_the_key_path(tmp_path: Path) -> None:
    msg = error_of(tmp_path, GOOD.replace("owners: [chen]", "owners: [chen, nobody]"))
    assert msg == f"{tmp_path / 'team.yaml'}: teams[0].sections[2].owners[1]: unknown owner 'nobody'"


def test_unknown_lead(tmp_path: Path) -> None:
    msg = error_of(tmp_path, GOOD.replace("leads: [wang]", "leads: [boss]"))
    assert msg.endswith("teams[0].leads[0]: unknown member 'boss'")


def test_bad_time(tmp_path: Path) -> None:
    msg = error_of(tmp_path, GOOD.replace("deadline: thu 18:00", "deadline: thu 25:00"))
    assert msg == f"{tmp_path / 'team.yaml'}: teams[0].schedule.deadline: 'thu 25:00' is not a time of day (00:00 to 23:59)"


def test_bad_weekday(tmp_path: Path) -> None:
    msg = error_of(tmp_path, GOOD.replace("open: mon 10:00", "open: someday 10:00"))
    assert "teams[0].schedule.open: expected a weekday and a time like 'thu 18:00'" in msg


def test_duplicate_key(tmp_path: Path) -> None:
    text = GOOD.replace("      deadline: thu 18:00\n", "      deadline: thu 18:00\n      deadline: fri 18:00\n")
    msg = error_of(tmp_path, text)
    assert msg == (f"{tmp_path / 'team.yaml'}:21:7: teams[0].schedule.deadline: duplicate key "
                   "(written twice; YAML would silently keep the last)")


def test_duplicate_section_key(tmp_path: Path) -> None:
    msg = error_of(tmp_path, GOOD.replace("key: risk", "key: settlement"))
    assert msg.endswith("teams[0].sections: section key 'settlement' is used twice")


def test_yaml_syntax_error(tmp_path: Path) -> None:
    msg = error_of(tmp_path, GOOD.replace("title: 风控引擎", "title: [风控引擎"))
    assert msg.startswith(f"{tmp_path / 'team.yaml'}:")
    assert "YAML syntax error" in msg


def test_unknown_key_and_timezone(tmp_path: Path) -> None:
    assert error_of(tmp_path, GOOD.replace("language: zh", "language: zh\ncolour: blue")).endswith(
        "colour: unknown key")
    assert error_of(tmp_path, GOOD.replace("Asia/Shanghai", "Mars/Olympus")).endswith(
        "timezone: unknown time zone 'Mars/Olympus' (use an IANA name like Asia/Shanghai)")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_team_file(tmp_path / "absent.yaml")


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot", *args], capture_output=True, text=True, cwd=cwd or ROOT,
                          timeout=60, env={"PATH": "/usr/bin:/bin", "HOME": str(cwd or ROOT)})


def test_check_accepts_a_valid_file(tmp_path: Path) -> None:
    write(tmp_path, GOOD)
    result = run_cli("check", "--config", str(tmp_path / "team.yaml"), "--db", f"sqlite:///{tmp_path}/w.db")
    assert result.returncode == 0, result.stderr
    assert f"ok  {tmp_path / 'team.yaml'}: 1 team(s), 8 section(s), 7 member(s)" in result.stdout
    assert "at migration 0004 (head 0004)" in result.stdout


@pytest.mark.parametrize("broken", [
    GOOD.replace("owners: [chen]", "owners: [ghost]"),
    GOOD.replace("deadline: thu 18:00", "deadline: thu 18:61"),
    GOOD.replace("  li:     {", "  wang:   {"),
    GOOD.replace("teams:", "teams: ["),
])
def test_check_refuses_a_broken_file(tmp_path: Path, broken: str) -> None:
    write(tmp_path, broken)
    result = run_cli("check", "--config", str(tmp_path / "team.yaml"), "--db", f"sqlite:///{tmp_path}/w.db")
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"weekly-bot: error: {tmp_path / 'team.yaml'}")
    assert "Traceback" not in result.stderr


def test_section_titles_and_owners_must_not_repeat(tmp_path: Path) -> None:
    assert error_of(tmp_path, GOOD.replace("title: 风控引擎", "title: 结算通道")).endswith(
        "teams[0].sections: section title '结算通道' is used twice")
    assert error_of(tmp_path, GOOD.replace("owners: [chen]", "owners: [chen, chen]")).endswith(
        "teams[0].sections[2].owners: owner 'chen' is listed twice")


def test_a_team_without_sections(tmp_path: Path) -> None:
    head = GOOD.split("    sections:")[0]
    assert error_of(tmp_path, head + "    sections: []\n").endswith("teams[0].sections: must not be empty")
