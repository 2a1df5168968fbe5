"""`weekly-bot demo`: a whole cycle of an invented department, offline, narrated step by step.

It runs the real pieces — team file, SQLite with migrations, the scheduler's tick, the chat
handlers through the console, the offline summarizer — on a clock the demo moves by hand.
"""

from __future__ import annotations

import shutil
import tempfile
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import TextIO
from zoneinfo import ZoneInfo

from bot.chat import ChatBot
from bot.config import Settings
from bot.errors import UserError
from bot.tick import tick
from bot.wiring import build_app
from handlers.console import ConsoleChat, ConsoleSender

EXAMPLES = resources.files("bot") / "demo_data"  # package data: the demo runs from an installed wheel too
TZ = ZoneInfo("Asia/Shanghai")


class MovableClock:
    def __init__(self, start: datetime) -> None:
        self.at = start

    def __call__(self) -> datetime:
        return self.at


def run_demo(out: TextIO, *, keep: bool = False) -> int:
    if not (EXAMPLES / "team.yaml").is_file():
        raise UserError("demo_data_missing")
    workdir = Path(tempfile.mkdtemp(prefix="weekly-bot-demo-"))
    try:
        _narrate(out, workdir)
    finally:
        if keep:
            out.write(f"\n(the demo's files are kept in {workdir})\n")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


def _step(out: TextIO, clock: MovableClock, when: datetime | None, title: str) -> None:
    if when is not None:
        clock.at = when
    stamp = clock.at.astimezone(TZ).strftime("%a %Y-%m-%d %H:%M")
    out.write(f"\n── {stamp} · {title}\n")
    out.flush()


