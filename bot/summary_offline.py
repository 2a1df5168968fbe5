"""The offline summarizer: 收获与反思 and 下周工作及目标 drafted by rules, with no network and no model.

It is the fallback when the LLM cannot be used (spec §7), so it is deterministic and fast, and every
item is either an owner's statement lifted as written or one of last cycle's goals still open; items
name the sections they came from and carry no number their sources do not contain.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from typing import NamedTuple

from bot.i18n import Lang
from bot.model import SectionText, Summary, SummaryItem, SummaryRequest
from bot.titles import norm_title, sections_named

DONE_OVERLAP = 0.5  # share of a goal's bigrams / words a statement must contain to report on it
ATTRIBUTE_OVERLAP = 0.3  # lower bar for finding the section a source-less goal belongs to
MAX_ATTRIBUTED = 3  # a goal as close to many sections as to one is about none in particular
LABEL_MAX_CHARS = 24  # a short parent line without punctuation reads as a title for its children

CARRY_PREFIX: dict[Lang, str] = {"zh": "（延续）", "en": "(carried over) "}

# --- Markdown to statements -------------------------------------------------------------------

_LINE = re.compile(
    r"(?P<indent>[ \t\u3000]*)(?:>[ \t]*)*"
    r"(?:(?P<heading>#{1,6})(?:[ \t]+|$)"
    r"|(?P<marker>[-*+](?=\s)|[•·▪●○◦]|\d{1,3}[.)．、）](?!\d)|[（(]\d{1,3}[）)]|[①-⑳]"
    r"|[一二三四五六七八九十]{1,3}、|[a-z][.)](?=\s))[ \t\u3000]*(?:\[[ xX]\][ \t]*)?)?"
    r"(?P<text>.*)"
)
_BULLETS = frozenset("-*+")
_NUMBERED = re.compile(r"\d{1,3}[.)．、）](?!\d)[ \t\u3000]*(?!\[)")
_MAYBE_MARKED = frozenset("#>-*+•·▪●○◦0123456789（(①②③④⑤⑥⑦⑧⑨⑩⑪⑫⑬⑭⑮⑯⑰⑱⑲⑳一二三四五六七八九十abcdefghijklmnopqrstuvwxyz")
_RULE = re.compile(r"(?:[-*_]\s*){3,}|`{3}.*|~{3}.*")
_CJK = re.compile(r"[\u3400-\u9fff]")
_SENTENCE_PUNCT = re.compile(r"[。；;！!？?，,]|\.(?!\d)")
_COLONS = ("：", ":")
_END_PUNCT = "。.！!？?…"
_NOTHING = re.compile(
    r"(?:[^：:]{1,24}[：:]\s*)?"
    r"(?:(?:本周|本期|本月)?均?(?:无|暂无|没有|未发生|未出现)(?:任何)?(?:重大)?(?:生产|线上)?"
    r"(?:事件|事故|故障|问题|风险|异常|告警)?"
    r"|(?:no|none|nothing|n/?a)(?: new| major)?(?: production| prod)?"
    r"(?: incidents?| issues?| outages?| risks?| blockers?)?(?: this (?:week|cycle))?(?: to report)?"
    r"|同上|略)[。.！!]?",
    re.IGNORECASE,
)


def _indent_width(indent: str) -> int:
    """Leading whitespace as columns: a tab is 4, a full-width space 2."""
    return len(indent) + 3 * indent.count("\t") + indent.count("\u3000")


def _join_text(left: str, right: str) -> str:
    """Join a wrapped line to its item: no space between Chinese characters."""
    if _CJK.match(left[-1:]) or _CJK.match(right[:1]):
        return left + right
    return f"{left} {right}"


def _is_label(text: str) -> bool:
    """Whether a parent line titles its children (`通道数据：`, `Payments gateway`)."""
    if text.endswith(_COLONS):
        return True
    return len(text) <= LABEL_MAX_CHARS and not _SENTENCE_PUNCT.search(text)


def _label_prefix(text: str) -> str:
    """`通道数据：` / `Payments gateway: `, whichever colon the label was written with."""
    label = text.rstrip("：: ")
    return f"{label}：" if _CJK.search(label) else f"{label}: "


@dataclass
class _Tree:
    """Content lines in order, as parallel lists (thousands of lines per report, so no object each)."""

    texts: list[str] = field(default_factory=list)
    indents: list[int] = field(default_factory=list)
    levels: list[int] = field(default_factory=list)  # Markdown heading level, 0 for items and lines
    parents: list[int] = field(default_factory=list)  # index of the parent line, -1 for none
    has_children: list[bool] = field(default_factory=list)


def _line_parts(raw: str) -> tuple[str, str | None, str | None, str]:
    """(indent, heading hashes, list marker, text) of a line; the usual `- ` and `1. ` skip the big regex."""
    body = raw.lstrip(" \t\u3000")
    first = body[:1]
    if first in _BULLETS and body[1:2] in (" ", "\t") and body[2:3] != "[":
        return raw[: len(raw) - len(body)], None, first, body[2:]
    if first.isdigit() and (numbered := _NUMBERED.match(body)) is not None:
        return raw[: len(raw) - len(body)], None, numbered.group(), body[numbered.end():]
    if first in _MAYBE_MARKED:
        return _LINE.match(raw).groups()  # type: ignore[union-attr,return-value]
    return raw[: len(raw) - len(body)], None, None, body


def _tree(content: str) -> _Tree:
    """Each line knowing its parent, markers stripped; wrapped lines rejoined to their item."""
    tree = _Tree()
    texts, indents, levels, has_children = tree.texts, tree.indents, tree.levels, tree.has_children
    stack: list[int] = []
    for raw in content.splitlines():
        indent_text, hashes, marker, text = _line_parts(raw)
        if "**" in text:
            text = text.replace("**", "")
        text = text.strip()
        if "  " in text or "\t" in text or "\u3000" in text or "\xa0" in text:
            text = " ".join(text.split())
        if not text or (not marker and text[0] in "-*_`~" and _RULE.fullmatch(text)):
            continue
        indent = len(indent_text)
        if "\t" in indent_text or "\u3000" in indent_text:
            indent = _indent_width(indent_text)
        level = len(hashes) if hashes else 0
        if level:
            while stack and (not levels[stack[-1]] or levels[stack[-1]] >= level):
                stack.pop()
        else:
            while stack and not levels[stack[-1]] and indents[stack[-1]] >= indent:
                stack.pop()
            top = stack[-1] if stack else -1
            # An unmarked deeper line under a sentence is the sentence wrapped, not a child of it.
            if (top >= 0 and not marker and not levels[top] and not has_children[top]
                    and not texts[top].endswith(_COLONS)):
                texts[top] = _join_text(texts[top], text)
                continue
        parent = stack[-1] if stack else -1
        if parent >= 0:
            has_children[parent] = True
        stack.append(len(texts))
        texts.append(text)
        indents.append(indent)
        levels.append(level)
        tree.parents.append(parent)
        has_children.append(False)
    return tree


def _says_nothing(text: str) -> bool:
    """A bare label or "无" / "none": nothing to summarize."""
    if text.endswith(_COLONS):
        return True
    return len(text) <= 40 and ("无" in text or "没" in text or "未" in text or "略" in text or "同上" in text
                                or "n" in text or "N" in text) and bool(_NOTHING.fullmatch(text))


def labeled_statements(content: str) -> list[tuple[str, str]]:
    """An owner's Markdown as (labels, statement) pairs: one per item or line, markers gone; `labels`
    is the parent labels it sits under (`通道数据：`, `Payments gateway: `), empty for none."""
    tree = _tree(content)
    prefixes: list[str] = []  # per line: the labels its children are put behind
    out: list[tuple[str, str]] = []
    for text, level, parent, has_children in zip(tree.texts, tree.levels, tree.parents, tree.has_children,
                                                strict=True):
        prefix = prefixes[parent] if parent >= 0 else ""
        if level or (has_children and _is_label(text)):
            prefixes.append(prefix + _label_prefix(text))
            continue
        prefixes.append(prefix)
        if not _says_nothing(text):
            out.append((prefix, text))
    return out


def split_statements(content: str) -> list[str]:
    """An owner's Markdown as statements: one per item or line, markers gone, parent labels kept."""
    return [prefix + text for prefix, text in labeled_statements(content)]


