"""The lead's review loop through the console edge: preview with the closing sections in full, edit,
regenerate, publish exactly the reviewed snapshot once, and which goals carry over (issue 11)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from bot.cli import main
from bot.wiring import App
from tests.conftest import EXAMPLES, FixedClock, at, console, said

EDIT = ("/weekly edit\n## 收获与反思\n1. 差错要当天清零（来源：清分对账）\n"
        "# 下周工作及目标\n1. 差错自动归因上线，覆盖率90%（来源：清分对账）\n2. 没有来源的一条")


def test_the_preview_shows_both_closing_sections_in_full_then_the_file_and_three_buttons(
        make_app: Callable[..., App]) -> None:
    app = make_app(FixedClock(at("2024-10-17 18:30")))
    long = "\n".join(f"{n}. 第{n}项：本周处理交易{n * 10}笔，计划下周完成第{n}批迁移。" for n in range(1, 200))
    app.service.record("zhang", long, platform="console", message_id="z1")
    chat, out = console(app, "wang")
    chat.handle("/weekly summary")
    lines = said(out)
    report = app.service.report(app.service.team(None), "2024-W42")
    assert report.summary is not None and report.summary.next_week
    text = "\n".join(lines)
    for item in report.summary.next_week:  # every item, whole, with its sources
        assert f"{item.text}（来源：清分对账）" in text
    assert lines[-1] == "    [1] 编辑  [2] 重新生成  [3] 发布"
    assert lines[-2] == f"    [file: clearing-2024-W42.md, {report.markdown.count(chr(10))} lines]"
    assert "# 下周工作及目标" in text and "## 收获与反思" in text


def test_a_leads_edit_is_a_revision_with_the_sources_its_suffixes_name(make_app: Callable[..., App],
                                                                       tmp_path: object, capsys: object) -> None:
    clock = FixedClock(at("2024-10-17 18:30"))
    app = make_app(clock)
    app.service.record("zhang", "对账差错2笔，计划下周完成差错自动归因。", platform="console", message_id="z1")
    chat, out = console(app, "wang")
    chat.handle("/weekly edit")
    shown = said(out)
    assert shown[-1] == "    清分对账：完成差错自动归因。（来源：清分对账）"  # prefilled one item per line
    chat.handle(EDIT)
    lines = said(out)
    assert lines[0] == "  bot → 王芳: 已保存你的修改。"
    assert "（当前：王芳 于 10-17 18:30 编辑）" in lines[1]
    assert "    1. 差错自动归因上线，覆盖率90%（来源：清分对账）" in lines
    assert "        ⚠ 数字 90 在所列来源中找不到" in lines  # kept, but flagged
    clock.now = at("2024-10-17 18:40")
    app.service.record("zhang", "补充：差错已归零。", platform="console", message_id="z2")
    chat.handle("/weekly summary")  # the edit stays current; the lead hears the owners wrote since
    assert "    负责人在这次编辑之后又修改了内容；需要的话可以“重新生成”。" in said(out)
    data = app.service.report(app.service.team(None), "2024-W42").to_json()
    assert (data["summary_source"], data["summary_state"], data["edited"]["by"]) == ("edited", "edited", "wang")
    assert data["reflections"] == [{"text": "差错要当天清零", "sources": ["reconciliation"]}]
    assert data["next_week"] == [{"text": "差错自动归因上线，覆盖率90%", "sources": ["reconciliation"]},
                                 {"text": "没有来源的一条", "sources": []}]


def test_a_non_lead_can_neither_open_the_form_nor_store_an_edit(make_app: Callable[..., App]) -> None:
    app = make_app(FixedClock(at("2024-10-17 18:30")))
    chat, out = console(app, "zhang")
    chat.handle("/weekly edit")
    assert said(out) == ["  bot → 张伟: 只有 支付清算中心周报 的负责人可以使用 /weekly edit。"]
    chat.handle(EDIT)
    assert said(out) == ["  bot → 张伟: 只有 支付清算中心周报 的负责人可以使用 /weekly edit。"]
    assert app.service.report(app.service.team(None), "2024-W42").summary_source == "offline"


def test_publish_posts_the_reviewed_snapshot_once_and_says_when_owners_changed_it(
        make_app: Callable[..., App]) -> None:
    clock = FixedClock(at("2024-10-17 18:30"))
    app = make_app(clock)
    app.service.record("zhang", "对账差错2笔。", platform="console", message_id="z1")
    chat, out = console(app, "wang")
    chat.handle("/weekly summary")
    said(out)
    app.service.record("zhang", "晚到的一行。", platform="console", message_id="z2")  # after the preview
    chat.handle("3")
    lines = said(out)
    assert lines[:3] == ["  bot → #C0WEEKLY01: 支付清算中心周报 2024-W42", "    [file: clearing-2024-W42.md, 35 lines]",
                         "  bot → 王芳: 周报已发布：#C0WEEKLY01。"]
    assert lines[3].startswith("  bot → 王芳: 注意：你预览之后，负责人又修改了内容")
    assert lines[-1] == "    [1] 重新预览"
    snap = app.service.latest_snapshot(app.service.team(None), "2024-W42")
    assert snap is not None and "晚到的一行" not in snap.markdown and "对账差错2笔" in snap.markdown
    for _ in range(2):  # the same button again, and `/weekly publish`: nothing posted twice
        chat.handle("/weekly summary")
        said(out)
    chat.handle("/weekly publish")
    assert said(out)[0] == "  bot → #C0WEEKLY01: 支付清算中心周报 2024-W42"  # the fresh preview is a new snapshot
    chat.handle("/weekly publish")
    assert said(out) == ["  bot → 王芳: 这份周报已经发布过了（#C0WEEKLY01），不再重复发布。"]
    data = app.service.report(app.service.team(None), "2024-W42").to_json()
    assert data["summary_state"] == "published"


def test_only_reviewed_goals_carry_over_to_the_next_cycles_prompt(make_app: Callable[..., App]) -> None:
    clock = FixedClock(at("2024-10-17 18:30"))
    app = make_app(clock)
    team = app.service.team(None)
    app.service.record("zhang", "对账差错2笔，计划下周完成差错自动归因。", platform="console", message_id="z1")
    app.service.report(team, "2024-W42", summarize=True)  # a draft only
    nxt = app.service.resolve_cycle(team, "2024-W43")
    assert app.service.previous_goals(team, nxt) == ()
    chat, out = console(app, "wang")
    chat.handle(EDIT)
    said(out)
    assert [g.text for g in app.service.previous_goals(team, nxt)] == ["差错自动归因上线，覆盖率90%", "没有来源的一条"]
    chat.handle("/weekly summary")
    said(out)
    app.service.report(team, "2024-W42", summarize=True)  # drafted again after the edit: the edit still carries
    assert [g.text for g in app.service.previous_goals(team, nxt)][0] == "差错自动归因上线，覆盖率90%"


def test_cli_publish_and_report_json(make_app: Callable[..., App], team_file: object, prepared_db: str,
                                     capsys: object) -> None:
    app = make_app(FixedClock(at("2024-10-17 18:30")))
    app.service.record("zhang", "对账差错2笔。", platform="console", message_id="z1")
    rc = main(["report", "--config", str(team_file), "--db", prepared_db, "--cycle", "2024-W42", "--format", "json"])
    assert rc == 0
    data = json.loads(capsys.readouterr().out)  # type: ignore[attr-defined]
    assert (data["summary_source"], data["summary_state"], data["edited"]) == ("offline", "draft", None)


def test_regenerate_makes_a_new_draft_current_and_keeps_the_edit_as_a_revision(make_app: Callable[..., App]) -> None:
    app = make_app(FixedClock(at("2024-10-17 18:30")))
    app.service.record("zhang", "对账差错2笔，计划下周完成差错自动归因。", platform="console", message_id="z1")
    chat, out = console(app, "wang")
    chat.handle(EDIT)
    said(out)
    chat.handle("2")  # Regenerate, on the preview after the edit
    lines = said(out)
    assert "（当前：离线规则起草）" in lines[1]
    assert "    （王芳 于 10-17 18:30 的编辑仍保留为历史版本。）" in lines
    team = app.service.team(None)
    stored = app.service.stored_cycle(team, app.service.resolve_cycle(team, "2024-W42"))
    assert stored is not None
    assert [r.source for r in app.store.summary_revisions(cycle_id=stored.id)] == ["edited", "offline"]
    assert app.service.report(team, "2024-W42").to_json()["summary_state"] == "draft"


def _next_prompt(make_app: Callable[..., App], *, publish: bool) -> list[str]:
    """张伟's prompt when 2024-W43 opens, after 2024-W42 was only previewed, or edited and published."""
    from bot.tick import tick
    from handlers.console import ConsoleSender

    clock = FixedClock(at("2024-10-17 18:30"))
    app = make_app(clock)
    app.service.record("zhang", "对账差错2笔，计划下周完成差错自动归因。", platform="console", message_id="z1")
    chat, out = console(app, "wang")
    chat.handle("/weekly summary")
    if publish:
        chat.handle(EDIT)
        chat.handle("3")
        assert said(out)[-1] == "  bot → 王芳: 周报已发布：#C0WEEKLY01。"
    said(out)
    clock.now = at("2024-10-21 10:00")
    tick(app.service, [ConsoleSender(chat)], clock.now)
    lines = said(out)
    start = next(i for i, ln in enumerate(lines) if ln.startswith("  bot → 张伟 (DM)"))
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("  bot →")), len(lines))
    return lines[start:end]


