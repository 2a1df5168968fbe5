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

MAX_ITEMS = 10
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


def split_statements(content: str) -> list[str]:
    """An owner's Markdown as statements: one per item or line, markers gone, parent labels kept."""
    tree = _tree(content)
    prefixes: list[str] = []  # per line: the labels its children are put behind
    out: list[str] = []
    for text, level, parent, has_children in zip(tree.texts, tree.levels, tree.parents, tree.has_children,
                                                strict=True):
        prefix = prefixes[parent] if parent >= 0 else ""
        if level or (has_children and _is_label(text)):
            prefixes.append(prefix + _label_prefix(text))
            continue
        prefixes.append(prefix)
        if not _says_nothing(text):
            out.append(prefix + text)
    return out


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

_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_CARRIED = re.compile(r"(?:\s*(?:（延续）|\(carried over\)))+\s*", re.IGNORECASE)


@dataclass(slots=True)
class _Statement:
    """One statement and the section it was written in."""

    section: SectionText
    text: str
    incident: bool  # from a section that reports incidents: every line of it is a reflection


@dataclass(slots=True)
class _Group:
    """Identical statements from one or more sections, kept as one item."""

    text: str
    sections: list[SectionText] = field(default_factory=list)
    keys: set[str] = field(default_factory=set)


def _statements(sections: Sequence[SectionText]) -> list[_Statement]:
    """Every statement of the submitted sections, in section then line order."""
    out: list[_Statement] = []
    for section in sections:
        if section.state != "submitted":
            continue
        incident = bool(_INCIDENT_SECTION.search(section.key) or _INCIDENT_SECTION.search(section.title))
        out.extend(_Statement(section, text, incident) for text in split_statements(section.content))
    return out


def _merge_key(text: str) -> str:
    """Statements equal up to case and closing punctuation are the same statement."""
    return text.rstrip(_END_PUNCT + "，,、；;：: ").casefold()


def _merge(statements: Iterable[_Statement]) -> list[_Group]:
    """Identical statements become one group with every section they came from, first seen first."""
    groups: dict[str, _Group] = {}
    for statement in statements:
        key = _merge_key(statement.text)
        group = groups.get(key)
        if group is None:
            group = groups[key] = _Group(statement.text)
        if statement.section.key not in group.keys:
            group.keys.add(statement.section.key)
            group.sections.append(statement.section)
    return list(groups.values())


def _finish(text: str) -> str:
    """End the text as a sentence, in the punctuation of its own language."""
    text = text.rstrip("，,、；;：: ")
    if not text or text[-1] in _END_PUNCT:
        return text
    return text + ("。" if _CJK.search(text) else ".")


def _title(section: SectionText) -> str:
    """The section's title, or its key when it has none."""
    return section.title.strip() or section.key


def _reflection(group: _Group, language: Lang) -> SummaryItem:
    """The statement as said; where it was said is its sources (the report prints them after it)."""
    return SummaryItem(_finish(group.text), tuple(s.key for s in group.sections))


def _uncarried(text: str) -> str:
    """A goal's text without the carried-over prefixes earlier cycles gave it."""
    text = text.strip()
    prefix = _CARRIED.match(text)
    return text[prefix.end():] if prefix else text


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
    """Last cycle's goals that no statement reports done, prefixed as carried over."""
    out: list[SummaryItem] = []
    seen: set[str] = set()
    for goal in request.last_goals:
        text = _uncarried(goal.text)
        feats = _features(text)
        if not text or _merge_key(text) in seen or goals.is_done(feats, goal.sources, _target(text)):
            continue
        seen.add(_merge_key(text))
        keys = goals.attribute(text, feats, goal.sources)
        if not keys:
            dropped.append({"text": goal.text, "sources": list(goal.sources),
                            "reason": "carried-over goal traces to no section of this report"})
            continue
        out.append(SummaryItem(CARRY_PREFIX[request.language] + _finish(text), tuple(keys)))
    return out


def summarize_offline(request: SummaryRequest) -> Summary:
    """Draft both closing sections from the owners' statements and last cycle's goals, offline."""
    statements = _statements(request.sections)
    texts = _Texts([s.text for s in statements])
    open_, reflective = texts.open(), texts.reflective()
    reflections = _merge(s for i, s in enumerate(statements) if s.incident or i in reflective)
    dropped: list[dict[str, object]] = []
    carried = (_carried_over(request, _Goals(request.sections, statements, texts, open_), dropped)
               if request.last_goals else [])
    planned = _merge(s for i, s in enumerate(statements) if i in open_)
    return Summary(
        reflections=[_reflection(group, request.language) for group in reflections[:MAX_ITEMS]],
        next_week=(carried + [SummaryItem(_finish(g.text), tuple(s.key for s in g.sections))
                              for g in planned[: max(0, MAX_ITEMS - len(carried))]])[:MAX_ITEMS],
        source="offline", dropped=dropped, calls=0,
    )