# --- What a statement says --------------------------------------------------------------------

_OPEN_CUES = (
    "计划", "待", "进行中", "推进中", "预计", "下周", "准备", "筹备", "跟进", "排期", "开发中", "测试中", "联调中",
    "评审中", "未完成", "启动", "下月", "月底前", "年底前",
    "planned", "planning", "plan to", "plans to", "pending", "in progress", "in-progress", "ongoing", "on-going",
    "expected", "expect", "eta", "next week", "will", "to do", "to-do", "todo", "scheduled", "wip",
    "working on", "preparing", "in review", "under review", "by end of", "by the end of",
)
_NOT_OPEN = ("按计划", "计划外", "期待", "接待", "对待", "看待", "招待", "款待", "待遇", "优待",
             "as expected", "than expected")
_REFLECT_CUES = (
    "事件", "故障", "异常", "延迟", "超时", "失败", "风险", "阻塞", "卡点", "问题", "告警", "投诉", "差错", "回滚", "下降",
    "降级", "中断", "事故",
    "incident", "incidents", "outage", "outages", "failure", "failures", "failed", "fail", "fails", "decline",
    "declined", "declines", "declining", "dropped", "drop", "drops", "risk", "risks", "risky", "blocker",
    "blockers", "blocked", "blocking", "delay", "delays", "delayed", "timeout", "timeouts", "timed out",
    "error", "errors", "rollback", "rollbacks", "rolled back",
)
# phrases that hold a reflection cue but report its absence, a plan or a metric: not a lesson
_NOT_REFLECT = (
    "无异常", "未见异常", "没有异常", "无故障", "零故障", "无降级", "未降级", "无事故", "零事故", "无事件", "无风险",
    "无问题", "未发现问题", "无差错", "零差错", "无中断", "未中断", "无失败", "零失败", "无超时", "无阻塞", "无告警",
    "无延迟", "未延迟", "回滚预案", "回滚方案", "回滚演练", "风险评估", "告警数量", "告警数", "告警总数",
    "p99延迟", "p95延迟", "p90延迟", "平均延迟", "延迟中位数", "延迟p99", "延迟p95",
    "no incident", "no incidents", "no errors", "no error", "without errors", "no outage", "no failures",
    "zero errors", "zero incidents", "rollback plan",
)
_DONE_CUES = ("完成", "已上线", "已投产", "已发布", "已交付", "done", "complete", "completed", "launched",
              "released", "shipped", "finished", "delivered", "went live")
_NOT_DONE = ("没有完成", "没完成", "未能完成", "未完成", "无法完成", "不能完成", "待完成", "n't done", "not done",
             "not yet done", "not complete", "not completed", "not yet completed", "not launched",
             "not released", "not shipped", "not finished", "not delivered", "yet to be completed")

_LETTERS = frozenset("abcdefghijklmnopqrstuvwxyz")


class _Cue(NamedTuple):
    """A cue as `_Texts.with_any` scans for it."""

    text: str
    needle: bytes | None  # the cue's bytes when it is ASCII, for the fast byte scan
    masks: tuple[tuple[int, tuple[str, ...]], ...]  # phrases holding the cue, by the cue's offset in them
    word_start: bool  # an English cue must start a word (`eta` is not in `beta`)...
    word_end: bool  # ...and end one


def _cues(cues: Iterable[str], masks: Iterable[str] = ()) -> tuple[_Cue, ...]:
    """Cues ready for scanning, each with the masks that contain it (期待 for 待)."""
    masks = tuple(masks)
    out = []
    for cue in cues:
        by_offset: dict[int, list[str]] = {}
        for mask in masks:
            if cue in mask:
                by_offset.setdefault(mask.index(cue), []).append(mask)
        out.append(_Cue(cue, cue.encode() if cue.isascii() else None,
                        tuple((at, tuple(group)) for at, group in by_offset.items()),
                        cue[0] in _LETTERS, cue[-1] in _LETTERS))
    return tuple(out)


_OPEN = _cues(_OPEN_CUES, _NOT_OPEN)
_REFLECT = _cues(_REFLECT_CUES, _NOT_REFLECT)
_DONE = _cues(_DONE_CUES, _NOT_DONE)

# Each pattern starts with a literal so the scan over a whole report stays fast; what precedes the
# literal (the month's number, the percentage's) is checked around each match.
_DATE = re.compile(r"月[ \t]*(?:上旬|中旬|下旬|底|初|末|\d{1,2}[ \t]*[日号]?[ \t]*前)"
                   r"|by (?:mid|early|late|jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)")
_PERCENT = r"(\d+(?:\.\d+)?)[ \t]*[%％]"
_PROGRESS_THEN_PERCENT = re.compile(
    r"(?:进度|进展|完成度|完成|推进|灰度|放量|迁移|progress|complete|done|rolled out|rollout|migrated)"
    r"[^，。；,;%％\d\n率]{0,8}" + _PERCENT  # no 率: 完成率 / success rate is a metric, not progress
)
_PERCENT_THEN_PROGRESS = re.compile(r"[%％][ \t]*(?:complete|done|finished|rolled out|through|migrated)")
_NUMBER_AT_END = re.compile(r"(\d+(?:\.\d+)?)[ \t]*$")
_HUNDRED = re.compile(r"100(?:\.0+)?[ \t]*[%％]")
_CLAUSE = re.compile(r"[，,；;。！!？?]|\.(?!\d)")
_INCIDENT_SECTION = re.compile(r"事件|事故|故障|incident|outage|post-?mortem", re.IGNORECASE)


