"""Cycles as the department lives them (spec §3): merged around holidays, stored as records, people away.

Driven through the use-cases, the tick and the console chat on SQLite and (when set) PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.chat import ChatBot
from bot.errors import UserError
from bot.tick import tick
from bot.wiring import App

from .conftest import FixedClock, at, console, said
from .test_tick import Inbox

TEAM = """\
timezone: Asia/Shanghai
language: zh
members:
  zhou: {{name: 周总, slack: U0ZHOU0001}}
  hao:  {{name: 郝店, slack: U0HAO00001}}
  bai:  {{name: 白行, slack: U0BAI00001}}
  ou:   {{name: 欧普, slack: U0OU000001, away: [2024-10-09..2024-10-11, 2024-10-31]}}
teams:
  - key: pay
    title: 支付中心周报
    leads: [zhou]
    schedule:
{schedule}
    sections:
      - {{key: haodian, title: 好店, owners: [hao]}}
      - {{key: bank, title: 标准银行账户, owners: [bai]}}
      - {{key: ops, title: 运维, owners: [ou], style: heading}}
"""
MERGED = """\
      weeks: 1
      open: mon 10:00
      deadline: thu 18:00
      reminders: [24h, 2h]
      holidays: CN
      merge_short_weeks: 3"""
WEEKLY = MERGED.replace("\n      merge_short_weeks: 3", "")
BIWEEKLY = WEEKLY.replace("weeks: 1", "weeks: 2\n      start: 2024-W42")

MID_AUTUMN = """\
# 2024-W38&W39

Created: 2024年9月26日 18:10

- 【好店】
    1. 好店商户签约112家。
- 【标准银行账户】
    1. 开户流程方案评审通过。

## 【运维】

- 中秋值班无异常。

## 收获与反思

1. 节前值班要提前一周排好。

# 下周工作及目标