def _narrate(out: TextIO, workdir: Path) -> None:
    team_file = workdir / "team.yaml"
    team_file.write_text((EXAMPLES / "team.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    clock = MovableClock(datetime(2024, 10, 7, 9, 0, tzinfo=TZ))
    # no platform credentials, no LLM: everything stays on this machine
    settings = Settings(weekly_config=str(team_file), database_url=f"sqlite:///{workdir / 'weekly.db'}",
                        openai_api_key=None, openai_base_url=None, slack_bot_token=None)
    app = build_app(settings=settings, clock=clock)
    service = app.service
    team = service.team(None)
    bot = ChatBot(service)
    chat = ConsoleChat(bot, out, "wang")
    senders = [ConsoleSender(chat)]

    def run_tick(label: str, when: datetime) -> None:
        _step(out, clock, when, label)
        sent = tick(service, senders, clock.at)
        if not sent:
            out.write("  (nothing due)\n")

    def answer(member: str, name: str) -> None:
        chat.member = member
        chat.say((EXAMPLES / "answers" / name).read_text(encoding="utf-8").strip())

    out.write(f"weekly-bot demo — {team.title}: a whole cycle, offline (no tokens, no network)\n")
    out.write(f"Team file {team_file.name}: {len(team.sections)} sections, "
              f"{len(app.team_file.members)} members, holidays: CN; database: SQLite in {workdir}\n")

    _step(out, clock, None, "import last cycle's report as history: Mid-Autumn, two weeks in one")
    report = workdir / "report-2024-W38-W39.md"
    report.write_text((EXAMPLES / "report-2024-W38-W39.md").read_text(encoding="utf-8"), encoding="utf-8")
    result = service.import_reports([str(report)], team=team)
    out.write(f"  imported {', '.join(result.cycles)}: {result.sections} sections and its 下周工作及目标\n")
    out.write("  the team's cycles (`weekly-bot cycles`; merge_short_weeks: 3 merges a week of ≤ 3 workdays):\n")
    for c in service.cycles(team, None, "2024-W43"):  # as `cycles --to 2024-W43` lists them
        out.write(f"    {c.label:<14} opens {c.opens_at:%a %m-%d %H:%M}  due {c.deadline:%a %m-%d %H:%M}  "
                  f"{c.state(clock.at)}\n")
    cycle = service.resolve_cycle(team, "2024-W41")
    out.write(f"  {cycle.label}: National Day leaves W40 one workday, so it is merged with W41; it opens "
              f"{cycle.opens_at:%a %m-%d %H:%M} (Mon 10-07 is still a holiday), deadline {cycle.deadline:%a %m-%d %H:%M}\n")

    _step(out, clock, None, "an owner will be away over the deadline")
    chat.member = "chen"
    chat.say("/weekly away 10-08 10-11")

    run_tick("tick on Monday: the holiday, nothing opens", datetime(2024, 10, 7, 10, 0, tzinfo=TZ))
    run_tick("tick: the cycle opens, every owner but the one away is prompted, with last cycle's plan",
             cycle.opens_at)
    run_tick("tick again a minute later: nothing is sent twice", datetime(2024, 10, 8, 10, 1, tzinfo=TZ))

    _step(out, clock, datetime(2024, 10, 8, 11, 30, tzinfo=TZ), "owners answer in chat")
    answer("zhang", "reconciliation.md")
    answer("li", "settlement.md")
    chat.member = "sun"
    chat.say((EXAMPLES / "answers" / "metrics.md").read_text(encoding="utf-8").strip())
    chat.say("1")  # sun owns 系统指标 and 生产事件: the first button
    out.write("  (孙浩 owns two sections: he picked 系统指标 with the first button)\n")
    chat.say("【生产事件】\n" + (EXAMPLES / "answers" / "incidents.md").read_text(encoding="utf-8").strip())
    chat.say("- 10/11 09:00 计划演练清算文件重跑")
    chat.say("/delete 3")
    out.write("  (a message deleted in chat is removed from the draft; its text stays in the history)\n")
    answer("wang", "other.md")
    chat.member = "sun"
    chat.say("/weekly show")

    run_tick("tick at the 24h reminder: only owners who have not answered", cycle.reminders[0][1])

    _step(out, clock, datetime(2024, 10, 10, 9, 15, tzinfo=TZ), "after the reminder: an answer, then an edit")
    answer("liu", "gateway.md")
    chat.say("/edit 1 1. 可用性99.99%，P99延迟172ms。\n2. 微信支付分账接口已上线，首日分账1260笔，无异常。")
    chat.member = "zhao"
    chat.say("/weekly skip")

    run_tick("tick at the 2h reminder", cycle.reminders[1][1])
    run_tick("tick at the deadline: the lead hears who is missing (not who is away)", cycle.deadline)

    _step(out, clock, datetime(2024, 10, 10, 18, 40, tzinfo=TZ), "after the deadline: a late answer")
    chat.member = "zhao"
    chat.say("1. 跨境收款：外汇申报字段补充完成，进入第二轮评审。\n2. 商户进件：资料审核自动化进度60%。")

    _step(out, clock, datetime(2024, 10, 10, 18, 45, tzinfo=TZ), "the lead asks for status and the summary")
    chat.member = "wang"
    chat.say("/weekly status")
    chat.member = "chen"
    chat.say("/weekly summary")
    chat.member = "wang"
    chat.say("/weekly summary")
    _step(out, clock, datetime(2024, 10, 10, 18, 48, tzinfo=TZ),
          "the lead edits one lesson (Slack: a modal; Feishu: a card form; here: Edit, the text, then '.')")
    form = bot.edit_form(team, None, "zh")
    lessons, goals = (f.initial.split("\n") if f.initial else [] for f in form.fields)
    lessons = ["清算文件生成要有超时告警和自动重跑（来源：生产事件）", *lessons[1:]]
    chat.say("1")  # Edit: the form, prefilled
    for line in ["## 收获与反思", *lessons, "# 下周工作及目标", *goals, "."]:
        chat.say(line)
    _step(out, clock, datetime(2024, 10, 10, 18, 50, tzinfo=TZ),
          "the lead publishes exactly what they reviewed (pressing again posts nothing)")
    chat.say("3")
    chat.say("3")
    chat.say("/weekly publish")
    nxt = service.resolve_cycle(team, "2024-W42")
    carried = service.previous_goals(team, nxt)
    out.write(f"  next cycle's prompts show these {len(carried)} published goals as 上周计划 "
              f"(a draft never carries over)\n")
    _step(out, clock, datetime(2024, 10, 10, 18, 55, tzinfo=TZ),
          "the lead asks for the web view: history, participation chart, search, exports")
    chat.say("/weekly web")
    out.write("  (a link that works once, for 10 minutes, served by `weekly-bot serve` on the same database;\n"
              "   the demo's clock is in 2024, so this one has long expired: see the README's Web view)\n")
    out.write("\nDone: the same handlers serve Slack (`weekly-bot serve`) and the terminal (`weekly-bot chat`).\n")