def test_next_cycles_prompt_shows_the_published_goals(make_app: Callable[..., App]) -> None:
    prompt = _next_prompt(make_app, publish=True)
    assert any("上周计划" in ln for ln in prompt)
    assert any("差错自动归因上线，覆盖率90%" in ln for ln in prompt)


def test_after_only_a_draft_the_next_prompt_shows_no_plan(make_app: Callable[..., App]) -> None:
    prompt = _next_prompt(make_app, publish=False)
    assert prompt[0].startswith("  bot → 张伟 (DM): 张伟你好")
    assert not any("上周计划" in ln or "差错自动归因" in ln for ln in prompt)


def test_edit_without_a_cycle_acts_on_the_report_the_lead_just_previewed(make_app: Callable[..., App]) -> None:
    clock = FixedClock(at("2024-10-17 18:30"))  # 2024-W42 is the current cycle
    app = make_app(clock)
    team = app.service.team(None)
    app.service.import_reports([str(EXAMPLES / "report-2024-W38-W39.md")], team=team)
    chat, out = console(app, "wang")
    chat.handle("/weekly summary 2024-W39")  # a past cycle, previewed now
    said(out)
    chat.handle("/weekly edit")
    shown = said(out)
    assert shown[0].startswith("  bot → 王芳: 2024-W38&W39：编辑收获与反思")
    assert "    节假日清算安排要提前两周和银行逐家确认。（来源：结算通道）" in shown  # that cycle's items
    chat.handle(EDIT)
    assert said(out)[0] == "  bot → 王芳: 已保存你的修改。"
    assert app.service.report(team, "2024-W39").to_json()["summary_source"] == "edited"
    assert app.service.report(team, "2024-W42", summarize=False).to_json()["summary_source"] == "none"
    chat.handle("/weekly publish")  # the preview that followed the edit, of 2024-W38&W39
    assert said(out)[0] == "  bot → #C0WEEKLY01: 支付清算中心周报 2024-W38&W39"
    published = app.service.store.latest_snapshot(cycle_id=app.service.stored_cycle(
        team, app.service.resolve_cycle(team, "2024-W39")).id, published=True)
    assert published is not None and published.markdown.startswith("# 2024-W38&W39")

    clock.now = at("2024-10-22 09:00")  # 2024-W43 has opened since that preview: the current cycle again
    chat.handle("/weekly edit")
    assert said(out)[0].startswith("  bot → 王芳: 2024-W43：编辑收获与反思")


