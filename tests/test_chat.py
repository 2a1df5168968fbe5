"""The conversation through the console edge: the same ChatBot Slack and Feishu drive."""

from __future__ import annotations

from collections.abc import Callable

from bot.chat import ChatBot
from bot.wiring import App

from .conftest import console, said


def test_an_answer_is_confirmed_and_shown_in_the_draft(make_app: Callable[..., App]) -> None:
    chat, out = console(make_app(), "zhang")
    chat.handle("1. 对账差错2笔，均已处理。")
    assert said(out) == ["  bot → 张伟: 已记录到【清分对账】（2024-W42）：1. 对账差错2笔，均已处理。"]
    chat.handle("/edit 1 1. 对账差错3笔，均已处理。")
    assert said(out) == ["  bot → 张伟: 已更新【清分对账】的这条内容：1. 对账差错3笔，均已处理。"]
    chat.handle("/weekly show")
    assert said(out) == ["  bot → 张伟: 2024-W42 你的草稿：", "    【清分对账】", "    1. 对账差错3笔，均已处理。"]
    chat.handle("/delete 1")
    assert said(out) == ["  bot → 张伟: 已从【清分对账】删除这条内容。"]
    chat.handle("/weekly show")
    assert said(out) == ["  bot → 张伟: 2024-W42 你还没有提交内容。"]


def test_lead_commands_are_refused_to_others_and_unknown_words_get_help(make_app: Callable[..., App]) -> None:
    chat, out = console(make_app(), "chen")
    for command in ("/weekly summary", "/weekly status", "/weekly remind"):
        chat.handle(command)
        assert said(out) == [f"  bot → 陈静: 只有 支付清算中心周报 的负责人可以使用 {command}。"]
    chat.handle("/weekly dance")
    lines = said(out)
    assert lines[0] == "  bot → 陈静: 不认识的命令“dance”。"
    assert "    /weekly show — 查看我的草稿" in lines


def test_remind_dms_the_missing_and_tells_the_lead(make_app: Callable[..., App]) -> None:
    app = make_app()
    for member in ("li", "zhang", "chen", "liu", "sun"):
        app.service.skip(member)
    chat, out = console(app, "wang")
    chat.handle("/weekly remind")
    lines = said(out)
    assert lines[0].startswith("  bot → 赵敏 (DM): 提醒：支付清算中心周报 2024-W42 将在 10-17 18:00 截止，你负责的【O1 业务服务】")
    assert lines[1].startswith("  bot → 王芳: 提醒：支付清算中心周报 2024-W42 将在 10-17 18:00 截止，你负责的【其他】")
    assert lines[2] == "  bot → 王芳: 已提醒 2 位尚未提交的负责人：赵敏、王芳"


def test_someone_not_in_the_team_file_is_told_so(make_app: Callable[..., App]) -> None:
    app = make_app()
    bot = ChatBot(app.service)
    replies = bot.on_message("slack", "U0STRANGER", "hello", "D1:1.1")
    assert [r.text for r in replies] == ["我还不认识你：请让管理员在团队配置文件里加上你的账号。"]
    assert app.store.update_by_message(platform="slack", message_id="D1:1.1") is None


def test_a_wrong_cycle_is_said_at_once_in_the_teams_language(make_app: Callable[..., App]) -> None:
    chat, out = console(make_app(), "wang")
    chat.handle("/weekly summary 2024-W99")
    assert said(out) == ["  bot → 王芳: “2024-W99”不是支付清算中心周报的周期（周期的写法如 2024-W42）。"]
    chat.handle("/weekly status nonsense")
    assert said(out) == ["  bot → 王芳: “nonsense”既不是团队也不是周期（周期的写法如 2024-W40）。"]
    chat.handle("/weekly summary 2024-W40")
    assert said(out)[0] == "  bot → 王芳: 正在生成 2024-W40&W41 的周报，稍后发给你。"


def test_deleting_a_message_not_yet_given_a_section(make_app: Callable[..., App]) -> None:
    chat, out = console(make_app(), "sun")
    chat.handle("可用性99.99%。")
    assert said(out)[-1] == "    [1] 系统指标  [2] 生产事件"
    chat.handle("/delete 1")
    assert said(out) == ["  bot → 孙浩: 已从【待选择的部分】删除这条内容。"]
