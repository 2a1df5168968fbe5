"""Read a report in the department's Markdown (spec §6) back into a `ParsedReport`.

It reads what `bot.render` writes exactly, and is lenient with what people paste: both section
styles, bodies indented by spaces or tabs, bracket-less `## title` headings, other spellings of the
closing sections, CRLF and a BOM.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from bot.errors import UserError
from bot.model import ParsedReport, ParsedSection, SectionStyle, SummaryItem
from bot.render import INDENT, SOURCES_SUFFIX, split_lines

Closing = Literal["reflections", "next_week"]

CYCLE_LABEL = re.compile(r"\d{4}-W\d{2}(?:&(?:\d{4}-)?W\d{2})?")
_ITEM_BARE = re.compile(r"^[-*+•]\s*【([^】]+)】\s*[:：]?$")
_ITEM_WITH_TEXT = re.compile(r"^[-*+•]\s*【([^】]+)】\s*[:：]?\s*(.*)$")
_HEADING = re.compile(r"^(#{1,6})(?:[ \t]+|(?=【))(.*)$")
_BRACKETED = re.compile(r"^【([^】]+)】\s*[:：]?\s*(.*)$")
_CREATED = re.compile(r"^(?:created|创建时间)\s*[:：]\s*(.*)$", re.IGNORECASE)
_LIST_MARKER = re.compile(r"^(?:\d+[.)、．](?!\d)|[（(]\d+[）)]|[-*+•·](?=\s))\s*")
_SOURCE_SEPARATOR = re.compile(r"\s*[、，,；;]\s*")

_CLOSING_PREFIXES: dict[Closing, tuple[str, ...]] = {
    "reflections": ("收获与反思", "收获和反思", "lessons and reflections", "lessons & reflections"),
    "next_week": ("下周工作", "下周计划", "下周目标", "next week"),
}
_PLACEHOLDERS = frozenset({"（未提交）", "(未提交)", "(missing)", "（本周跳过）", "(本周跳过)", "（本期跳过）", "(本期跳过)",
                           "(skipped)", "（请假）", "(请假)", "(away)"})
_NONE = frozenset({"（无）", "(无)", "无", "(none)", "none"})


@dataclass
class _Block:
    """Lines collected under one section or closing heading."""

    kind: Literal["section", "closing"]
    title: str
    style: SectionStyle = "item"
    closing: Closing = "reflections"
    lines: list[str] = field(default_factory=list)


@dataclass
class _State:
    """What the walk over the lines has found so far."""

    cycle: str | None = None
    created: str | None = None
    blocks: list[_Block] = field(default_factory=list)


def _indent_width(line: str) -> int:
    """Count of leading whitespace characters."""
    return len(line) - len(line.lstrip())


def _common_prefix(lines: list[str]) -> str:
    """The leading whitespace every non-empty line shares (as characters, tabs kept apart)."""
    prefix: str | None = None
    for line in lines:
        if not line:
            continue
        lead = line[: _indent_width(line)]
        if prefix is None:
            prefix = lead
        else:
            n = 0
            while n < min(len(prefix), len(lead)) and prefix[n] == lead[n]:
                n += 1
            prefix = prefix[:n]
    return prefix or ""


def _dedent(lines: list[str]) -> list[str]:
    """Remove the common leading whitespace of the non-empty lines."""
    cut = len(_common_prefix(lines))
    return [line[cut:] for line in lines]


def _trim_blank(lines: list[str]) -> list[str]:
    """Drop leading and trailing empty lines."""
    start, end = 0, len(lines)
    while start < end and not lines[start]:
        start += 1
    while end > start and not lines[end - 1]:
        end -= 1
    return lines[start:end]


def _closing_kind(text: str) -> Closing | None:
    """Which closing section a heading's text names, if any."""
    name = text.strip().strip("【】").strip().rstrip(":：").strip().lower().replace("’", "'")
    for kind, prefixes in _CLOSING_PREFIXES.items():
        if name.startswith(prefixes):
            return kind
    return None


def _heading_block(line: str, state: _State) -> _Block | None:
    """The block a heading line opens, or None when it is not a section boundary."""
    m = _HEADING.match(line)
    if not m:
        return None
    level, text = len(m.group(1)), re.sub(r"\s+#+$", "", m.group(2)).strip()
    if not text:
        return None
    kind = _closing_kind(text)
    if kind is not None:
        return _Block("closing", text, closing=kind)
    bracketed = _BRACKETED.match(text)
    if level == 1 and not state.blocks and (not bracketed or CYCLE_LABEL.search(text)):
        return None  # the report's title, handled by the caller
    if bracketed:
        rest = bracketed.group(2).strip()
        return _Block("section", bracketed.group(1).strip(), style="heading", lines=[rest] if rest else [])
    if level <= 2:
        return _Block("section", text, style="heading")
    return None