class _Texts:
    """Many lower-cased statements joined into one string, so each cue is looked for in one scan."""

    def __init__(self, texts: Sequence[str]) -> None:
        self.texts = [t.lower() for t in texts]
        self.blob = "\n".join(self.texts)
        self.ends = list(accumulate(len(t) + 1 for t in self.texts))
        # One byte per character, so positions agree with `blob`; English cues are found far faster here.
        self.ascii = self.blob.encode("ascii", "replace")

    def _index(self, position: int) -> int:
        """Which text a position of the blob falls in."""
        return bisect_right(self.ends, position)

    def _whole_word(self, start: int, cue: str) -> bool:
        """An English cue must not be part of a longer word (`by` in `standby`)."""
        blob, end = self.blob, start + len(cue)
        return not ((cue[0] in _LETTERS and start and blob[start - 1] in _LETTERS)
                    or (cue[-1] in _LETTERS and end < len(blob) and blob[end] in _LETTERS))

    def with_any(self, cues: Iterable[_Cue]) -> set[int]:
        """Indexes of the texts holding one of the cues, outside its masks (期待 holds no 待)."""
        blob, ascii_, ends, hits = self.blob, self.ascii, self.ends, set()
        for cue, needle, masks, word_start, word_end in cues:
            start = blob.find(cue) if needle is None else ascii_.find(needle)
            while start >= 0:
                end = start + len(cue)
                if not ((word_start and start and blob[start - 1] in _LETTERS)
                        or (word_end and end < len(blob) and blob[end] in _LETTERS)
                        or any(start >= at and blob.startswith(group, start - at) for at, group in masks)):
                    index = bisect_right(ends, start)
                    hits.add(index)
                    start = ends[index] - 1  # one hit is enough for a text
                start = blob.find(cue, start + 1) if needle is None else ascii_.find(needle, start + 1)
        return hits

    def _dated(self, match: re.Match[str]) -> bool:
        """`10月下旬`, `11月20日前`, `by mid`: a 月 only counts after the month's number."""
        if match.group().startswith("by"):
            return self._whole_word(match.start(), "by")
        before = self.blob[max(0, match.start() - 4):match.start()].rstrip(" \t")
        return before[-1:].isdigit()

    def _progress_below_100(self, match: re.Match[str]) -> bool:
        """`进度60%` / `60% done`: a progress percentage short of 100."""
        if match.re is _PROGRESS_THEN_PERCENT:
            return float(match.group(1)) < 100
        number = _NUMBER_AT_END.search(self.blob, max(0, match.start() - 16), match.start())
        return number is not None and float(number.group(1)) < 100

    def _matching(self, pattern: re.Pattern[str], keep: Callable[[re.Match[str]], bool]) -> set[int]:
        """Indexes of the texts where the pattern matches in a way `keep` accepts."""
        return {self._index(m.start()) for m in pattern.finditer(self.blob) if keep(m)}

    def open(self) -> set[int]:
        """Texts saying work is still planned, pending, under way, expected or short of 100%."""
        return (self.with_any(_OPEN) | self._matching(_DATE, self._dated)
                | self._matching(_PROGRESS_THEN_PERCENT, self._progress_below_100)
                | self._matching(_PERCENT_THEN_PROGRESS, self._progress_below_100))

    def reflective(self) -> set[int]:
        """Texts about an incident, a decline, a risk or a blocker."""
        return self.with_any(_REFLECT)

    def _whole_number(self, match: re.Match[str]) -> bool:
        """`100%`, not the tail of `1100%` or `0.100%`."""
        return not match.start() or self.blob[match.start() - 1] not in "0123456789."

    def done(self) -> set[int]:
        """Texts with a word of completion (完成 but not 未完成), or 100%."""
        return self.with_any(_DONE) | self._matching(_HUNDRED, self._whole_number)


def is_open(text: str) -> bool:
    """Whether a statement says work is still planned, pending, under way or expected."""
    return bool(_Texts([text]).open())


def is_reflection(text: str) -> bool:
    """Whether a statement is about an incident, a decline, a risk or a blocker."""
    return bool(_Texts([text]).reflective())


def _clauses_done(texts: Sequence[str]) -> set[int]:
    """Indexes of the texts where some clause reports something finished and nothing open."""
    clauses: list[str] = []
    owners: list[int] = []
    for i in sorted(_Texts(texts).done()):
        for clause in _CLAUSE.split(texts[i]):
            if clause.strip():
                clauses.append(clause)
                owners.append(i)
    batch = _Texts(clauses)
    return {owners[j] for j in batch.done() - batch.open()}


def says_done(text: str) -> bool:
    """Whether some clause of the statement reports something finished with nothing open in it."""
    return bool(_clauses_done([text]))


# --- Overlap between a goal and what was written ----------------------------------------------

_CJK_RUN = re.compile(r"[\u3400-\u9fff]+")
_WORD = re.compile(r"[a-z]{2,}")
_DIGITS = re.compile(r"[0-9]+")
_STOPWORDS = frozenset(
    "an and are as at be been by for from in into is it its next of on or our the this to was we week "
    "were will with".split())


def _stem(word: str) -> str:
    """A crude English stem, enough for `launch` to be found in `launched`, `release` in `released`."""
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            break
    return word[:-1] if word.endswith("e") and len(word) > 3 else word


@dataclass(frozen=True)
class _Features:
    """What a goal is about: Chinese character bigrams, stemmed English words, whole numbers."""

    words: tuple[str, ...]
    numbers: frozenset[str]


def _features(text: str) -> _Features:
    """The bigrams, words and numbers of a goal, for `_overlap`."""
    words: set[str] = set()
    for run in _CJK_RUN.findall(text):
        if len(run) == 1:
            words.add(run)
        else:
            words.update(run[i:i + 2] for i in range(len(run) - 1))
    words.update(_stem(w) for w in _WORD.findall(text.lower()) if w not in _STOPWORDS)
    return _Features(tuple(sorted(words)), frozenset(_DIGITS.findall(text)))


def _overlap(goal: _Features, text: str) -> float:
    """Share of the goal's bigrams, words and whole numbers (3 is not in 2035) in the lower-cased text."""
    total = len(goal.words) + len(goal.numbers)
    if not total:
        return 0.0
    found = sum(map(text.__contains__, goal.words))
    if goal.numbers:
        found += len(goal.numbers.intersection(_DIGITS.findall(text)))
    return found / total


# --- The summary ------------------------------------------------------------------------------

MAX_LESSONS = 6
MAX_GOALS = 8
PER_SECTION = 2  # goals from one section, once every section has had its turn
PER_SECTION_TODO = 3  # an owner's own TODO list may give one more
LESSONS_PER_SECTION = 3  # before the rest of the lessons fill up
MAX_TODO_JOINED = 4  # items of one TODO list in one goal

NOTE: dict[Lang, str] = {
    "zh": "规则草稿：未用大模型，由规则从各部分原文整理而成，发布前请审阅。",
    "en": "Rule-based draft: no LLM was used; drawn by rules from the sections' text, review before publishing.",
}

_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_CARRIED = re.compile(r"(?:\s*(?:（延续）|\(carried over\)))+\s*", re.IGNORECASE)

# goals --
_TODO_LABEL = re.compile(r"todo|to-do|to do|待办|下周|下阶段|下一步|下一阶段|后续|计划|next steps?|next week|plans?\b",
                         re.IGNORECASE)
_TODO_INLINE = re.compile(r"^\s*(?:todo|to-do|待办(?:事项)?|下周(?:计划|工作|待办)?|下阶段(?:计划|工作)?|下一步(?:计划)?"
                          r"|后续(?:计划)?|next steps?|next week)\s*[：:]\s*", re.IGNORECASE)
