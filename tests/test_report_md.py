"""The report's Markdown: render.py writes spec §6 exactly, parse.py reads it (and pasted variants) back."""

from __future__ import annotations

import random
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.errors import UserError
from bot.model import (
    ParsedReport,
    ParsedSection,
    SectionState,
    SectionStyle,
    SectionText,
    Summary,
    SummaryItem,
)
from bot.parse import parse_report
from bot.render import Language, normalize_content, render_report

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SHANGHAI = ZoneInfo("Asia/Shanghai")
CREATED = datetime(2024, 10, 10, 18, 5, tzinfo=SHANGHAI)

SPEC_EXCERPT = """\
# 2024-W40

Created: 2024年10月10日 18:05

- 【结算通道】
    1. 通道数据：
        - 本周处理交易3120笔，金额2150万元。
        - 成功率99.95%，较上周提升0.02%。
    2. 招商银行直连：联调完成，预计10月下旬上线。
- 【清分对账】
    1. 对账差错下降至3笔，均已处理。

## 【O1 业务服务】

1. 跨境收款：完成第二轮方案评审。
2. 商户进件：资料审核自动化进度60%。

## 【生产事件】

- 10/08 14:20  清算文件延迟生成，原因是上游批量任务超时，重跑后恢复。

## 收获与反思

1. 外部通道都要有备份和到期提醒。

# 下周工作及目标

1. 招商银行直连上线准备。
"""

SPEC_SECTIONS = (
    SectionText(
        key="settlement",
        title="结算通道",
        content=(
            "1. 通道数据：\n"
            "    - 本周处理交易3120笔，金额2150万元。\n"
            "    - 成功率99.95%，较上周提升0.02%。\n"
            "2. 招商银行直连：联调完成，预计10月下旬上线。"
        ),
    ),
    SectionText(key="reconciliation", title="清分对账", content="1. 对账差错下降至3笔，均已处理。"),
    SectionText(
        key="o1_business",
        title="O1 业务服务",
        content="1. 跨境收款：完成第二轮方案评审。\n2. 商户进件：资料审核自动化进度60%。",
        style="heading",
    ),
    SectionText(
        key="incidents",
        title="生产事件",
        content="- 10/08 14:20  清算文件延迟生成，原因是上游批量任务超时，重跑后恢复。",
        style="heading",
    ),
)

SPEC_SUMMARY = Summary(
    reflections=[SummaryItem("外部通道都要有备份和到期提醒。", ())],
    next_week=[SummaryItem("招商银行直连上线准备。", ())],
    source="offline",
)


def _render(
    sections: tuple[SectionText, ...] | list[SectionText],
    summary: Summary | None,
    language: Language = "zh",
    cycle: str = "2024-W40",
) -> str:
    return render_report(cycle=cycle, created=CREATED, sections=sections, summary=summary, language=language)


def _sections_from(parsed: ParsedReport, skipped: frozenset[str] = frozenset()) -> list[SectionText]:
    """Parsed sections as renderer input, keyed by title; the caller knows which were skipped."""
    return [
        SectionText(
            key=s.title,
            title=s.title,
            content=s.content,
            state="skipped" if s.title in skipped else "submitted" if s.content else "missing",
            style=s.style,
        )
        for s in parsed.sections
    ]


# --- render ---------------------------------------------------------------------------------


def test_render_matches_the_spec_excerpt() -> None:
    assert _render(SPEC_SECTIONS, SPEC_SUMMARY) == SPEC_EXCERPT


def test_render_sources_as_titles_and_english_words() -> None:
    sections = (
        SectionText(key="settlement", title="Settlement", content="Volume up 3%."),
        SectionText(key="incidents", title="Incidents", content="", state="missing", style="heading"),
        SectionText(key="other", title="Other", content="ignored", state="skipped"),
    )
    summary = Summary(
        reflections=[SummaryItem("Keep a backup channel.", ("settlement", "incidents"))],
        next_week=[],
        source="llm",
    )
    expected = """\
# 2024-W40

Created: 2024-10-10 18:05

- 【Settlement】
    Volume up 3%.

## 【Incidents】

(missing)

- 【Other】
    (skipped)

## Lessons and reflections

1. Keep a backup channel. (sources: Settlement, Incidents)

# Next week's work and goals

(none)
"""
    assert _render(sections, summary, "en") == expected


def test_render_missing_skipped_and_zh_sources() -> None:
    sections = (
        SectionText(key="a", title="结算通道", content="  \n\n", state="submitted"),
        SectionText(key="b", title="系统指标", content="x", state="skipped", style="heading"),
        SectionText(key="c", title="生产事件", content="", state="missing", style="heading"),
    )
    summary = Summary(
        reflections=[],
        next_week=[SummaryItem("第一行\n第二行", ("a", "c", "gone"))],
        source="offline",
    )
    expected = """\
# 2024-W38&W39

Created: 2024年10月10日 18:05

- 【结算通道】
    （未提交）

## 【系统指标】

（本期跳过）

## 【生产事件】

（未提交）

## 收获与反思

（无）

# 下周工作及目标

1. 第一行
   第二行（来源：结算通道、生产事件、gone）
"""
    assert _render(sections, summary, cycle="2024-W38&W39") == expected