1. 好店下阶段工作沟通和落实
2. 银行标准账户开户流程梳理，10/13组织第三轮研讨
3. 国庆值班表更新
"""


def write_team(path: Path, schedule: str) -> None:
    path.write_text(TEAM.format(schedule=schedule), encoding="utf-8")


@pytest.fixture
def team_file(tmp_path: Path) -> Path:
    path = tmp_path / "team.yaml"
    write_team(path, MERGED)
    return path


@pytest.fixture
def mid_autumn(tmp_path: Path) -> Path:
    path = tmp_path / "report-2024-W38-W39.md"
    path.write_text(MID_AUTUMN, encoding="utf-8")
    return path


NATIONAL_DAY_OPENS = at("2024-10-08 10:00")


def test_the_plan_carries_over_to_the_merged_national_day_cycle(make_app: Callable[..., App], mid_autumn: Path
                                                                 ) -> None:
    app = make_app(FixedClock(at("2024-10-07 09:00")))
    team = app.service.team(None)
    assert app.service.import_reports([str(mid_autumn)], team=team).cycles == ["2024-W38&W39"]
    inbox = Inbox()
    assert tick(app.service, [inbox], at("2024-10-07 10:00")) == []  # Mon 10-07 is still a holiday
    sent = tick(app.service, [inbox], NATIONAL_DAY_OPENS)
    assert {(s.due.cycle, s.due.member, s.due.kind) for s in sent} == {
        ("2024-W40&W41", "hao", "prompt"), ("2024-W40&W41", "bai", "prompt")}  # 欧普 is away on the deadline
    (hao,) = inbox.to("hao")
    assert hao == (
        "郝店你好，支付中心周报 2024-W40&W41 开始收集了。请回复【好店】这两周的进展，截止 10-10 18:00。\n"
        "【好店】\n"
        "  上期计划：\n"
        "    - 好店下阶段工作沟通和落实")
    (bai,) = inbox.to("bai")
    assert "  上期计划：\n    - 银行标准账户开户流程梳理，10/13组织第三轮研讨" in bai
    assert "本周" not in hao + bai and hao.count("2024-W40&W41") == 1 and hao.count("周报") == 1
    # the goals were matched to their sections when imported: the report and the summarizer see them keyed
    goals = app.service.previous_goals(team, app.service.resolve_cycle(team, "2024-W41"))
    assert [(g.text[:6], g.sources) for g in goals] == [
        ("好店下阶段工", ("haodian",)), ("银行标准账户", ("bank",)), ("国庆值班表更", ())]


def test_status_and_report_reach_a_merged_cycle_by_either_week(make_app: Callable[..., App], mid_autumn: Path
                                                                ) -> None:
    app = make_app(FixedClock(at("2024-10-09 12:00")))
    team = app.service.team(None)
    app.service.import_reports([str(mid_autumn)], team=team)
    for label in ("2024-W38&W39", "2024-W38", "2024-w39"):
        status = app.service.status(team, label).to_json()
        assert (status["cycle"], status["opens_at"], status["deadline"]) == (
            "2024-W38&W39", "2024-09-23T10:00:00+08:00", "2024-09-26T18:00:00+08:00")
    assert [s["state"] for s in app.service.status(team, "2024-W38").to_json()["sections"]] == ["submitted"] * 3
    national = app.service.status(team, "2024-W40").to_json()
    assert (national["cycle"], national["opens_at"], national["deadline"]) == (
        "2024-W40&W41", "2024-10-08T10:00:00+08:00", "2024-10-10T18:00:00+08:00")
    report = app.service.report(team, "2024-W39")
    assert report.markdown.startswith("# 2024-W38&W39\n\nCreated: 2024年9月26日 18:10\n")
    assert report.summary_source == "imported"


def test_an_owner_away_over_the_deadline_is_left_alone_and_a_late_answer_shows(
        make_app: Callable[..., App]) -> None:
    clock = FixedClock(NATIONAL_DAY_OPENS)
    app = make_app(clock)
    team = app.service.team(None)
    inbox = Inbox()
    tick(app.service, [inbox], NATIONAL_DAY_OPENS)
    reminders = tick(app.service, [inbox], at("2024-10-09 18:00"))  # the 24h reminder
    assert sorted((s.due.member, s.due.kind, s.due.offset) for s in reminders) == [
        ("bai", "reminder", "24h"), ("hao", "reminder", "24h")]
    escalation = tick(app.service, [inbox], at("2024-10-10 18:00"))
    assert inbox.to("zhou") == ["支付中心周报 2024-W40&W41 已到截止时间，仍未提交：【好店】(郝店)、【标准银行账户】(白行)"]
    assert [s.due.kind for s in escalation] == ["escalation"] and inbox.to("ou") == []
    status = app.service.status(team)
    assert [s.state for s in status.sections] == ["missing", "missing", "away"]
    assert status.missing_owners == ["hao", "bai"]

    clock.now = at("2024-10-10 19:30")  # after the deadline
    app.service.record("hao", "好店签约商户新增35家。", platform="test", message_id="late-1")
    data = app.service.status(team).to_json()
    assert data["sections"][0] == {"key": "haodian", "title": "好店", "owners": ["hao"], "state": "submitted",
                                   "late": True}
    assert data["sections"][2] == {"key": "ops", "title": "运维", "owners": ["ou"], "state": "away", "away": ["ou"]}
    text = ChatBot(app.service).status_text(team, None).split("\n")
    assert text == [
        "支付中心周报 2024-W40&W41  开始 10-08 10:00  截止 10-10 18:00",
        "✅ 好店 — 郝店 (已提交，迟交)",
        "⏳ 标准银行账户 — 白行 (未提交)",
        "🌴 运维 — 欧普 (请假)",
        "仍未提交：白行",
    ]
    report = app.service.report(team, summarize=False)
    assert "## 【运维】\n\n（请假）\n" in report.markdown


def test_away_said_in_chat_adds_to_the_team_file_and_can_be_taken_back(make_app: Callable[..., App]) -> None:
    clock = FixedClock(at("2024-10-14 09:00"))
    app = make_app(clock)
    team = app.service.team(None)
    chat, out = console(app, "bai")
    chat.handle("/weekly away 10-16 10-18")
    assert said(out)[-1] == ("  bot → 白行: 已记录你请假：2024-10-16..2024-10-18。截止日在这期间的 2024-W42 不会提醒你，"
                       "也不会算作未提交。")
    chat.member = "ou"
    chat.handle("/weekly away 2024-10-17")
    w42 = app.service.resolve_cycle(team, "2024-W42")
    assert app.service.away_on(team, w42) == {"bai", "ou"}
    assert app.service.away_on(team, app.service.resolve_cycle(team, "2024-W44")) == {"ou"}  # the file's 10-31 (Thu)
    inbox = Inbox()
    assert {s.due.member for s in tick(app.service, [inbox], at("2024-10-14 10:00"))} == {"hao"}
    chat.member = "bai"
    chat.handle("/weekly away")
    assert said(out)[-1] == "  bot → 白行: 你登记的请假：2024-10-16..2024-10-18"
    chat.handle("/weekly away off")
    assert said(out)[-1] == "  bot → 白行: 已取消你在聊天里登记的 1 段请假（今天起）。"
    chat.member = "ou"
    chat.handle("/weekly away off")
    assert said(out)[-1] == ("  bot → 欧普: 已取消你在聊天里登记的 1 段请假（今天起）。团队配置文件里的请假仍然有效：2024-10-31")
    assert app.service.away_on(team, w42) == frozenset()
    assert {s.due.member for s in tick(app.service, [inbox], at("2024-10-14 10:05"))} == {"bai", "ou"}
    chat.handle("/weekly away 10-20 10-18")
    assert said(out)[-1] == "  bot → 欧普: 请假的结束日期早于开始日期。"
    chat.handle("/weekly away soon")
    assert said(out)[-1].startswith("  bot → 欧普: 用法：/weekly away 开始日期 [结束日期]")


def test_a_weekly_team_reaches_an_imported_merged_cycle_and_keeps_its_cycles_when_it_turns_biweekly(
        make_app: Callable[..., App], team_file: Path, mid_autumn: Path) -> None:
    write_team(team_file, WEEKLY)
    clock = FixedClock(at("2024-10-09 11:00"))
    app = make_app(clock)
    team = app.service.team(None)
    app.service.import_reports([str(mid_autumn)], team=team)
    assert app.service.report(team, "2024-W38&W39", summarize=False).markdown.startswith("# 2024-W38&W39\n")
    assert app.service.status(team, "2024-W38&W39").cycle.imported
    # weekly: W41 opens Tue 10-08 and takes an answer; W40 (the eve of National Day) was never opened here
    assert app.service.current_cycle(team).label == "2024-W41"
    app.service.record("hao", "好店签约商户新增35家。", platform="test", message_id="w41-1")
    app.store.engine.dispose()

    write_team(team_file, BIWEEKLY)
    clock.now = at("2024-10-22 11:00")
    later = make_app(clock)
    team = later.service.team(None)
    w41 = later.service.report(team, "2024-W41", summarize=False)
    assert w41.cycle == "2024-W41" and "好店签约商户新增35家。" in w41.markdown
    assert later.service.status(team, "2024-W41").sections[0].state == "submitted"
    assert later.service.report(team, "2024-W39", summarize=False).cycle == "2024-W38&W39"
    assert [(c.label, c.state(clock.now)) for c in later.service.cycles(team, "2024-W37", "2024-W45")] == [
        ("2024-W38&W39", "imported"), ("2024-W41", "closed"), ("2024-W42&W43", "open"), ("2024-W44&W45", "upcoming")]
    with pytest.raises(UserError, match="2024-W40 is before this team's first cycle, 2024-W42&W43"):
        later.service.resolve_cycle(team, "2024-W40")


def test_a_schedule_change_leaves_an_opened_cycle_as_it_was(make_app: Callable[..., App], team_file: Path) -> None:
    clock = FixedClock(at("2024-10-15 11:00"))
    app = make_app(clock)
    team = app.service.team(None)
    tick(app.service, [Inbox()], at("2024-10-14 10:00"))  # W42 opens: stored from now on
    app.store.engine.dispose()
    write_team(team_file, MERGED + "\n      merge: [2024-W42&W43]")
    later = make_app(clock)
    team = later.service.team(None)
    w42 = later.service.resolve_cycle(team, "2024-W42")
    assert (w42.label, w42.deadline) == ("2024-W42", at("2024-10-17 18:00"))
    assert [c.label for c in later.service.cycles(team, "2024-W42", "2024-W44")] == ["2024-W42", "2024-W43", "2024-W44"]


def test_import_refuses_a_cycle_sharing_weeks_with_a_stored_one(make_app: Callable[..., App], mid_autumn: Path,
                                                                 tmp_path: Path) -> None:
    app = make_app(FixedClock(at("2024-10-09 11:00")))
    team = app.service.team(None)
    app.service.import_reports([str(mid_autumn)], team=team)
    w39 = tmp_path / "w39.md"
    w39.write_text(MID_AUTUMN.replace("# 2024-W38&W39", "# 2024-W39"), encoding="utf-8")
    with pytest.raises(UserError, match=r"2024-W39 shares a week with cycle 2024-W38&W39, already stored: "
                                        r"import it as 2024-W38&W39 \(--cycle 2024-W38&W39\)"):
        app.service.import_reports([str(w39)], team=team)
    # the same report again revises, never doubles
    app.service.import_reports([str(mid_autumn)], team=team)
    assert len(app.store.cycles(team_key="pay")) == 1


def test_cycles_by_default_list_the_past_that_happened_the_open_cycle_and_the_coming_ones(
        make_app: Callable[..., App], mid_autumn: Path) -> None:
    app = make_app(FixedClock(at("2024-10-09 12:00")))
    team = app.service.team(None)
    app.service.import_reports([str(mid_autumn)], team=team)
    now = app.service.now()
    listed = [(c.label, c.state(now)) for c in app.service.cycles(team)]
    # 2024-W37 was four weeks back, before the bot ran: no cycle of its, so not "closed" by default
    assert listed[:4] == [("2024-W38&W39", "imported"), ("2024-W40&W41", "open"), ("2024-W42", "upcoming"),
                          ("2024-W43", "upcoming")]
    assert [state for _, state in listed[2:]] == ["upcoming"] * (len(listed) - 2)
    asked = [(c.label, c.state(now)) for c in app.service.cycles(team, "2024-W36", "2024-W39")]
    assert asked == [("2024-W36", "closed"), ("2024-W37", "closed"), ("2024-W38&W39", "imported")]  # as asked


def test_cycles_command_lists_merged_cycles_as_json(tmp_path: Path, team_file: Path) -> None:
    import subprocess
    import sys

    def run(*args: str) -> dict[str, object]:
        env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "WEEKLY_CONFIG": str(team_file),
               "DATABASE_URL": f"sqlite:///{tmp_path / 'weekly.db'}"}
        done = subprocess.run([sys.executable, "-m", "bot", "cycles", *args, "--format", "json"],
                              capture_output=True, text=True, env=env, timeout=60)
        assert done.returncode == 0 and done.stderr == "", done.stderr
        return json.loads(done.stdout)  # type: ignore[no-any-return]

    data = run("--from", "2024-W36", "--to", "2024-W43")
    cycles = data["cycles"]
    assert isinstance(cycles, list)
    assert [c["label"] for c in cycles] == ["2024-W36", "2024-W37", "2024-W38&W39", "2024-W40&W41", "2024-W42",
                                            "2024-W43"]
    assert cycles[3] == {"label": "2024-W40&W41", "weeks": ["2024-W40", "2024-W41"],
                         "opens_at": "2024-10-08T10:00:00+08:00", "deadline": "2024-10-10T18:00:00+08:00",
                         "state": "closed"}
    year = [c["label"] for c in run("--from", "2025-W01", "--to", "2025-W52")["cycles"]]  # type: ignore[union-attr]
    assert "2025-W05&W06" in year and "2025-W40&W41" in year and "2025-W05" not in year
    write_team(team_file, MERGED + "\n      merge: [2024-W42&W43]")
    labels = [c["label"] for c in run("--from", "2024-W40", "--to", "2024-W44")["cycles"]]  # type: ignore[union-attr]
    assert labels == ["2024-W40&W41", "2024-W42&W43", "2024-W44"]