_INLINE_ITEM = re.compile(r"(?:^|(?<=[\s；;，,。：:]))(?:\d{1,2}[.．](?=\s|\D)|\d{1,2}[、)）]|[（(]\d{1,2}[)）]|[①-⑳])\s*")
_INLINE_SPLIT = re.compile(r"[；;]\s*")
_INLINE_LABEL = re.compile(r"^(?P<label>[^：:，,。；;()（）]{1,20})[：:]\s*(?P<body>.+)$")
_GOAL_CLAUSE = re.compile(r"[，,；;。]|\.(?!\d)(?:\s|$)")
_PLAN_CUES = ("下周", "下阶段", "下一步", "计划", "拟", "准备", "筹备", "启动", "排期", "将",
              "next week", "plan", "will", "scheduled", "to do", "todo", "preparing")
_EXPECT_CUES = ("预计", "月底", "下旬", "中旬", "上旬", "eta", "expected", "expect", "by ")
_ZH_LEAD = re.compile(r"^(?:目前|当前|仍需|仍|还需|还|已)?(?:预计|计划|拟|将要|将|下周|下阶段|下一步|近期|本月内|后续)+(?:在|于)?")
_ZH_PROGRESS = re.compile(r"^(?P<subj>.+?)(?:的)?(?:进度|进展|完成度|完成|迁移)(?:到|至|了)?[ \t]*"
                          r"(?P<pct>\d+(?:\.\d+)?[ \t]*[%％])$")
_BARE_PROGRESS = re.compile(r"^\s*(?:进度|完成度|完成)?\s*\d+(?:\.\d+)?\s*[%％]\s*(?:complete|completed|done|finished)?\s*$",
                            re.IGNORECASE)
_ZH_DOING = re.compile(r"^(?P<subj>.+?)(?P<verb>开发|测试|联调|评审|推进|进行|排查|实施|改造|对接)中$")
_ZH_WAITING = re.compile(r"^(?:仍|还)?待(?P<what>.+)$")
_EN_PROGRESS = re.compile(r"^(?P<subj>.+?)[:：]?\s+(?P<pct>\d+(?:\.\d+)?%)\s+(?:complete|completed|done|migrated|"
                          r"rolled out|through|finished)$", re.IGNORECASE)
_EN_PLANNED = re.compile(r"\s*\b(?:is |are )?(?:planned|scheduled)(?: for)?(?: next week)?\b", re.IGNORECASE)
_EN_LEAD = re.compile(r"^(?:next week,?\s*|(?:we )?plan to\s+|(?:we )?will\s+)+", re.IGNORECASE)
_EN_DOING = re.compile(r"^(?P<subj>.+?)\s+(?:is |are )?(?:in progress|ongoing|on-going|under way|underway|in review|"
                       r"under review|wip)$", re.IGNORECASE)

# lessons --
_STAMP = re.compile(r"^(?P<date>\d{1,2}/\d{1,2}|\d{1,2}月\d{1,2}[日号])(?:[ \t]+\d{1,2}:\d{2})?[ \t]*")
_CAUSE_ZH = re.compile(r"(?:根本)?原因(?:是|为|系|在于|：|:)\s*(?P<cause>[^，,；;。]+)|根因(?:是|为|：|:)?\s*(?P<root>[^，,；;。]+)"
                       r"|(?:由于|因为)(?P<since>[^，,；;。]+)|(?:确认)?(?:是|系|为)?(?:其|由)?(?P<lead>[^，,；;。]{2,30}?)(?:所)?导致"
                       r"(?P<effect>[^，,；;。]*)")
_CAUSE_HINT = re.compile(r"原因|根因|导致|由于|因为|caused|due to|because", re.IGNORECASE)
_CAUSE_EN = re.compile(r"(?:caused by|due to|because(?: of)?|root cause(?: was| is|:)?)\s+(?P<cause>[^,;.]+)",
                       re.IGNORECASE)
_LACK_ZH = re.compile(r"(?:无|没有|缺少|缺乏|未设置|未配置|未做|未加|未接入)[^，,；;。]{0,8}?"
                      r"(?:备用|备份|冗余|兜底|预案|监控|告警|提醒|超时|重试|限流|熔断|校验|灰度|回滚|切换)[^，,；;。]{0,8}"
                      r"|内存泄[露漏][^，,；;。]{0,8}|单点[^，,；;。]{0,8}|(?:到期|过期)(?:失效|中断|停用|未续)[^，,；;。]{0,8}")
_LACK_EN = re.compile(r"\b(?:no|without(?: a| any)?|missing|lacked|lacks|lack of)\s+(?:backup|fallback|failover|redundancy|"
                      r"alerts?|alerting|monitoring|timeout|retr(?:y|ies)|rollback|expiry reminder)s?\b(?: [a-z]+){0,2}"
                      r"|\bmemory leak\b|\bsingle point of failure\b|\bexpired\b", re.IGNORECASE)
_RISK_LABEL = re.compile(r"风险|问题|隐患|阻塞|卡点|risks?\b|issues?\b|blockers?|concerns?", re.IGNORECASE)
_RISK_TEXT = re.compile(r"风险|隐患|阻塞|卡点|受阻|延期|推迟|滞后|即将到期|到期|\bat risk\b|\bblock(?:ed|er|ing)\b|"
                        r"\bdelayed\b|\bslipp(?:ed|ing)\b|\brisks?\b|\bexpir(?:es|ing)\b", re.IGNORECASE)
_NOT_RISK = re.compile(r"无风险|风险评估|风险可控|高风险|风险名单|风险商户|风险交易|风险规则|风险等级|风险模型|"
                       r"no risks?\b|risk review|high-risk|risk (?:rules?|list|score|model)s?\b", re.IGNORECASE)
_DECLINE = re.compile(r"下降|下滑|减少|回落|降低|降至|降到|dropped|declined|fell|decreased|down \d", re.IGNORECASE)
_GOOD_METRIC = re.compile(r"交易量|交易额|交易笔数|成功率|可用性|覆盖率|准确率|转化率|收入|签约|活跃|留存|"
                          r"volume|success|availability|coverage|accuracy|conversion|revenue|uptime", re.IGNORECASE)
_BAD_METRIC = re.compile(r"差错|误拦|误报|告警|延迟|时长|耗时|慢查询|故障|投诉|失败|错误|拒付|成本|"
                         r"errors?|latency|chargebacks?|failures?|complaints?|costs?|incidents?", re.IGNORECASE)
_EXPLAINED = re.compile(r"假期|节假日|节前|节后|国庆|春节|季节|holiday|seasonal", re.IGNORECASE)
_CAUGHT = re.compile(r"(?=.*(?:告警|alert))(?=.*(?:未影响|未造成影响|无影响|没有影响|no impact|without impact))",
                     re.IGNORECASE)
_RECOVERY = re.compile(r"恢复|已补|补单|重跑|已处理|已修复|已回滚|回滚后|扩容后|重启后|无资金损失|影响时长|持续\d|"
                       r"recovered|restored|fixed|rerun|rolled back", re.IGNORECASE)