def test_the_terminal_edits_line_by_line_and_keeps_the_buttons_pressable(make_app: Callable[..., App]) -> None:
    """`weekly-bot chat` reads one line at a time: Edit opens the form, the lines that follow fill it up to a
    line `.`; none of them is stored as the lead's own answer, and the preview's buttons stay pressable."""
    app = make_app(FixedClock(at("2024-10-17 18:30")))
    app.service.record("zhang", "对账差错2笔，计划下周完成差错自动归因。", platform="console", message_id="z1")
    chat, out = console(app, "wang")
    chat.handle("/weekly summary")
    said(out)
    chat.handle("1")  # Edit
    shown = said(out)
    assert shown[:3] == ["  bot → 王芳: 2024-W42：编辑收获与反思、下周工作及目标，每行一条，以（来源：标题、…）结尾。",
                         "    （在下面逐行写，保留两个标题行；单独一行“.”保存，/cancel 放弃。当前内容：）",
                         "    ## 收获与反思"]
    assert "    # 下周工作及目标" in shown and shown[-1] == "    清分对账：完成差错自动归因。（来源：清分对账）"
    for line in ("## 收获与反思", "1. 差错要当天清零（来源：清分对账）", "# 下周工作及目标", "1. 差错自动归因上线（来源：清分对账）"):
        chat.handle(line)
    assert said(out) == []  # the form is being filled: nothing is sent yet
    chat.handle(".")
    lines = said(out)
    assert lines[0] == "  bot → 王芳: 已保存你的修改。" and lines[-1] == "    [1] 编辑  [2] 重新生成  [3] 发布"
    team = app.service.team(None)
    data = app.service.report(team, "2024-W42").to_json()
    assert (data["summary_source"], data["edited"]["by"]) == ("edited", "wang")
    assert data["reflections"] == [{"text": "差错要当天清零", "sources": ["reconciliation"]}]
    chat.handle("3")
    assert said(out)[:2] == ["  bot → #C0WEEKLY01: 支付清算中心周报 2024-W42",
                             "    [file: clearing-2024-W42.md, 35 lines]"]
    chat.handle("3")  # pressed again, as on Slack: posts nothing, and is no answer
    assert said(out) == ["  bot → 王芳: 这份周报已经发布过了（#C0WEEKLY01），不再重复发布。"]
    stored = app.service.stored_cycle(team, app.service.resolve_cycle(team, "2024-W42"))
    assert stored is not None and [u.member_key for u in app.service.store.updates(cycle_id=stored.id)] == ["zhang"]

    chat.handle("/weekly edit")
    said(out)
    chat.handle("/cancel")
    assert said(out) == ["  (the form was closed; nothing was saved)"]
    assert app.service.report(team, "2024-W42").to_json()["summary_source"] == "edited"