def test_render_keeps_owner_lines_tabs_and_inner_blank_lines() -> None:
    content = "\n1. 第一项  \n\t- 子项\t\n\n  2) 两空格缩进\n\n"
    sections = (SectionText(key="a", title="其他", content=content),)
    expected = "# 2024-W40\n\nCreated: 2024年10月10日 18:05\n\n- 【其他】\n    1. 第一项\n    \t- 子项\n\n      2) 两空格缩进\n"
    assert _render(sections, None) == expected


def test_render_without_summary_has_no_closing_sections_and_an_empty_one_says_none() -> None:
    empty = Summary(reflections=[], next_week=[], source="offline")
    without = _render(SPEC_SECTIONS, None)
    assert "收获与反思" not in without and "下周工作" not in without
    assert without.endswith("重跑后恢复。\n")
    assert _render(SPEC_SECTIONS, empty) == without + "\n## 收获与反思\n\n（无）\n\n# 下周工作及目标\n\n（无）\n"


def test_render_is_deterministic_and_ends_with_one_newline() -> None:
    first = _render(SPEC_SECTIONS, SPEC_SUMMARY)
    assert first == _render(SPEC_SECTIONS, SPEC_SUMMARY)
    assert first.endswith("\n") and not first.endswith("\n\n")


# --- parse ----------------------------------------------------------------------------------


def test_parse_the_spec_excerpt() -> None:
    expected = ParsedReport(
        cycle="2024-W40",
        created="2024年10月10日 18:05",
        sections=tuple(ParsedSection(s.title, s.style, s.content) for s in SPEC_SECTIONS),
        reflections=(SummaryItem("外部通道都要有备份和到期提醒。", ()),),
        next_week=(SummaryItem("招商银行直连上线准备。", ()),),
    )
    assert parse_report(SPEC_EXCERPT) == expected


TEAM_TITLES = [
    ("结算通道", "item"),
    ("清分对账", "item"),
    ("风控引擎", "item"),
    ("支付网关", "item"),
    ("O1 业务服务", "heading"),
    ("系统指标", "heading"),
    ("生产事件", "heading"),
    ("其他", "item"),
]


@pytest.mark.parametrize(
    ("name", "cycle", "created"),
    [
        ("report-2024-W40.md", "2024-W40", "2024年10月10日 18:05"),
        ("report-2024-W39.md", "2024-W39", "2024年9月26日 18:10"),
    ],
)
def test_parse_examples(name: str, cycle: str, created: str) -> None:
    text = (EXAMPLES / name).read_text(encoding="utf-8")
    parsed = parse_report(text)
    assert (parsed.cycle, parsed.created) == (cycle, created)
    assert [(s.title, s.style) for s in parsed.sections] == TEAM_TITLES
    assert all(s.content for s in parsed.sections[:-1])
    assert len(parsed.reflections) >= 2 and len(parsed.next_week) >= 4
    known = {title for title, _ in TEAM_TITLES}
    assert all(set(item.sources) <= known for item in parsed.reflections + parsed.next_week)
    # The examples are exactly what render.py writes for what they hold.
    created_at = datetime.strptime(created, "%Y年%m月%d日 %H:%M").replace(tzinfo=SHANGHAI)
    summary = Summary(list(parsed.reflections), list(parsed.next_week), "imported")
    again = render_report(
        cycle=cycle, created=created_at, sections=_sections_from(parsed), summary=summary, language="zh"
    )
    assert again == text


def test_parse_example_details() -> None:
    w40 = parse_report((EXAMPLES / "report-2024-W40.md").read_text(encoding="utf-8"))
    assert w40.sections[0].content.split("\n")[:2] == [
        "1. 通道数据：",
        "    - 本周处理交易3120笔，金额2150万元（国庆假期，交易量较上周下降18%）。",
    ]
    assert w40.reflections[0] == SummaryItem(
        "外部通道都要有备份和到期提醒，证书续期至少提前30天发起。", ("结算通道", "生产事件")
    )
    w39 = parse_report((EXAMPLES / "report-2024-W39.md").read_text(encoding="utf-8"))
    assert w39.sections[-1] == ParsedSection("其他", "item", "")
    assert w39.next_week[-1] == SummaryItem("国庆假期值班与应急预案演练。", ())