_ADVICE: dict[Lang, tuple[tuple[re.Pattern[str], str], ...]] = {
    "zh": (
        (re.compile(r"备用|备份|冗余|兜底|单点|切换"), "关键外部依赖要有备用方案"),
        (re.compile(r"到期|过期"), "到期事项要有提醒和续期预案"),
        (re.compile(r"监控|告警|提醒"), "要补上监控和告警"),
        (re.compile(r"超时|重试|限流|熔断"), "要补上超时与重试保护"),
        (re.compile(r"内存泄"), "要定位泄露并加内存监控"),
        (re.compile(r"预案|回滚|灰度"), "变更前要备好预案"),
    ),
    "en": (
        (re.compile(r"backup|fallback|failover|redundan|single point", re.I), "critical dependencies need a fallback"),
        (re.compile(r"expir", re.I), "expiring items need reminders and a renewal plan"),
        (re.compile(r"alert|monitor", re.I), "add the missing monitoring and alerts"),
        (re.compile(r"timeout|retr", re.I), "add timeouts and retries"),
        (re.compile(r"memory leak", re.I), "find the leak and watch memory"),
        (re.compile(r"rollback", re.I), "prepare a rollback before changes"),
    ),
}
_FALLBACK_ADVICE: dict[Lang, str] = {"zh": "要补上这一环", "en": "close that gap"}
_LESSON_WORDS: dict[Lang, dict[str, str]] = {
    "zh": {"caused": "{cause}导致{effect}{when}，{advice}", "cause_only": "{effect}{when}，原因是{cause}，{advice}",
           "root": "要从根因上补防护",
           "review": "{effect}{when}，需复盘根因",
           "caught": "{effect}{when}，告警和值班及时介入、未造成影响，监控有效，仍需复盘根因", "risk": "风险：{text}", "decline": "{text}，需查明原因",
           "when": "（{dates}）", "join": "、", "times": "，共{n}次"},
    "en": {"caused": "{effect}{when}: caused by {cause}; {advice}", "cause_only": "{effect}{when}: caused by {cause};"
           " {advice}", "root": "fix it at the root", "review": "{effect}{when}: review the root cause",
           "caught": "{effect}{when}: the alert and on-call caught it with no impact; still review the root cause", "risk": "Risk: {text}",
           "decline": "{text}; find out why", "when": " ({dates})", "join": ", ", "times": ", {n} times"},
}


@dataclass(slots=True)
class _Statement:
    """One statement, the labels it sits under and the section it was written in."""

    section: SectionText
    labels: str
    text: str
    incident: bool  # from a section that reports incidents: every line of it is a lesson
    order: int = 0

    @property
    def full(self) -> str:
        return self.labels + self.text


@dataclass(slots=True)
class _Candidate:
    """A goal or a lesson drafted from statements: its rank, where it came from and its sentence."""

    kind: int  # lower comes first
    section: int  # index of its (first) section in the report
    order: int
    text: str
    sources: tuple[str, ...]
    group: str = ""  # lessons that share a cause share this key
    effects: list[str] = field(default_factory=list)
    dates: list[str] = field(default_factory=list)


def _statements(sections: Sequence[SectionText]) -> list[_Statement]:
    """Every statement of the submitted sections, in section then line order."""
    out: list[_Statement] = []
    for section in sections:
        if section.state != "submitted":
            continue
        incident = bool(_INCIDENT_SECTION.search(section.key) or _INCIDENT_SECTION.search(section.title))
        for labels, text in labeled_statements(section.content):
            out.append(_Statement(section, labels, text, incident, len(out)))
    return out


def _merge_key(text: str) -> str:
    """Statements equal up to case and closing punctuation are the same statement."""
    return text.rstrip(_END_PUNCT + "，,、；;：: ").casefold()


def _finish(text: str) -> str:
    """End the text as a sentence, in the punctuation of its own language (and capitalised, in English)."""
    text = text.strip().rstrip("，,、；;：: ")
    text = text[:1].upper() + text[1:]
    if not text or text[-1] in _END_PUNCT:
        return text
    return text + ("。" if _CJK.search(text) else ".")


def _title(section: SectionText) -> str:
    """The section's title, or its key when it has none."""
    return section.title.strip() or section.key


def _trim(text: str) -> str:
    """A clause without the sentence punctuation around it."""
    return text.strip().strip("，,、；;：:。.").strip()


def _uncarried(text: str) -> str:
    """A goal's text without the carried-over prefixes earlier cycles gave it."""
    text = text.strip()
    prefix = _CARRIED.match(text)
    return text[prefix.end():] if prefix else text


def _last_label(labels: str) -> str:
    """The innermost label a statement sits under, without its colon."""
    parts = [p.strip() for p in re.split(r"[：:]\s*", labels) if p.strip()]
    return parts[-1] if parts else ""


def _with_label(label: str, text: str, language: Lang) -> str:
    if not label:
        return text[:1].upper() + text[1:] if language == "en" else text
    return f"{label}：{text}" if _CJK.search(label + text) else f"{label}: {text}"


# goals --
def _plan_label(label: str) -> str:
    """`好店下阶段工作` → `好店`: the label of a plan without the words that say it is one."""
    return re.sub(r"(?:的)?(?:下一?阶段|下周|下一步|后续|todo|next steps?|next week)?(?:工作|计划|待办|安排)?$", "",
                  label, flags=re.IGNORECASE).strip(" ：:")


def _todo_items(statement: _Statement) -> tuple[str, list[str]] | None:
    """An owner's own plan: (label, items) for a statement under a `TODO：` / `下周计划` label, a
    `好店下阶段工作：…` line, or a `TODO：1. … 2. …` list written inline."""
    label = _last_label(statement.labels)
    if label and _TODO_LABEL.search(label) and not _RISK_LABEL.search(statement.labels):
        return _plan_label(label), [_trim(statement.text)]
    m = _TODO_INLINE.match(statement.text)
    inline = _INLINE_LABEL.match(statement.text)
    if m:
        label, rest = "", statement.text[m.end():]
    elif inline and _TODO_LABEL.search(inline["label"]) and not _RISK_LABEL.search(inline["label"]):
        label, rest = _plan_label(inline["label"]), inline["body"]
    else:
        return None
    marks = list(_INLINE_ITEM.finditer(rest))
    if marks:
        items = [rest[a.end():b.start() if b else len(rest)] for a, b in zip(marks, [*marks[1:], None], strict=True)]
    else:
        items = _INLINE_SPLIT.split(rest)
    found = [t for item in items if (t := _trim(item))]
    return (label, found) if found else None


def _open_kind(clause: str, open_clauses: set[str] | None = None) -> int | None:
    """2 for a plan, 3 for an expected date, 4 for work under way; None for a clause that is not open
    (`open_clauses`: the open ones among many, found in one scan)."""
    if not (clause in open_clauses if open_clauses is not None else is_open(clause)):
        return None
    lower = clause.lower()
    if any(cue in lower for cue in _PLAN_CUES):
        return 2
    if any(cue in lower for cue in _EXPECT_CUES) or _DATE.search(lower):
        return 3
    return 4


def _as_goal(clause: str, language: Lang, before: str = "") -> str:
    """An open clause phrased as a goal: `预计10月下旬上线` → `10月下旬上线`, `进度60%` → `推进…（当前60%）`;
    `before`, the clause in front of it, gives a goal without a subject its subject."""
    text = _trim(clause)
    if language == "zh" or _CJK.search(text):
        text = re.sub(r"^(?:其中|另外|同时)", "", text)
        if m := _ZH_PROGRESS.match(text) or (_ZH_PROGRESS.match(before + text) if before else None):
            subj = _ZH_LEAD.sub("", m["subj"]).strip()
            return f"推进{subj.removeprefix('推进')}（当前{m['pct']}）" if subj else text
        text = _ZH_LEAD.sub("", text) or text
        text = re.sub(r"(?<=\S)(?:计划|预计|拟)?(?:于|在)?下(?:周|一?阶段)(?=\S)", "", text)  # 通道计划下周接入 → 通道接入
        text = _as_goal_zh(text)
        return f"{before}，{text}" if before and len(text) < 8 else text
    if m := _EN_PROGRESS.match(text) or (_EN_PROGRESS.match(before + text) if before else None):
        return f"finish the {m['subj'].strip()} (now {m['pct']})"
    text = _EN_LEAD.sub("", _EN_PLANNED.sub("", text)).strip() or text
    if m := _EN_DOING.match(text):
        text = f"continue {m['subj']}"
    return f"{before}: {text}" if before and len(text.split()) < 4 else text


