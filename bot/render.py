"""The report as Markdown in the department's own style (spec §6); `bot.parse` reads it back."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from bot.model import SectionText, Summary, SummaryItem

Language = Literal["zh", "en"]

INDENT = "    "  # an item section's body sits under its `- 【title】` line

WORDS: dict[Language, dict[str, str]] = {
    "zh": {
        "created": "Created:",
        "missing": "（未提交）",
        "skipped": "（本期跳过）",
        "away": "（请假）",
        "none": "（无）",
        "reflections": "收获与反思",
        "next_week": "下周工作及目标",
    },
    "en": {
        "created": "Created:",
        "missing": "(missing)",
        "skipped": "(skipped)",
        "away": "(away)",
        "none": "(none)",
        "reflections": "Lessons and reflections",
        "next_week": "Next week's work and goals",
    },
}


def split_lines(text: str) -> list[str]:
    """Split on LF, CRLF or CR only (not on the exotic breaks `str.splitlines` also honours)."""
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def normalize_content(text: str) -> str:
    """Owners' text as the report keeps it: trailing whitespace and outer blank lines dropped."""
    lines = [line.rstrip() for line in split_lines(text)]
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines)


def format_created(created: datetime, language: Language) -> str:
    """`2024年10月10日 18:05` (zh) or `2024-10-10 18:05` (en); `created` is already in team time."""
    if language == "zh":
        return f"{created.year}年{created.month}月{created.day}日 {created:%H:%M}"
    return f"{created:%Y-%m-%d %H:%M}"


def _body(section: SectionText, language: Language) -> list[str]:
    """The lines a section shows: the owner's text, or what stands in for it."""
    content = normalize_content(section.content)
    if section.state in ("skipped", "away"):
        return [WORDS[language][section.state]]
    if section.state == "missing" or not content:
        return [WORDS[language]["missing"]]
    return content.split("\n")


def _item_block(section: SectionText, language: Language) -> list[str]:
    """`- 【title】` with every non-empty body line indented by four spaces."""
    body = [INDENT + line if line else "" for line in _body(section, language)]
    return [f"- 【{section.title}】", *body]


def _heading_block(section: SectionText, language: Language) -> list[str]:
    """`## 【title】`, a blank line, the body as written."""
    return [f"## 【{section.title}】", "", *_body(section, language)]


# a closing item's `（来源：…）` / `(sources: …)` at the end of its text; group 1: the names
SOURCES_SUFFIX = re.compile(r"\s*[（(]\s*(?:来源|sources?)\s*[：:]\s*([^（）()]*?)\s*[）)]\s*$", re.IGNORECASE)


def with_sources(text: str, sources: Sequence[str], titles: dict[str, str], language: Language) -> str:
    """`text（来源：…）`: the item's own sources in place of any such suffix its text already ends in (an
    owner who wrote one, a model that did), so that none is said twice."""
    suffix = sources_suffix(sources, titles, language)
    return SOURCES_SUFFIX.sub("", text) + suffix if suffix else text


def sources_suffix(sources: Sequence[str], titles: dict[str, str], language: Language) -> str:
    """`（来源：结算通道、生产事件）` / ` (sources: Settlement, Incidents)`, or nothing."""
    names = [titles.get(key, key) for key in sources]
    if not names:
        return ""
    if language == "zh":
        return f"（来源：{'、'.join(names)}）"
    return f" (sources: {', '.join(names)})"


def _numbered(items: Sequence[SummaryItem], titles: dict[str, str], language: Language) -> list[str]:
    """`1. text（来源：…）`; a multi-line item's later lines hang under its first."""
    if not items:
        return [WORDS[language]["none"]]
    out: list[str] = []
    for number, item in enumerate(items, start=1):
        marker = f"{number}. "
        lines = [line.strip() for line in split_lines(item.text) if line.strip()] or [""]
        lines[-1] = with_sources(lines[-1], item.sources, titles, language)
        out.append(marker + lines[0])
        out.extend(" " * len(marker) + line for line in lines[1:])
    return out


def _closing(summary: Summary, sections: Sequence[SectionText], language: Language) -> list[str]:
    """收获与反思 (H2) and 下周工作及目标 (H1, as the department writes it)."""
    titles = {section.key: section.title for section in sections}
    words = WORDS[language]
    return [
        f"## {words['reflections']}",
        "",
        *_numbered(summary.reflections, titles, language),
        "",
        f"# {words['next_week']}",
        "",
        *_numbered(summary.next_week, titles, language),
    ]


def _append_block(lines: list[str], block: list[str], *, spaced: bool) -> None:
    """Add a block; `spaced` blocks get exactly one blank line before them."""
    if spaced and lines and lines[-1]:
        lines.append("")
    lines.extend(block)


def render_report(
    *,
    cycle: str,
    created: datetime | str,
    sections: Sequence[SectionText],
    summary: Summary | None,
    language: Language,
) -> str:
    """The whole report; deterministic, ending with exactly one newline. A str `created` is kept as written."""
    stamp = created if isinstance(created, str) else format_created(created, language)
    lines = [f"# {cycle}", "", f"{WORDS[language]['created']} {stamp}", ""]
    for section in sections:
        if section.style == "heading":
            _append_block(lines, _heading_block(section, language), spaced=True)
            lines.append("")
        else:
            _append_block(lines, _item_block(section, language), spaced=False)
    if summary is not None:
        _append_block(lines, _closing(summary, sections, language), spaced=True)
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines) + "\n"