PASTED = """\ufeff# 清算中心周报 2024-W52&2025-W01\r
一些开场白，会被忽略。\r
创建时间：2024年12月31日 17:00\r
- 【结算通道】\r
  1. 两空格缩进\r
    - 嵌套\r
  2) 第二项\r
- 【清分对账】：\r
\t（1）制表符缩进\r
\t\t- 更深\r
- 【风控引擎】无\r
## 系统指标\r
\r
- 【P2】告警3条，不是新的一节\r
- 可用性99.99%\r
### 细节也留在正文里\r
## 【生产事件】\r
（未提交）\r
- 【其他】\r
    （本期跳过）\r
### 【收获与反思】\r
- 外部通道要有备份（来源：结算通道、生产事件）\r
- 告警要分级\r
  并且有人值守 (sources: 系统指标)\r
## 下周计划：\r
1、上线准备\r
（2）灰度10%\r
"""


def test_parse_what_people_paste() -> None:
    expected = ParsedReport(
        cycle="2024-W52&2025-W01",
        created="2024年12月31日 17:00",
        sections=(
            ParsedSection("结算通道", "item", "1. 两空格缩进\n  - 嵌套\n2) 第二项"),
            ParsedSection("清分对账", "item", "（1）制表符缩进\n\t- 更深"),
            ParsedSection("风控引擎", "item", "无"),
            ParsedSection(
                "系统指标",
                "heading",
                "- 【P2】告警3条，不是新的一节\n- 可用性99.99%\n### 细节也留在正文里",
            ),
            ParsedSection("生产事件", "heading", ""),
            ParsedSection("其他", "item", ""),
        ),
        reflections=(
            SummaryItem("外部通道要有备份", ("结算通道", "生产事件")),
            SummaryItem("告警要分级\n并且有人值守", ("系统指标",)),
        ),
        next_week=(SummaryItem("上线准备", ()), SummaryItem("灰度10%", ())),
    )
    assert parse_report(PASTED) == expected


def test_parse_english_and_none_placeholders() -> None:
    text = """\
Weekly report

# Lessons and reflections
(none)

## Next week
1) Ship it (sources: Settlement, Incidents)
2) 1.5x capacity
"""
    parsed = parse_report(text)
    assert (parsed.cycle, parsed.created, parsed.sections, parsed.reflections) == (None, None, (), ())
    assert parsed.next_week == (
        SummaryItem("Ship it", ("Settlement", "Incidents")),
        SummaryItem("1.5x capacity", ()),
    )


def test_parse_title_without_cycle() -> None:
    parsed = parse_report("# 清算中心周报\n\nCreated: 2024-10-10 18:05\n\n- 【其他】\n    有\n")
    assert (parsed.cycle, parsed.created) == (None, "2024-10-10 18:05")
    assert parsed.sections == (ParsedSection("其他", "item", "有"),)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   \n\t\r\n  ",
        "\x00\x01\x02PK\x03\x04\xff\xfe binary-ish \x00\x00\n\x1b[0m",
        "# 2024-W40\n\nCreated: 2024年10月10日 18:05\n\n就这些，没有分节。\n### 小标题\n",
    ],
)
def test_junk_raises_user_error(text: str) -> None:
    with pytest.raises(UserError) as err:
        parse_report(text)
    assert "\n" not in str(err.value) and str(err.value)


# --- round trips ----------------------------------------------------------------------------


def _assert_round_trip(
    sections: list[SectionText], summary: Summary | None, language: Language, cycle: str = "2024-W40"
) -> None:
    text = _render(sections, summary, language, cycle)
    parsed = parse_report(text)
    assert parsed.cycle == cycle
    want = [
        ParsedSection(s.title, s.style, normalize_content(s.content) if s.state == "submitted" else "")
        for s in sections
    ]
    assert list(parsed.sections) == want
    titles = {s.key: s.title for s in sections}

    def as_parsed(items: list[SummaryItem]) -> list[SummaryItem]:
        return [
            SummaryItem(
                "\n".join(line.strip() for line in item.text.split("\n") if line.strip()),
                tuple(titles[k] for k in item.sources),
            )
            for item in items
        ]

    closing = summary is not None
    assert list(parsed.reflections) == (as_parsed(summary.reflections) if closing and summary else [])
    assert list(parsed.next_week) == (as_parsed(summary.next_week) if closing and summary else [])
    # Rendering what was read gives the same report again (skipped reads as empty, like missing).
    again = Summary(list(parsed.reflections), list(parsed.next_week), "imported") if closing else None
    skipped = frozenset(s.title for s in sections if s.state == "skipped")
    assert _render(_sections_from(parsed, skipped), again, language, cycle) == text


def test_round_trip_spec_excerpt() -> None:
    _assert_round_trip(list(SPEC_SECTIONS), SPEC_SUMMARY, "zh")