def _as_goal_zh(text: str) -> str:
    if m := _ZH_DOING.match(text):
        verb = "" if m["verb"] in ("推进", "进行") else m["verb"]
        return "推进" + m["subj"].removeprefix("推进") + verb
    if m := _ZH_WAITING.match(text):
        return "跟进" + m["what"]
    return text


def _goal_parts(statement: _Statement) -> tuple[str, list[str]]:
    """The label a goal from this statement would carry, and the statement's clauses."""
    label = _last_label(statement.labels)
    body = statement.text
    if m := _INLINE_LABEL.match(body):
        label, body = (f"{label}{m['label']}" if label and _CJK.search(label) else m["label"]), m["body"]
    return label, _clauses(body)


def _goal(statement: _Statement, language: Lang, open_clauses: set[str] | None = None) -> tuple[int, str] | None:
    """The statement's open clauses as one goal, with its rank; None when it reports only results."""
    label, clauses = _goal_parts(statement)
    kept: list[str] = []
    kind = 9
    for i, clause in enumerate(clauses):
        k = _open_kind(clause, open_clauses)
        if k is None:
            continue
        kind = min(kind, k)
        before = clauses[i - 1] if i and not kept and not label and not says_done(clauses[i - 1]) else ""
        if i == 0 and label and _BARE_PROGRESS.match(clause):
            # `rules engine: 80% complete`: the label is what is in progress
            before, label = label + " ", _last_label(statement.labels)
        goal = _as_goal(clause, language, before)
        if goal and goal not in kept:
            kept.append(goal)
    if not kept:
        return None
    joined = ("，" if _CJK.search("".join(kept)) else ", ").join(kept)
    title = _title(statement.section)
    if not label and norm_title(title) not in norm_title(joined):
        label = title  # `推进试单（当前80%）` says whose trial only with the section's name
    return kind, _finish(_with_label(label, joined, language))


# lessons --
def _clauses(text: str) -> list[str]:
    return [c for c in (_trim(c) for c in _GOAL_CLAUSE.split(text)) if c]


def _advice(text: str, language: Lang, default: str | None = None, *, causes_only: bool = False) -> str:
    """A short lesson for a missing safeguard; a cause alone (备份任务 is no missing backup) gets fewer."""
    for pattern, advice in _ADVICE[language][2 if causes_only else 0:]:
        if pattern.search(text):
            return advice
    return _FALLBACK_ADVICE[language] if default is None else default


def _cause(text: str, language: Lang) -> tuple[str, str] | None:
    """(cause, effect) when the statement says why something happened (原因是…, …导致…, caused by …)."""
    if not _CAUSE_HINT.search(text):
        return None
    for m in (_CAUSE_ZH.finditer(text) if _CJK.search(text) else _CAUSE_EN.finditer(text)):
        groups = m.groupdict()
        cause = _trim(next((groups[g] for g in ("cause", "root", "since", "lead") if groups.get(g)), ""))
        cause = re.sub(r"^(?:通道方|行方|对方|厂商|供应商)?(?:确认|反馈|排查)?(?:是|系|为)?(?:其)?", "", cause) or cause
        if len(cause) < 2:
            continue
        effect = _trim(groups.get("effect") or "")
        if not effect:
            effect = _effect(_clauses(text[:m.start()]) + _clauses(text[m.end():]))
        return cause, effect
    return None


def _lesson(statement: _Statement, language: Lang, settled: bool) -> tuple[_Candidate, str, str] | None:
    """A lesson from an incident's cause, a missing safeguard, a risk or blocker, or a decline;
    `settled`: the statement reports something done and nothing open (续期已完成: a risk no more)."""
    words = _LESSON_WORDS[language]
    text = _trim(statement.text)
    date = ""
    if m := _STAMP.match(text):
        date, text = m["date"], text[m.end():]
    lack = _lack(text)
    cause = _cause(text, language)
    section = statement.section.key
    if cause or lack or statement.incident:
        c, effect = cause or ("", "")
        if not effect and lack and (holder := next((x for x in _clauses(text) if lack in x), "")):
            rest = _trim(re.sub(r"\s*(?:with|and|but)?\s*$", "", holder.replace(lack, " ").strip()))
            effect = rest if len(rest) >= 8 and rest != holder else ""
        if not effect:
            effect = _effect(_clauses(text)) or _clauses(text)[0]
        kind = 0 if c else 1 if lack else 2
        caught = not c and not lack and bool(_CAUGHT.search(text))
        group = "|".join(_norm(k) for k in (c, lack) if k)
        cand = _Candidate(kind, 0, statement.order, "", (section,), group, [effect], [date] if date else [])
        cand.text = (_finish(words["caught"].format(effect=effect, when=_when([date], language))) if caught
                     else _lesson_text(cand, c, lack, language))
        return cand, c, lack
    full_clauses = _clauses(statement.full)
    if (_RISK_LABEL.search(statement.labels) or _RISK_TEXT.search(text)) and not _NOT_RISK.search(statement.full) \
            and not settled:
        body = text if _RISK_LABEL.search(statement.labels) else _trim(statement.full)
        risk = body if re.match(r"^(?:风险|risk)", body, re.IGNORECASE) else words["risk"].format(text=body)
        return _Candidate(3, 0, statement.order, _finish(risk), (section,)), "", ""
    for i, clause in enumerate(full_clauses):
        if not _DECLINE.search(clause):
            continue
        near = clause + " " + (full_clauses[i - 1] if i else "")
        if _GOOD_METRIC.search(near) and not _BAD_METRIC.search(near) and not _EXPLAINED.search(statement.full):
            decline = _finish(words["decline"].format(text=_trim(statement.full)))
            return _Candidate(4, 0, statement.order, decline, (section,)), "", ""
    return None


_PROBLEM = re.compile(r"超时|延迟|失败|异常|丢失|中断|超过|超出|升高|变慢|报错|错误|告警|积压|拥堵|宕机|不可用|下降|"
                      r"late|fail|timed out|timeout|error|outage|down|slow|lost|spike", re.IGNORECASE)


def _effect(clauses: Sequence[str]) -> str:
    """What went wrong: the first clause naming a problem (with the next when it names one too), not a
    recovery nor a missing safeguard; else the first clause that is neither."""
    usable = [c for c in clauses if not _RECOVERY.search(c) and not _lack(c)]
    for i, clause in enumerate(usable):
        if _PROBLEM.search(clause):
            if i + 1 < len(usable) and _PROBLEM.search(usable[i + 1]) and len(clause) < 16:
                return f"{clause}{'，' if _CJK.search(clause) else ', '}{usable[i + 1]}"
            return clause
    return usable[0] if usable else ""


