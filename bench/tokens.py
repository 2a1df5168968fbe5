"""Tokens sent to the model for a report (issue 13: ≤ 1.3 × the owners' text plus the fixed prompt on a
seed-size report). The seed is bot/demo_data/report-2024-W40.md, imported after W39 so that last
cycle's goals go along as they would; the request is built as the service builds it and summarized by
the real Summarizer, its chat model a recorder that answers a fixed JSON. Tokens are the Summarizer's own
estimate (bot.summarize.estimate_tokens: a CJK character ≈ 1, other text ≈ 4 characters; 8 a message).

The floor is what no prompt can avoid: the owners' text (each section's, as stored) plus the fixed
prompt — the system message and the user message's own words, as sent with no section and no goal.
The strict line counts the user message's words as overhead too (floor: owners' text + system message).
Prints figures, asserts nothing."""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.config import Settings  # noqa: E402
from bot.model import SectionText, SummaryRequest  # noqa: E402
from bot.summarize import ChatReply, Summarizer, estimate_prompt_tokens, estimate_tokens  # noqa: E402
from bot.wiring import build_app  # noqa: E402
from prompts import load_prompt  # noqa: E402

DEMO = ROOT / "bot" / "demo_data"
TARGET = 1.3


class Recorder:
    """A chat model (bot.summarize.ChatModel) that keeps what it was sent and answers one item per part."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []

    def complete(self, *, system: str, user: str, schema: dict[str, Any], format_hint: str = "",
                 max_tokens: int | None = None) -> ChatReply:
        self.calls.append((system, user, format_hint))
        keys = schema["properties"]["reflections"]["items"]["properties"]["sources"]["items"]["enum"]
        item = {"text": "继续推进。", "sources": keys[:1]}
        return ChatReply(json.dumps({"reflections": [item], "next_week": [item]}, ensure_ascii=False))


def measure(label: str, request: SummaryRequest) -> None:
    recorder = Recorder()
    Summarizer(recorder, model="bench").summarize(request)
    prompt = load_prompt(request.language)
    present = [s for s in request.sections if s.content.strip()]
    owners = sum(estimate_tokens(s.content) for s in present)
    empty_user = prompt.user(team=request.team_title, cycle=request.cycle, sections="", last_goals="")
    fixed = estimate_prompt_tokens(prompt.system, empty_user)
    system_only = estimate_tokens(prompt.system) + 16
    sent = sum(estimate_prompt_tokens(system, user) for system, user, _ in recorder.calls)
    hint = sum(estimate_tokens(f"\n\n{h}") for _, _, h in recorder.calls)  # when the server enforces no schema
    goals = sum(estimate_tokens(g.text) for g in request.last_goals)
    ratio = sent / (owners + fixed)
    print(f"[tokens] {label}: {len(present)} sections, {len(request.last_goals)} goals of last cycle, "
          f"{len(recorder.calls)} call(s)")
    print(f"[tokens]   floor: owners' text {owners} + fixed prompt {fixed} (system {estimate_tokens(prompt.system)}) "
          f"= {owners + fixed}; last cycle's goals' text {goals}")
    print(f"[tokens]   sent {sent}: {ratio:4.2f} × the floor   target ≤ {TARGET} ×: "
          f"{'met' if ratio <= TARGET else 'MISSED'}")
    print(f"[tokens]   sent with the format described (a server enforcing no schema) {sent + hint}: "
          f"{(sent + hint) / (owners + fixed + hint):4.2f} ×;   strict (the user message's words counted as "
          f"overhead) {sent / (owners + system_only):4.2f} ×")


def main() -> None:
    tmp = Path(tempfile.mkdtemp())
    try:
        shutil.copy(DEMO / "team.yaml", tmp / "team.yaml")
        app = build_app(settings=Settings(weekly_config=str(tmp / "team.yaml"), database_url=f"sqlite:///{tmp}/t.db"),
                        clock=lambda: datetime(2024, 10, 15, 10, tzinfo=ZoneInfo("Asia/Shanghai")))
        svc = app.service
        team = svc.team(None)
        svc.import_reports([str(DEMO / "report-2024-W39.md"), str(DEMO / "report-2024-W40.md")], team=team)
        cycle = svc.timeline(team).by_label("2024-W40")
        sections = svc.section_texts(team, svc.stored_cycle(team, cycle), cycle)
        seed = SummaryRequest(team_title=team.title, cycle=cycle.label, language=svc.lang(team),
                              sections=tuple(sections), last_goals=svc.previous_goals(team, cycle))
        measure("seed report (2024-W40)", seed)
        big = tuple(SectionText(f"s{i}", f"部分{i}", f"1. 本周完成第{i}批任务，处理{100 + i}笔，成功率99.{i % 10}%。\n"
                                                    f"    - 上线检查全部通过，无回滚。\n2. 计划下周推进事项{i}。")
                    for i in range(300))
        measure("300 sections", SummaryRequest(team_title=team.title, cycle=cycle.label, language="zh",
                                               sections=big, last_goals=seed.last_goals))
        app.store.engine.dispose()  # type: ignore[attr-defined]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