def test_round_trip_hand_built_cases() -> None:
    sections = [
        SectionText("a", "Settlement", "\tTabbed first line\n\n\t\tdeeper\nplain"),
        SectionText("b", "Metrics", "  indented heading body\n- list\n\n1. numbered", style="heading"),
        SectionText("c", "Incidents", "", state="missing", style="heading"),
        SectionText("d", "Gateway", "    four spaces of the owner's own"),
        SectionText("e", "Other", "whatever", state="skipped"),
        SectionText("f", "Risk", "- 【P2】 tag inside a heading body", style="heading"),
    ]
    summary = Summary(
        reflections=[SummaryItem("two\nlines", ("a", "b")), SummaryItem("plain", ())],
        next_week=[SummaryItem(f"goal {n}", ("f",)) for n in range(12)],
        source="llm",
    )
    for language in _LANGUAGES:
        _assert_round_trip(sections, summary, language, "2024-W52&2025-W01")
        _assert_round_trip(sections, None, language)
        _assert_round_trip(sections[:1], Summary([], [SummaryItem("x", ("a",))], "offline"), language)


_WORDS = ["交易", "成功率99.95%", "通道", "对账", "v3", "P99 180ms", "上线", "risk", "TPS", "（说明）", "a-b"]
_LEADS = ["", "", "1. ", "2) ", "（1）", "- ", "* ", "- 【P2】", "10/08 14:20  "]
_INDENTS = ["", "", "  ", "    ", "\t", "\t\t", "        "]
_STYLES: list[SectionStyle] = ["item", "heading"]
_STATES: list[SectionState] = ["submitted", "submitted", "submitted", "missing", "skipped"]
_LANGUAGES: list[Language] = ["zh", "en"]
_TITLES = ["结算通道", "清分对账", "O1 业务服务", "系统指标", "生产事件", "其他", "Gateway", "KR 1.2"]


def _random_line(rng: random.Random) -> str:
    words = "".join(rng.choice(_WORDS) for _ in range(rng.randint(1, 4)))
    return rng.choice(_INDENTS) + rng.choice(_LEADS) + words + rng.choice(["", " ", "\t", "  "])


def _random_content(rng: random.Random) -> str:
    lines = [
        _random_line(rng) if rng.random() > 0.15 else rng.choice(["", "   "])
        for _ in range(rng.randint(0, 6))
    ]
    return rng.choice(["\n", "\r\n"]).join(lines)


def _random_items(rng: random.Random, keys: list[str]) -> list[SummaryItem]:
    items = []
    for _ in range(rng.randint(0, 4)):
        text = "\n".join(rng.choice(_WORDS) + rng.choice(_WORDS) for _ in range(rng.randint(1, 3)))
        items.append(SummaryItem(text, tuple(rng.sample(keys, rng.randint(0, min(3, len(keys)))))))
    return items


def test_round_trip_random_reports() -> None:
    """A seeded property test (hypothesis is not a dependency): 300 random reports survive a round trip."""
    rng = random.Random(20241010)
    for _ in range(300):
        sections = []
        for n, title in enumerate(rng.sample(_TITLES, rng.randint(1, len(_TITLES)))):
            style = rng.choice(_STYLES)
            sections.append(
                SectionText(
                    key=f"k{n}",
                    title=title,
                    content=_random_content(rng),
                    state=rng.choice(_STATES),
                    style=style,
                )
            )
        keys = [s.key for s in sections]
        summary = rng.choice([None, Summary(_random_items(rng, keys), _random_items(rng, keys), "llm")])
        _assert_round_trip(
            sections, summary, rng.choice(_LANGUAGES), rng.choice(["2024-W40", "2024-W38&W39"])
        )


def test_an_item_that_already_ends_in_its_sources_says_them_once() -> None:
    """An owner (or a model) who wrote `（来源：…）` at the end of a line: the item's own sources replace it."""
    summary = Summary(reflections=[SummaryItem("外部通道都要有备份。（来源：结算通道）", ("settlement",))],
                      next_week=[SummaryItem("招商银行直连上线准备 (sources: 结算通道)", ("settlement", "incidents")),
                                 SummaryItem("未注明来源的一条（来源：结算通道）", ())],
                      source="offline")
    sections = (SectionText(key="settlement", title="结算通道", content="x"),
                SectionText(key="incidents", title="生产事件", content="y"))
    markdown = _render(sections, summary)
    assert "1. 外部通道都要有备份。（来源：结算通道）\n" in markdown
    assert "1. 招商银行直连上线准备（来源：结算通道、生产事件）\n" in markdown
    assert "2. 未注明来源的一条（来源：结算通道）\n" in markdown  # no sources of its own: kept as written
    assert markdown.count("（来源：") == 3
    back = parse_report(markdown)
    assert [(i.text, i.sources) for i in back.next_week] == [
        ("招商银行直连上线准备", ("结算通道", "生产事件")), ("未注明来源的一条", ("结算通道",))]