def _lack(text: str) -> str:
    """The missing safeguard a statement names (无备用通道, no fallback), a lapse (到期中断) only when none."""
    found = [_trim(m.group()) for m in (*_LACK_ZH.finditer(text), *_LACK_EN.finditer(text))]
    return next((f for f in found if not re.match(r"到期|过期|expired", f, re.IGNORECASE)), found[0] if found else "")


def _listed(things: Sequence[str], language: Lang, most: int = 3) -> str:
    """`a、b、c等` / `a, b, c and others`: a grouped lesson names a few of its effects, not all of them."""
    words = _LESSON_WORDS[language]
    shown = words["join"].join(things[:most])
    return shown + (("等" if language == "zh" else " and others") if len(things) > most else "")


def _when(dates: Sequence[str], language: Lang) -> str:
    """`（10/08、10/10）` / ` (10/08, 10/10)`, or nothing."""
    shown = list(dict.fromkeys(d for d in dates if d))
    return _LESSON_WORDS[language]["when"].format(dates=_listed(shown, language)) if shown else ""


def _lesson_text(cand: _Candidate, cause: str, lack: str, language: Lang) -> str:
    """The lesson's sentence from its cause, effects (several when grouped), dates and missing safeguard."""
    words = _LESSON_WORDS[language]
    effects = _listed(list(dict.fromkeys(e for e in cand.effects if e)), language)
    when = _when(cand.dates, language)
    times = len(set(zip(cand.effects, cand.dates or [""] * len(cand.effects), strict=False)))
    if times > 1:
        when += words["times"].format(n=times)
    if cause:
        template = "caused" if effects else "cause_only"
        if language == "zh" and "导致" in cause:
            cause += "，"
        advice = _advice(lack, language, "") if lack else _advice(cause, language, "", causes_only=True)
        text = words[template].format(cause=cause, effect=effects or cause, when=when, advice=advice or words["root"])
        if lack and lack not in cause:
            text = text.replace(("，" if language == "zh" else "; ") + (advice or words["root"]),
                                ("，" if language == "zh" else ", ") + lack + ("：" if language == "zh" else ": ")
                                + (advice or words["root"]), 1)
        return _finish(text)
    if lack:
        sep = "，" if language == "zh" else ", "
        lead = f"{effects}{when}{sep}{lack}" if effects and effects != lack else f"{lack}{when}"
        return _finish(f"{lead}{'：' if language == 'zh' else ': '}{_advice(lead, language)}")
    return _finish(words["review"].format(effect=effects, when=when))


def _norm(text: str) -> str:
    return re.sub(r"\W", "", text).casefold()


class _Causes:
    """Lessons that share a cause (or a missing safeguard) become one, naming every effect and date."""

    def __init__(self) -> None:
        self.lessons: list[tuple[_Candidate, str, str]] = []

    def add(self, cand: _Candidate, cause: str, lack: str, language: Lang) -> bool:
        """True when `cand` joined an earlier lesson with the same cause or the same missing safeguard."""
        keys = set(filter(None, cand.group.split("|")))
        if not keys:
            return False
        for first, first_cause, first_lack in self.lessons:
            same_cause = bool(cause and first_cause and (
                _norm(cause) == _norm(first_cause)
                or (_overlap(_features(first_cause), cause) >= 0.8
                    and set(_DIGITS.findall(cause)) == set(_DIGITS.findall(first_cause)))))
            if not same_cause and not keys & set(first.group.split("|")):
                continue
            first.sources = tuple(dict.fromkeys(first.sources + cand.sources))
            if same_cause:
                first.effects.extend(cand.effects)
                first.dates.extend(cand.dates)
                first.text = _lesson_text(first, first_cause, first_lack or lack, language)
            return True
        self.lessons.append((cand, cause, lack))
        return False


class _Goals:
    """Decides which of last cycle's goals are still open and which sections they belong to."""

    def __init__(self, sections: Sequence[SectionText], statements: Sequence[_Statement], texts: _Texts,
                 open_: set[int]) -> None:
        self.sections = {s.key: s for s in sections}
        self.texts, self.open = texts, open_
        self.indexes: dict[str, list[int]] = {}
        for i, statement in enumerate(statements):
            self.indexes.setdefault(statement.section.key, []).append(i)
        self._blobs: dict[str, str] = {}
        self._done: dict[str, list[int]] = {}

    def _blob(self, key: str) -> str:
        """All of a section's statements: a statement can only hold what its section holds."""
        if key not in self._blobs:
            self._blobs[key] = "\n".join(self.texts.texts[i] for i in self.indexes[key])
        return self._blobs[key]

    def _find_done(self, keys: Iterable[str]) -> None:
        """The statements of these sections that report something finished, found in one batch."""
        new = [key for key in keys if key not in self._done]
        if not new:
            return
        indexes = [i for key in new for i in self.indexes[key]]
        batch = _Texts([self.texts.texts[i] for i in indexes])
        cued = {indexes[j] for j in batch.done()}
        # Only a statement that also says something is open needs reading clause by clause.
        mixed = sorted(cued & self.open)
        done = (cued - self.open) | {mixed[j] for j in _clauses_done([self.texts.texts[i] for i in mixed])}
        for key in new:
            self._done[key] = [i for i in self.indexes[key] if i in done]

    def is_done(self, goal: _Features, sources: tuple[str, ...], target: float | None = None) -> bool:
        """Reported done by a statement of one of its sources (of any section when it has none):
        a word of completion, or the goal's target percentage reached (`提升到96%` met by `96.4%`)."""
        pool = [key for key in sources or tuple(self.indexes)
                if key in self.indexes and _overlap(goal, self._blob(key)) >= DONE_OVERLAP]
        self._find_done(pool)
        texts = self.texts.texts
        if any(_overlap(goal, texts[i]) >= DONE_OVERLAP for key in pool for i in self._done[key]):
            return True
        return target is not None and any(
            _overlap(goal, texts[i]) >= DONE_OVERLAP and any(float(p) >= target for p in _PERCENTS.findall(texts[i]))
            for key in pool for i in self.indexes[key])

    def best_sections(self, goal: _Features) -> list[str]:
        """The first few submitted sections the goal overlaps most, if it overlaps any enough."""
        scores = {key: _overlap(goal, self._blob(key)) for key in self.indexes}
        best = max(scores.values(), default=0.0)
        if best < ATTRIBUTE_OVERLAP:
            return []
        return [key for key, score in scores.items() if score == best][:MAX_ATTRIBUTED]

    def attribute(self, text: str, goal: _Features, sources: tuple[str, ...]) -> list[str]:
        """Its sources in this report, else the best-overlapping ones; [] when its numbers are not there."""
        keys = list(dict.fromkeys(k for k in sources if k in self.sections)) or self.best_sections(goal)
        # Every number of an item must appear in one of its sources, so a goal whose figures the
        # sections no longer mention cannot be traced to them.
        source_text = "\n".join(f"{self.sections[k].title}\n{self.sections[k].content}" for k in keys)
        return keys if all(n in source_text for n in _NUMBER.findall(text)) else []


_TARGET = re.compile(r"(?:提升到|提升至|提高到|提高至|达到|推进到|增加到|增长到|reach(?:es|ed)?|to)[ \t]*"
                     r"(\d+(?:\.\d+)?)[ \t]*[%％]", re.IGNORECASE)
