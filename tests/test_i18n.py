"""The bot's words come from one place, in both languages: every UserError key and every message."""

from __future__ import annotations

import ast
import re
import string
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.errors import ConfigError, UserError
from bot.i18n import MESSAGES
from bot.wiring import App

from .conftest import ROOT, console, said

_CJK = re.compile(r"[\u4e00-\u9fff]")


def _raised_keys() -> set[str]:
    """Every literal key of `UserError("key", …)` in the code."""
    keys: set[str] = set()
    for top in ("bot", "handlers", "storage"):
        for path in (ROOT / top).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "UserError":
                    first = node.args[0] if node.args else None
                    options = [first.body, first.orelse] if isinstance(first, ast.IfExp) else [first]
                    keys |= {str(o.value) for o in options if isinstance(o, ast.Constant)}
    return keys


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_every_user_error_key_has_both_languages_with_the_same_fields() -> None:
    keys = _raised_keys()
    assert {"no_cycle", "label_malformed", "import_overlap_stored", "not_owner", "away_usage"} <= keys
    missing = sorted(k for k in keys if k not in MESSAGES)
    assert missing == []
    for key in keys | set(MESSAGES):
        zh, en = MESSAGES[key]["zh"], MESSAGES[key]["en"]
        assert _fields(zh) == _fields(en), key


@pytest.mark.parametrize("key", sorted(_raised_keys() | set(MESSAGES)))
def test_a_zh_team_gets_chinese_for(key: str) -> None:
    params = {name: "2024-W40" for name in _fields(MESSAGES[key]["en"])}
    zh = UserError(key, **params).render("zh")
    en = UserError(key, **params).render("en")
    if key not in ("config", "in_file"):  # these only carry other words
        assert _CJK.search(zh), (key, zh)
        assert not _CJK.search(en.replace("【", "").replace("】", "")) or "【" in MESSAGES[key]["en"], (key, en)
    assert str(UserError(key, **params)) == en


def test_nested_errors_are_worded_in_the_same_language() -> None:
    inner = UserError("report_empty")
    assert UserError("in_file", path="a.md", error=inner).render("zh") == "a.md：周报是空的。"
    assert str(UserError("in_file", path="a.md", error=inner)) == "a.md: The report is empty."
    assert ConfigError("DATABASE_URL 'x' is not a database URL").render("zh") == "DATABASE_URL 'x' is not a database URL"


def test_a_wrong_command_is_refused_in_chinese_and_nothing_is_stored(make_app: Callable[..., App]) -> None:
    app = make_app()
    chat, out = console(app, "zhang")
    for line in ("/quit", "/help", "／weekly nonsense", "/weekly status 2024-W99"):
        chat.handle(line)
    text = "\n".join(said(out))
    assert "不认识的命令“quit”" in text and "不认识的命令“nonsense”" in text
    assert text.count("/weekly show — 查看我的草稿") == 3  # /quit, /help and nonsense each get help
    assert "只有 支付清算中心周报 的负责人可以使用 /weekly status。" in text
    assert not re.search(r"[A-Za-z]{4,} [A-Za-z]{4,}", text.replace("/weekly", ""))  # no English sentence
    assert app.service.draft("zhang")[0][2] == []  # nothing was stored as an update


def test_chat_errors_from_the_use_cases_are_in_the_teams_language(make_app: Callable[..., App], team_file: Path) -> None:
    team_file.write_text(team_file.read_text(encoding="utf-8").replace("weeks: 1", "weeks: 1\n      start: 2030-W10"),
                         encoding="utf-8")
    chat, out = console(make_app(), "wang")
    chat.handle("/weekly status")
    chat.handle("本周进展")
    text = "\n".join(said(out))
    assert text.count("支付清算中心周报 还没有开始的周期（第一期在 2030-03-04 10:00 开始）。") == 2, text


ENGLISH_TEAM = """\
timezone: Asia/Shanghai
language: en
members:
  ann: {name: Ann, slack: U0ANN00001}
  bob: {name: Bob, slack: U0BOB00001}
  cat: {name: Cat, slack: U0CAT00001, away: [2024-10-16..2024-10-18]}
teams:
  - key: eng
    title: Engineering weekly
    leads: [ann]
    publish: {slack: C0ENG00001, feishu: oc_eng}
    schedule: {weeks: 1, open: mon 10:00, deadline: thu 18:00, reminders: [2h], holidays: none}
    sections:
      - {key: platform, title: Platform, owners: [bob]}
      - {key: api, title: API, owners: [bob, cat]}
      - {key: incidents, title: Incidents, owners: [cat, bob], style: heading}
      - {key: other, title: Other, owners: [ann]}
"""
_NOT_ENGLISH = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")  # CJK, and its punctuation: 、（）【】；，：


def test_an_english_team_hears_no_chinese_word_or_punctuation(make_app: Callable[..., App], team_file: Path) -> None:
    """Lists, brackets and parentheses too: `Platform, API`, `[Platform]`, `Bob, Cat (away)`."""
    from bot.tick import tick
    from tests.conftest import FixedClock, at
    from tests.test_tick import Inbox

    team_file.write_text(ENGLISH_TEAM, encoding="utf-8")
    app = make_app(FixedClock(at("2024-10-15 11:00")))
    bob, out = console(app, "bob")
    for line in ("Deployed the new pipeline.", "1", "/weekly show", "/weekly skip", "/weekly away 10-21 10-22",
                 "/weekly away 10-28", "/weekly away", "/weekly away off"):
        bob.handle(line)
    lines = said(out)
    assert "  bot → Bob: OK, your sections are marked skipped for 2024-W42: API, Incidents." in lines
    assert "    [Platform]" in lines
    assert "  bot → Bob: Your days away: 2024-10-21..2024-10-22; 2024-10-28" in lines
    ann, out = console(app, "ann")
    for line in ("/weekly status", "/weekly remind", "/weekly summary", "3"):
        ann.handle(line)
    lines += said(out)
    assert "    🌴 API — Bob, Cat (away)" in lines and "    Still missing: Ann" in lines
    assert "  bot → Ann: Reminded 1 owner(s) who have not answered: Ann" in lines
    [reminder] = [line for line in lines if line.startswith("  bot → Ann: Reminder: ")]
    assert "Thu 10-17 18:00" in reminder  # in the scheduled reminder's words, weekday and all
    assert "  bot → Ann: The report was published: #C0ENG00001, #oc_eng." in lines
    app.service.record("bob", "[API] p99 down", platform="test", message_id="b2")  # takes back the skip
    inbox = Inbox()
    tick(app.service, [inbox], at("2024-10-17 18:00"))
    lines += [text for _, text in inbox.sent]
    assert "Engineering weekly 2024-W42 reached its deadline; still missing: [Incidents] (Bob), [Other] (Ann)" in lines
    ann.handle("/weekly status")
    lines += said(out)
    assert "    ✅ API — Bob, Cat (away) (submitted)" in lines and "    Still missing: Bob, Ann" in lines
    leaks = [line for line in lines if _NOT_ENGLISH.search(line)]
    assert leaks == []
