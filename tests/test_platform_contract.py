"""A third chat platform, written here in the test only, through the platform contract (bot/platform.py):
registered, it is reached by the scheduler and drives a whole cycle — no change outside this file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.chat import ChatBot, Outcome, Reply
from bot.config import Settings
from bot.platform import Connection, Context, Incoming, Platform, WebEdge
from bot.tick import tick
from bot.wiring import App, build_app, build_senders
from handlers import registry
from handlers.checks import check_platforms

from .conftest import FixedClock, at

TEAM = """\
timezone: Asia/Shanghai
language: zh
members:
  zhou: {name: 周总, ids: {pigeon: P-zhou}}
  li:   {name: 李雷, ids: {pigeon: P-li}}
  ma:   {name: 马丽, ids: {pigeon: P-ma}}
teams:
  - key: ops
    title: 运维中心周报
    leads: [zhou]
    schedule: {open: mon 10:00, deadline: thu 18:00, reminders: [24h], holidays: CN}
    sections:
      - {key: gateway, title: 支付网关, owners: [li]}
      - {key: dba, title: 数据库, owners: [ma]}
"""


class Pigeon:
    """The platform's side: people's ids, and the messages the bot sent them."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.inbox: list[tuple[str, str]] = []  # (pigeon id, text)

    # -- bot.platform.Platform ----------------------------------------------------------------
    platform = "pigeon"

    def can_reach(self, member: str) -> bool:
        return member in self.ctx.service.platform_ids(self.platform)

    def send(self, member: str, reply: Reply) -> None:
        self.inbox.append((self.ctx.service.platform_ids(self.platform)[member], reply.text))

    def publish(self, channel: str, reply: Reply) -> None:
        self.inbox.append((f"#{channel}", reply.text))

    # -- the edge: the platform's own payloads become Incoming events ---------------------------
    def deliver(self, payload: dict[str, str]) -> list[str]:
        """A payload as this platform sends it; the texts the bot answers with, slow work included."""
        kinds = {"msg": "message", "msg.edit": "edit", "cmd": "command"}
        event = Incoming(self.platform, payload["from"], kinds[payload["type"]], payload.get("body", ""),  # type: ignore[arg-type]
                         message_id=payload.get("id"), event_id=payload.get("delivery"))
        outcome: Outcome = ChatBot(self.ctx.service).handle(event, strict=True)
        replies = list(outcome.replies) + (outcome.later() if outcome.later else [])
        return [r.text for r in replies]

    def to(self, pigeon_id: str) -> list[str]:
        return [text for who, text in self.inbox if who == pigeon_id]


class PigeonPlugin:
    """bot.platform.PlatformPlugin for the pigeon post."""

    name = "pigeon"

    def __init__(self) -> None:
        self.built: list[Pigeon] = []

    def configured(self, settings: Settings) -> bool:
        return True

    def sender(self, ctx: Context) -> Platform | None:
        self.built.append(Pigeon(ctx))
        return self.built[-1]

    def web_edge(self, ctx: Context) -> WebEdge | None:
        return None

    def connection(self, ctx: Context) -> Connection | None:
        return None

    def check(self, settings: Settings) -> list[tuple[bool, str]]:
        return [(True, "Pigeon: the loft answers")]


@pytest.fixture
def pigeon_app(tmp_path: Path, prepared_db: str) -> Iterator[tuple[App, PigeonPlugin, FixedClock]]:
    team = tmp_path / "team.yaml"
    team.write_text(TEAM, encoding="utf-8")
    plugin = PigeonPlugin()
    registry.register(plugin)
    clock = FixedClock(at("2024-10-14 09:00"))
    try:
        yield build_app(settings=Settings(weekly_config=str(team), database_url=prepared_db), clock=clock), plugin, clock
    finally:
        registry.unregister("pigeon")


def test_a_registered_platform_runs_a_whole_cycle(pigeon_app: tuple[App, PigeonPlugin, FixedClock]) -> None:
    app, plugin, clock = pigeon_app
    senders = build_senders(app)
    assert [s.platform for s in senders] == ["pigeon"]  # no Slack or Feishu credentials here
    pigeon = plugin.built[0]

    clock.now = at("2024-10-14 10:00")
    sent = tick(app.service, senders, clock.now)
    assert sorted((s.due.member, s.due.kind, s.platform) for s in sent) == [
        ("li", "prompt", "pigeon"), ("ma", "prompt", "pigeon")]
    assert pigeon.to("P-li") == ["李雷你好，运维中心周报 2024-W42 开始收集了。请回复【支付网关】本周的进展，截止 10-17 18:00。"]

    clock.now = at("2024-10-14 11:00")
    assert pigeon.deliver({"type": "msg", "from": "P-li", "id": "m-1", "body": "可用性99.95%"}) == [
        "已记录到【支付网关】（2024-W42）：可用性99.95%"]
    assert pigeon.deliver({"type": "msg.edit", "from": "P-li", "id": "m-1", "body": "可用性99.99%"}) == [
        "已更新【支付网关】的这条内容：可用性99.99%"]
    assert pigeon.deliver({"type": "msg", "from": "P-nobody", "id": "m-2", "body": "hello"}) == [
        "我还不认识你：请让管理员在团队配置文件里加上你的账号。"]

    reminders = tick(app.service, senders, at("2024-10-16 18:00"))
    assert [(s.due.member, s.due.kind) for s in reminders] == [("ma", "reminder")]
    assert pigeon.to("P-ma")[-1].startswith("提醒：运维中心周报 2024-W42 将在 10-17 18:00 截止，你负责的【数据库】还没有提交。")
    assert pigeon.to("P-li") == pigeon.to("P-li")[:1]  # answered: no reminder

    clock.now = at("2024-10-17 18:30")
    summary = pigeon.deliver({"type": "cmd", "from": "P-zhou", "body": "summary"})
    assert summary[0] == "正在生成 2024-W42 的周报，稍后发给你。"
    preview = summary[1]  # the closing sections first; the report itself is the attached file
    assert preview.startswith("运维中心周报 2024-W42 周报预览。请先核对收尾部分（当前：离线规则起草）：\n\n## 收获与反思\n")
    assert "# 下周工作及目标" in preview and preview.endswith("编辑、重新生成或发布：")
    assert pigeon.deliver({"type": "cmd", "from": "P-li", "body": "summary"}) == [
        "只有 运维中心周报 的负责人可以使用 /weekly summary。"]
    assert ("pigeon" in [p.name for p in registry.plugins()]
            and (True, "Pigeon: the loft answers") in check_platforms(app.settings))


def test_the_platform_is_gone_once_unregistered(pigeon_app: tuple[App, PigeonPlugin, FixedClock]) -> None:
    app, _plugin, _clock = pigeon_app
    registry.unregister("pigeon")
    assert build_senders(app) == []
    assert [p.name for p in registry.plugins()] == ["slack", "feishu"]

