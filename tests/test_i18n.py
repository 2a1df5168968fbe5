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