def test_weekly_bot_chat_takes_the_edit_form_from_stdin(tmp_path: object) -> None:
    """The real command, lines on stdin as a person types them: the form is filled, not stored as answers."""
    home = Path(str(tmp_path))
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "WEEKLY_CONFIG": str(EXAMPLES / "team.yaml"),
           "DATABASE_URL": f"sqlite:///{home / 'weekly.db'}"}
    typed = "\n".join(["/weekly edit", "## 收获与反思", "差错要当天清零（来源：清分对账）", "",
                       "# 下周工作及目标", "直连上线（来源：结算通道）", ".", "/weekly edit", "没有结束的表单"]) + "\n"
    chat = subprocess.run([sys.executable, "-m", "bot", "chat", "--as", "wang"], input=typed, capture_output=True,
                          text=True, cwd=home, env=env, timeout=60)
    assert chat.returncode == 0, chat.stderr
    assert "  bot → 王芳: 已保存你的修改。" in chat.stdout
    assert chat.stdout.endswith("  (the form was not saved: end it with a line holding only '.')\n")
    report = subprocess.run([sys.executable, "-m", "bot", "report", "--format", "json"], capture_output=True,
                            text=True, cwd=home, env=env, timeout=60)
    data = json.loads(report.stdout)
    assert data["summary_source"] == "edited"
    assert data["next_week"] == [{"text": "直连上线", "sources": ["settlement"]}]
    assert [s["state"] for s in data["sections"]] == ["missing"] * 8  # no line of the form became an answer
