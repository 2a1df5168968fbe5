"""The calendar in action on a fixed clock: prompts, reminders and escalation, never doubled or dropped."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

from bot.chat import Reply
from bot.due import Due, due_at
from bot.notify import SendError
from bot.tick import STALE_CLAIM, tick
from bot.wiring import App

from .conftest import FixedClock, at

OWNERS = ["li", "zhang", "chen", "liu", "zhao", "sun", "wang"]
W42_OPEN, W42_DEADLINE = at("2024-10-14 10:00"), at("2024-10-17 18:00")


class Inbox:
    """A platform that records what it was asked to deliver (the fake side of a chat API)."""

    platform = "test"

    def __init__(self, fail_for: set[str] | None = None) -> None:
        self.sent: list[tuple[str, str]] = []
        self.fail_for = fail_for or set()
        self.lock = threading.Lock()

    def can_reach(self, member: str) -> bool:
        return True

    def send(self, member: str, reply: Reply) -> None:
        if member in self.fail_for:
            raise SendError("channel_not_found")
        with self.lock:
            self.sent.append((member, reply.text))

    def publish(self, channel: str, reply: Reply) -> None:
        with self.lock:
            self.sent.append((f"#{channel}", reply.text))

    def to(self, member: str) -> list[str]:
        return [text for m, text in self.sent if m == member]


def test_every_owner_is_prompted_once_naming_their_section(make_app: Callable[..., App]) -> None:
    app = make_app(FixedClock(W42_OPEN))
    inbox = Inbox()
    assert tick(app.service, [inbox], W42_OPEN - timedelta(minutes=1)) == []  # W41 is past, W42 not open
    sent = tick(app.service, [inbox], W42_OPEN)
    assert sorted(s.due.member for s in sent) == sorted(OWNERS)
    assert all(s.due.kind == "prompt" and s.ok for s in sent)
    assert inbox.to("zhang") == [
        "张伟你好，支付清算中心周报 2024-W42 开始收集了。请回复【清分对账】本周的进展，截止 10-17 18:00。\n"
        "【清分对账】\n  建议包含：对账差错、处理时效"]
    assert "请回复【系统指标、生产事件】" in inbox.to("sun")[0]
    for minute in range(1, 4):
        assert tick(app.service, [inbox], W42_OPEN + timedelta(minutes=minute)) == []
    assert len(inbox.sent) == len(OWNERS)


def test_two_tickers_at_once_send_nothing_twice(make_app: Callable[..., App]) -> None:
    apps = [make_app(FixedClock(W42_OPEN)) for _ in range(4)]  # four processes' worth of engines
    inbox = Inbox()
    barrier = threading.Barrier(len(apps))

    def run(app: App) -> None:
        barrier.wait()
        tick(app.service, [inbox], W42_OPEN + timedelta(seconds=5))

    threads = [threading.Thread(target=run, args=(a,)) for a in apps]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sorted(m for m, _ in inbox.sent) == sorted(OWNERS)


def test_reminders_go_only_to_owners_who_have_not_answered(make_app: Callable[..., App]) -> None:
    clock = FixedClock(W42_OPEN)
    app = make_app(clock)
    inbox = Inbox()
    tick(app.service, [inbox], W42_OPEN)
    clock.now = at("2024-10-15 09:00")
    for member, text in (("zhang", "对账差错2笔。"), ("chen", "灰度10%。"), ("wang", "无。")):
        app.service.record(member, text, platform="test", message_id=f"m-{member}")
    app.service.record("sun", "【系统指标】可用性99.99%。", platform="test", message_id="m-sun")
    app.service.skip("liu")
    inbox.sent.clear()
    sent = tick(app.service, [inbox], at("2024-10-16 18:00"))
    assert sorted((s.due.member, s.due.kind, s.due.offset, s.due.sections) for s in sent) == [
        ("li", "reminder", "24h", ("settlement", "o1_business")),
        ("sun", "reminder", "24h", ("incidents",)),
        ("zhao", "reminder", "24h", ("o1_business",)),
    ]
    assert inbox.to("sun") == ["提醒：支付清算中心周报 2024-W42 将在 10-17 18:00 截止，你负责的【生产事件】还没有提交。"
                               "直接回复即可，或 /weekly skip 跳过。"]
    assert tick(app.service, [inbox], at("2024-10-16 18:01")) == []


def test_one_reminder_when_24h_and_2h_are_both_due(make_app: Callable[..., App]) -> None:
    app = make_app(FixedClock(W42_OPEN))
    inbox = Inbox()
    tick(app.service, [inbox], W42_OPEN)
    inbox.sent.clear()
    sent = tick(app.service, [inbox], at("2024-10-17 16:30"))  # the clock was down since Monday
    assert {(s.due.kind, s.due.offset) for s in sent} == {("reminder", "2h")}
    assert sorted(s.due.member for s in sent) == sorted(OWNERS)
    assert tick(app.service, [inbox], at("2024-10-17 17:00")) == []


def test_at_the_deadline_the_leads_hear_who_is_missing(make_app: Callable[..., App]) -> None:
    clock = FixedClock(W42_OPEN)
    app = make_app(clock)
    inbox = Inbox()
    for member in ("li", "zhang", "chen", "liu", "wang"):
        app.service.record(member, "【结算通道】ok" if member == "li" else "ok", platform="test", message_id=member)
    app.service.skip("zhao")
    sent = tick(app.service, [inbox], W42_DEADLINE)
    assert [(s.due.member, s.due.kind) for s in sent] == [("wang", "escalation")]
    assert inbox.to("wang") == [
        "支付清算中心周报 2024-W42 已到截止时间，仍未提交：【O1 业务服务】(李雷)、【系统指标】(孙浩)、【生产事件】(孙浩)"]  # 赵敏 skipped
    assert tick(app.service, [inbox], W42_DEADLINE + timedelta(hours=1)) == []
    # a week-old escalation is news, not an alarm: after the window nothing goes
    other = make_app(FixedClock(W42_OPEN))
    assert tick(other.service, [Inbox()], W42_DEADLINE + timedelta(days=3)) == []


def test_holiday_shifted_times_drive_the_tick(make_app: Callable[..., App]) -> None:
    app = make_app(FixedClock(at("2024-10-07 10:00")))
    team = app.service.team(None)
    status = app.service.status(team, "2024-W41").to_json()
    assert status["opens_at"] == "2024-10-08T10:00:00+08:00"
    inbox = Inbox()
    assert tick(app.service, [inbox], at("2024-10-07 10:00")) == []  # National Day: W41 not open yet
    sent = tick(app.service, [inbox], at("2024-10-08 10:00"))
    assert {s.due.cycle for s in sent} == {"2024-W40&W41"} and len(sent) == len(OWNERS)
    # Weekly, W40 had an 8-hour window on the eve of National Day; merged, nothing is due then
    assert tick(app.service, [inbox], at("2024-09-30 10:00")) == []
    assert tick(app.service, [inbox], at("2024-09-30 18:00")) == []


def test_a_restart_loses_nothing_and_doubles_nothing(make_app: Callable[..., App]) -> None:
    inbox = Inbox()
    first = make_app(FixedClock(W42_OPEN))
    tick(first.service, [inbox], W42_OPEN)
    first.store.engine.dispose()
    second = make_app(FixedClock(at("2024-10-16 18:30")))  # a new process, the same database
    second.service.record("zhang", "ok", platform="test", message_id="z1")
    sent = tick(second.service, [inbox], at("2024-10-16 18:30"))
    assert sorted(s.due.member for s in sent) == sorted(set(OWNERS) - {"zhang"})
    assert {(s.due.kind, s.due.offset) for s in sent} == {("reminder", "24h")}
    assert len(inbox.to("zhang")) == 1  # the prompt only


def test_a_failed_send_is_retried_not_dropped(make_app: Callable[..., App]) -> None:
    app = make_app(FixedClock(W42_OPEN))
    broken = Inbox(fail_for={"li"})
    sent = tick(app.service, [broken], W42_OPEN)
    assert [s.ok for s in sent if s.due.member == "li"] == [False]
    assert [o.last_error for o in app.store.outgoing(status="failed")] == ["test: channel_not_found"]
    fixed = Inbox()
    retried = tick(app.service, [fixed], W42_OPEN + timedelta(minutes=1))
    assert [(s.due.member, s.ok) for s in retried] == [("li", True)]
    assert tick(app.service, [fixed], W42_OPEN + timedelta(minutes=2)) == []


def test_a_claim_whose_process_died_is_taken_back(make_app: Callable[..., App]) -> None:
    app = make_app(FixedClock(W42_OPEN))
    due = Due("clearing", "2024-W42", "li", "prompt", "", ("settlement", "o1_business"))
    assert app.store.claim_outgoing(key=due.key, team_key="clearing", cycle_label="2024-W42", member_key="li",
                                    kind="prompt", offset_label="", at=W42_OPEN)
    inbox = Inbox()
    tick(app.service, [inbox], W42_OPEN + timedelta(minutes=1))
    assert inbox.to("li") == []  # claimed a minute ago: maybe still sending
    tick(app.service, [inbox], W42_OPEN + STALE_CLAIM + timedelta(minutes=1))
    assert len(inbox.to("li")) == 1


def test_due_is_a_pure_function(make_app: Callable[..., App]) -> None:
    app = make_app()
    team = app.service.team(None)
    cycle = app.service.timeline(team).by_label("2024-W42")
    dues = due_at(team, cycle, at("2024-10-17 16:30"), answered={"li": {"settlement"}}, skipped={"zhao"})
    assert [(d.member, d.kind, d.offset, d.sections) for d in dues if d.member in ("li", "zhao")] == [
        ("li", "prompt", "", ("settlement", "o1_business")),
        ("li", "reminder", "2h", ("o1_business",)),
    ]


def test_a_co_owner_is_not_chased_for_a_section_already_answered(make_app: Callable[..., App]) -> None:
    clock = FixedClock(W42_OPEN)
    app = make_app(clock)
    inbox = Inbox()
    tick(app.service, [inbox], W42_OPEN)
    app.service.record("li", "【O1 业务服务】跨境收款完成。", platform="test", message_id="li-o1")
    inbox.sent.clear()
    sent = tick(app.service, [inbox], at("2024-10-16 18:00"))
    assert "zhao" not in {s.due.member for s in sent}  # 李雷 answered O1 for both of its owners
    assert [s.due.sections for s in sent if s.due.member == "li"] == [("settlement",)]


def test_the_prompt_shows_the_imported_plan_not_a_later_draft(make_app: Callable[..., App]) -> None:
    from .conftest import EXAMPLES

    app = make_app(FixedClock(at("2024-10-08 10:00")))
    team = app.service.team(None)
    app.service.import_reports([str(EXAMPLES / "report-2024-W40.md")], team=team)
    app.service.report(team, "2024-W40", summarize=True)  # a read-only look stores an offline draft
    inbox = Inbox()
    tick(app.service, [inbox], at("2024-10-08 10:00"))
    assert "上周计划：\n    - 商户欺诈评分模型v3灰度10%流量，误拦率控制在0.15%以内。" in inbox.to("chen")[0]


def test_when_one_platform_cannot_reach_a_member_the_next_one_does(make_app: Callable[..., App]) -> None:
    app = make_app(FixedClock(W42_OPEN))
    first, second = Inbox(fail_for={"li"}), Inbox()
    first.platform, second.platform = "slack", "feishu"
    sent = tick(app.service, [first, second], W42_OPEN)
    assert {(s.due.member, s.platform, s.ok) for s in sent if s.due.member in ("li", "zhang")} == {
        ("li", "feishu", True), ("zhang", "slack", True)}
    assert len(second.to("li")) == 1 and first.to("li") == []