_PERCENTS = re.compile(r"(\d+(?:\.\d+)?)[ \t]*[%％]")


def _target(text: str) -> float | None:
    """The percentage a goal aims up to (`覆盖率提升到96%` → 96), if it names one."""
    m = _TARGET.search(text)
    return float(m.group(1)) if m else None



def _carried_over(request: SummaryRequest, goals: _Goals, dropped: list[dict[str, object]]) -> list[SummaryItem]:
    """Last cycle's goals that no statement reports done, prefixed as carried over; a goal written without
    sources (an imported report's) belongs to the sections its words name by title."""
    titles = [(s.key, s.title) for s in request.sections if s.state == "submitted"]
    out: list[SummaryItem] = []
    seen: set[str] = set()
    for goal in request.last_goals:
        text = _uncarried(goal.text)
        if not text or _merge_key(text) in seen:
            continue
        feats = _features(text)
        in_report = tuple(k for k in goal.sources if k in goals.sections)
        scope = in_report or (sections_named(text, titles) if not goal.sources else ())
        if goals.is_done(feats, scope, _target(text)):
            continue
        seen.add(_merge_key(text))
        keys = goals.attribute(text, feats, scope)
        if not keys:
            dropped.append({"text": goal.text, "sources": list(goal.sources),
                            "reason": "carried-over goal traces to no section of this report"})
            continue
        out.append(SummaryItem(CARRY_PREFIX[request.language] + _finish(text), tuple(keys)))
    return out


def _spread(candidates: Sequence[_Candidate], limit: int, caps: Callable[[int], int]) -> list[_Candidate]:
    """Up to `limit` candidates, best first within each section, one section's turn after another:
    every section gives its best before any gives a second, and none gives more than `caps(section)`."""
    by_section: dict[int, list[_Candidate]] = {}
    for cand in sorted(candidates, key=lambda c: (c.section, c.kind, c.order)):
        by_section.setdefault(cand.section, []).append(cand)
    picked: list[_Candidate] = []
    turn = 0
    while len(picked) < limit and any(turn < min(len(v), caps(k)) for k, v in by_section.items()):
        for section, cands in by_section.items():
            if turn < min(len(cands), caps(section)) and len(picked) < limit:
                picked.append(cands[turn])
        turn += 1
    return picked


def summarize_offline(request: SummaryRequest) -> Summary:
    """Draft both closing sections by rules, offline: next week's goals from what is still open,
    lessons from incidents' causes, risks, declines and blockers; spread across sections, no line in both."""
    language = request.language
    statements = _statements(request.sections)
    position = {s.key: i for i, s in enumerate(request.sections)}
    texts = _Texts([s.full for s in statements])
    open_, flagged = texts.open(), texts.reflective()
    done_ = _clauses_done([s.full for s in statements])
    goals: list[_Candidate] = []
    lessons: list[_Candidate] = []
    drafted: list[tuple[_Candidate, str, str]] = []
    maybe_goals: list[_Statement] = []
    todo_sections: set[int] = set()
    for i, statement in enumerate(statements):
        where = position[statement.section.key]
        sources = (statement.section.key,)
        todo = _todo_items(statement)
        if todo is not None:
            label, items = todo
            todo_sections.add(where)
            joined = ("；" if _CJK.search("".join(items)) else "; ").join(items[:MAX_TODO_JOINED])
            goals.append(_Candidate(0, where, statement.order,
                                    _finish(_with_label(label or _title(statement.section), joined, language)), sources))
            continue
        found = _lesson(statement, language, i in done_ and i not in open_) if (statement.incident or i in flagged or i in open_
                                                  or _CAUSE_HINT.search(statement.text)
                                                  or _LACK_ZH.search(statement.text)
                                                  or _LACK_EN.search(statement.text)) else None
        if found is not None:
            found[0].section = where
            drafted.append(found)
            continue
        if i in open_:
            maybe_goals.append(statement)
    clauses = sorted({c for st in maybe_goals for c in _goal_parts(st)[1]})
    batch = _Texts(clauses)
    open_clauses = {clauses[j] for j in batch.open()}
    for statement in maybe_goals:
        if (goal := _goal(statement, language, open_clauses)) is not None:
            kind, text = goal
            goals.append(_Candidate(kind, position[statement.section.key], statement.order, text,
                                    (statement.section.key,)))
    dropped: list[dict[str, object]] = []
    if request.last_goals:
        current = [statements[c.order].full.lower() for c in goals]
        for item in _carried_over(request, _Goals(request.sections, statements, texts, open_), dropped):
            feats = _features(_uncarried(item.text).removeprefix(CARRY_PREFIX[language]))
            if any(_overlap(feats, text) >= DONE_OVERLAP for text in current):
                continue  # this week's own line about it says more
            goals.append(_Candidate(1, min(position.get(k, len(position)) for k in item.sources), -1, item.text,
                                    item.sources))
    causes = _Causes()  # the best-ranked lesson of a cause takes in the others
    for cand, cause, lack in sorted(drafted, key=lambda d: (d[0].kind, d[0].section, d[0].order)):
        if not causes.add(cand, cause, lack, language):
            lessons.append(cand)
    lesson_keys = {_merge_key(c.text) for c in lessons}
    goals = _unique(g for g in goals if _merge_key(g.text) not in lesson_keys)
    picked_goals = _spread(goals, MAX_GOALS, lambda s: PER_SECTION_TODO if s in todo_sections else PER_SECTION)
    picked_goals.sort(key=lambda c: (c.section, c.kind, c.order))
    ranked = sorted(_unique(lessons), key=lambda c: (c.kind, c.section, c.order))
    picked_lessons = _spread_ranked(ranked, MAX_LESSONS, LESSONS_PER_SECTION)
    def sourced(c: _Candidate) -> SummaryItem:
        return SummaryItem(c.text, tuple(sorted(c.sources, key=lambda k: position.get(k, len(position)))))

    return Summary(
        reflections=[sourced(c) for c in picked_lessons],
        next_week=[sourced(c) for c in picked_goals],
        source="offline", note=NOTE[language], dropped=dropped, calls=0,
    )


def _unique(candidates: Iterable[_Candidate]) -> list[_Candidate]:
    """Candidates with the same sentence become one, with every section it came from."""
    out: dict[str, _Candidate] = {}
    for cand in candidates:
        key = _merge_key(cand.text)
        if key in out:
            out[key].sources = tuple(dict.fromkeys(out[key].sources + cand.sources))
        else:
            out[key] = cand
    return list(out.values())


def _spread_ranked(ranked: Sequence[_Candidate], limit: int, per_section: int) -> list[_Candidate]:
    """The best `limit` in rank order, at most `per_section` from one section unless nothing else is left."""
    picked: list[_Candidate] = []
    held: list[_Candidate] = []
    count: dict[int, int] = {}
    for cand in ranked:
        if len(picked) >= limit:
            break
        if count.get(cand.section, 0) < per_section:
            count[cand.section] = count.get(cand.section, 0) + 1
            picked.append(cand)
        elif len(held) < limit:
            held.append(cand)
    if len(picked) < limit:
        chosen = {id(c) for c in picked + held[: limit - len(picked)]}
        picked = [c for c in ranked if id(c) in chosen]
    return picked