def _item_block(line: str, current: _Block | None) -> _Block | None:
    """The item section a `- 【title】` line opens, or None.

    Under a heading section or a closing section only a bare `- 【title】` line counts: `- 【P2】…`
    there is the owner's own list. Elsewhere text after the title is the body's first line.
    """
    m = _ITEM_BARE.match(line)
    if m:
        return _Block("section", m.group(1).strip(), style="item")
    if current is not None and (current.kind == "closing" or current.style == "heading"):
        return None
    m = _ITEM_WITH_TEXT.match(line)
    if not m:
        return None
    rest = m.group(2).strip()
    return _Block("section", m.group(1).strip(), style="item", lines=[INDENT + rest] if rest else [])


def _preamble(line: str, state: _State) -> None:
    """Title and Created lines before the first section; anything else there is ignored."""
    m = _HEADING.match(line)
    if m and len(m.group(1)) == 1:
        label = CYCLE_LABEL.search(m.group(2))
        if label and state.cycle is None:
            state.cycle = label.group(0)
        return
    created = _CREATED.match(line.strip())
    if created and state.created is None:
        state.created = created.group(1).strip() or None


def _walk(lines: list[str]) -> _State:
    """Split the document's lines into title, Created and blocks."""
    state = _State()
    current: _Block | None = None
    for line in lines:
        block = _heading_block(line, state) or _item_block(line, current)
        if block is not None:
            state.blocks.append(block)
            current = block
        elif current is None:
            _preamble(line, state)
        else:
            current.lines.append(line)
    return state


def _item_content(lines: list[str]) -> str:
    """An item body without its block indent: exactly the renderer's four spaces when all have it."""
    body = _trim_blank(lines)
    if all(not line or line.startswith(INDENT) for line in body):
        body = [line[len(INDENT) :] for line in body]
    else:
        body = _dedent(body)
    return "\n".join(body)


def _section(block: _Block) -> ParsedSection:
    """A section block as a `ParsedSection`; a placeholder body becomes empty content."""
    if block.style == "item":
        content = _item_content(block.lines)
    else:
        content = "\n".join(_trim_blank(block.lines))
    if content.strip() in _PLACEHOLDERS:
        content = ""
    return ParsedSection(title=block.title, style=block.style, content=content)


def _summary_item(lines: list[str]) -> SummaryItem | None:
    """One closing item with its `（来源：…）` / `(sources: …)` suffix split off."""
    text = "\n".join(lines).strip()
    m = SOURCES_SUFFIX.search(text)
    sources: tuple[str, ...] = ()
    if m:
        sources = tuple(s for s in _SOURCE_SEPARATOR.split(m.group(1).strip()) if s)
        text = text[: m.start()].rstrip()
    return SummaryItem(text=text, sources=sources) if text else None


def _summary_items(lines: list[str]) -> list[SummaryItem]:
    """Numbered or bulleted items; deeper-indented lines continue the item above."""
    groups: list[list[str]] = []
    base: int | None = None
    for line in lines:
        if not line.strip():
            continue
        indent = _indent_width(line)
        base = indent if base is None else base
        text = line.strip()
        if groups and indent > base:
            groups[-1].append(text)
            continue
        if len(groups) == 0 and text in _NONE:
            continue
        marker = _LIST_MARKER.match(text)
        groups.append([text[marker.end() :] if marker else text])
    items = (_summary_item(group) for group in groups)
    return [item for item in items if item is not None]


def parse_report(text: str) -> ParsedReport:
    """Parse a report's Markdown; raise `UserError` when it holds no report at all."""
    if not text.strip():
        raise UserError("report_empty")
    lines = _dedent([line.rstrip() for line in split_lines(text.removeprefix("\ufeff"))])
    state = _walk(lines)
    if not state.blocks:
        raise UserError("report_no_sections")
    sections = tuple(_section(b) for b in state.blocks if b.kind == "section")
    closing: dict[Closing, list[SummaryItem]] = {"reflections": [], "next_week": []}
    for block in state.blocks:
        if block.kind == "closing":
            closing[block.closing].extend(_summary_items(block.lines))
    return ParsedReport(
        cycle=state.cycle,
        created=state.created,
        sections=sections,
        reflections=tuple(closing["reflections"]),
        next_week=tuple(closing["next_week"]),
    )
