"""LLM drafts of 收获与反思 and 下周工作及目标: prompt, token budget, split and merge, traceability, cache.

No SDK is imported here: the chat model arrives as a `ChatModel` (handlers/llm.py wraps the openai
SDK), so the core can be read and tested alone. Whatever goes wrong, `Summarizer.summarize` returns
a Summary: the offline summarizer's, with a one-line note saying why.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import time
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bot.errors import report_error
from bot.model import SectionText, Summary, SummaryItem, SummaryRequest
from prompts import Prompt, load_prompt

logger = logging.getLogger(__name__)

Part = Literal["reflections", "next_week"]
PARTS: tuple[Part, Part] = ("reflections", "next_week")
MESSAGE_OVERHEAD = 8  # role and framing tokens per chat message, rounded up
MAX_MERGE_ROUNDS = 3
MAX_PER_PART = {"reflections": 6, "next_week": 8}  # what the prompt asks for, and the schema holds to
MAX_ANSWER_ITEMS = sum(MAX_PER_PART.values())
ANSWER_TOKENS_PER_ITEM = 90  # a Chinese sentence of ~50 characters, its sources and the JSON around it
MAX_ANSWER_TOKENS = MAX_ANSWER_ITEMS * ANSWER_TOKENS_PER_ITEM + 64
MAX_ITEM_CHARS = 400  # a sentence the prompt asks for is ~50; a longer "item" is not one
MAX_ANSWER_CHARS = 64 * 1024  # a server that ignores max_tokens is not read further than this
MIN_CJK_CHARS = 6  # shorter is a label or a placeholder, not a sentence
MIN_WORDS = 4
_CJK = re.compile("[\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\ufe30-\ufe4f\uff00-\uffef\U00020000-\U0003ffff]")
# A thousands comma only counts when three digits follow, so "3,120" is one number and "1,2" two.
_NUMBER = re.compile(r"\d+(?:,\d{3}(?!\d))*(?:[.:/]\d+)*%?")
_HAN = re.compile("[\u3400-\u9fff\uf900-\ufaff\U00020000-\U0003ffff]")
_LIST_MARKER = re.compile(r"^\s*(?:[-*•·]\s+|\d+[.)]\s+|\d+、\s*|[（(]\d+[)）]\s*)")
_FENCE = re.compile(r"```[ \t]*(?:json)?[ \t]*\n?(.*?)```", re.DOTALL | re.IGNORECASE)
_MAX_OBJECT_STARTS = 50  # how many "{" to try when digging JSON out of prose


# -- the chat model port ------------------------------------------------------------------------
@dataclass(frozen=True)
class ChatReply:
    """The model's raw answer and the tokens the server reported (0 when it reported none)."""

    text: str
    tokens_in: int = 0
    tokens_out: int = 0
    truncated: bool = False  # the server stopped at max_tokens


class ChatUnavailable(Exception):
    """The chat model gave no answer; the message is one short line for the summary's note."""


class ChatTimeout(ChatUnavailable):
    """The call, retries included, used up its whole time budget."""


class ChatModel(Protocol):
    """An OpenAI-compatible chat model: one system and one user message in, text out."""

    def complete(self, *, system: str, user: str, schema: dict[str, Any], format_hint: str = "",
                 max_tokens: int | None = None) -> ChatReply: ...


class SummaryCache(Protocol):
    """Generated summaries by cache key (the database in production, a dict in tests)."""

    def get(self, key: str) -> Summary | None: ...

    def put(self, key: str, summary: Summary, *, cycle_id: int | None = None) -> None: ...


# -- token estimate -----------------------------------------------------------------------------
def estimate_tokens(text: str) -> int:
    """Rough tokens without a tokenizer download: a CJK character ≈ 1 token, other text ≈ 4 chars."""
    cjk = len(_CJK.findall(text))
    return cjk + math.ceil((len(text) - cjk) / 4)


def estimate_prompt_tokens(system: str, user: str) -> int:
    """Estimated input tokens of one chat call with these two messages."""
    return estimate_tokens(system) + estimate_tokens(user) + 2 * MESSAGE_OVERHEAD


# -- the answer ---------------------------------------------------------------------------------
class AnswerError(ValueError):
    """The model's answer is not the JSON we asked for; the message says how, in a few words."""


class AnswerItem(BaseModel):
    """One item as the model wrote it."""

    model_config = ConfigDict(extra="ignore")

    text: str = Field(max_length=MAX_ITEM_CHARS)
    sources: list[str] = Field(default_factory=list, max_length=20)

    @field_validator("sources", mode="before")
    @classmethod
    def _listify(cls, v: Any) -> Any:
        if v is None:
            return []
        return [v] if isinstance(v, str) else v


@dataclass
class Answer:
    """The JSON the prompt asks for, read item by item: the good items per part, and the bad ones."""

    reflections: list[AnswerItem] = field(default_factory=list)
    next_week: list[AnswerItem] = field(default_factory=list)
    malformed: list[dict[str, object]] = field(default_factory=list)

    def count(self) -> int:
        return len(self.reflections) + len(self.next_week)


def parse_answer(text: str) -> Answer:
    """Read the model's answer leniently: ```json fences and prose around the object, raw newlines in
    strings (`strict=False`), an answer cut off at max_tokens (its complete items), and items that are
    not `{"text", "sources"}` (reported, the rest kept)."""
    if not text.strip():
        raise AnswerError("empty answer")
    if len(text) > MAX_ANSWER_CHARS:
        raise AnswerError(f"answer of {len(text)} characters, more than {MAX_ANSWER_CHARS} (the prompt asks for "
                          f"at most {MAX_ANSWER_ITEMS} short items)")
    found_json = False
    candidates = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    for candidate in candidates:
        for obj in _json_objects(candidate):
            found_json = True
            if isinstance(obj, dict) and {"reflections", "next_week"} & obj.keys():
                return _answer(obj)
    salvaged = _salvage(text)
    if salvaged is not None:
        return salvaged
    raise AnswerError("JSON not in the expected shape" if found_json else "not JSON")


def _answer(obj: Mapping[str, Any]) -> Answer:
    out = Answer()
    for part in PARTS:
        raw = obj.get(part) or []
        if not isinstance(raw, list):
            out.malformed.append({"part": part, "text": str(raw)[:200], "reason": "not a list of items"})
            continue
        for n, item in enumerate(raw):
            if n >= MAX_PER_PART[part]:
                out.malformed.append({"part": part, "text": f"{len(raw) - n} more", "reason": "more items than asked"})
                break
            try:
                getattr(out, part).append(AnswerItem.model_validate(item))
            except ValidationError:
                out.malformed.append({"part": part, "text": str(item)[:200], "reason": "malformed item"})
    return out


def _salvage(text: str) -> Answer | None:
    """The complete items of an answer that stops mid-way (the server's max_tokens came first)."""
    decoder = json.JSONDecoder(strict=False)
    found: dict[str, list[Any]] = {}
    for part in PARTS:
        m = re.search(rf'"{part}"\s*:\s*\[', text)
        if not m:
            continue
        items: list[Any] = []
        at = m.end()
        while True:
            while at < len(text) and text[at] in " \t\r\n,":
                at += 1
            if at >= len(text) or text[at] != "{":
                break
            try:
                item, at = decoder.raw_decode(text, at)
            except json.JSONDecodeError:
                break
            items.append(item)
        found[part] = items
    return _answer(found) if found else None


def _json_objects(text: str) -> Iterable[dict[str, Any]]:
    """JSON objects that start at a "{" in `text`, first to last (raw newlines inside strings allowed)."""
    decoder = json.JSONDecoder(strict=False)
    start = text.find("{")
    tries = 0
    while start != -1 and tries < _MAX_OBJECT_STARTS:
        tries += 1
        try:
            obj, _ = decoder.raw_decode(text, start)
        except (json.JSONDecodeError, RecursionError):  # RecursionError: nested thousands deep
            pass
        else:
            if isinstance(obj, dict):
                yield obj
        start = text.find("{", start + 1)


def answer_schema(keys: Sequence[str]) -> dict[str, Any]:
    """The JSON schema for structured output; sources are limited to the keys the model was shown."""
    source: dict[str, Any] = {"type": "string"}
    if keys:
        source["enum"] = list(keys)
    item = {
        "type": "object",
        "properties": {"text": {"type": "string"}, "sources": {"type": "array", "items": source, "minItems": 1}},
        "required": ["text", "sources"],
        "additionalProperties": False,
    }
    return {
        "type": "object",
        # at least one item each: a grammar-constrained small model otherwise answers two empty lists
        "properties": {part: {"type": "array", "items": item, "minItems": 1, "maxItems": MAX_PER_PART[part]}
                       for part in PARTS},
        "required": list(PARTS),
        "additionalProperties": False,
    }


# -- traceability guard -------------------------------------------------------------------------
_OWNER_MARKER = re.compile(r"^\s*(?:[-*+•]\s+)?(?:\d+[.)、．]|[（(]\d+[)）])\s*")


_DATE_YMD = re.compile(r"(\d{4})[年/.-](\d{1,2})[月/.-](\d{1,2})[日号]?")
_DATE_MD = re.compile(r"(?<![\d/.])(\d{1,2})(?:月(\d{1,2})[日号]|/(\d{1,2})(?![\d/]))")
_TIME = re.compile(r"(?<![\d:])(\d{1,2}):(\d{2})(?![\d:])")


def _numbers(text: str) -> dict[str, str]:
    """Each number in `text` by its value, with how it was written: `97.20%` and `97.2` are both 97.2,
    `9/23` and `9月23日` both the date 9/23, `3,120` is 3120; a full date also counts as its month/day."""
    normal = unicodedata.normalize("NFKC", text)
    found: dict[str, str] = {}

    def take(m: re.Match[str], *values: str) -> str:
        for v in values:
            found.setdefault(v, m.group(0))
        return " " * len(m.group(0))

    normal = _DATE_YMD.sub(lambda m: take(m, f"{int(m[1])}/{int(m[2])}/{int(m[3])}", f"{int(m[2])}/{int(m[3])}"),
                           normal)
    normal = _DATE_MD.sub(lambda m: take(m, f"{int(m[1])}/{int(m[2] or m[3])}"), normal)
    normal = _TIME.sub(lambda m: take(m, f"{int(m[1])}:{m[2]}"), normal)
    for m in _NUMBER.finditer(normal):
        raw = m.group(0)
        value = raw.replace(",", "").rstrip("%")
        for piece in re.split(r"[/:]", value):  # what the date and time patterns did not take
            if piece:
                found.setdefault(_value(piece), raw)
    return found


def _value(number: str) -> str:
    """`97.20` → `97.2`, `007` → `7`, `1.0` → `1`: numbers compare by value."""
    try:
        d = Decimal(number)
    except InvalidOperation:
        return number
    return format(d.normalize(), "f")


def numbers_in(text: str) -> set[str]:
    """The numbers written in `text`, by value ("3,120" → "3120", "99.50%" → "99.5", "9月23日" → "9/23")."""
    return set(_numbers(text))


def _without_titles(text: str, titles: Iterable[str]) -> str:
    """An item's text without the section titles it names: the 1 of `O1 业务服务` is no figure."""
    for title in sorted({t for t in titles if t}, key=len, reverse=True):
        text = text.replace(title, " ")
        for code in re.findall(r"[A-Za-z]+\d+", title):  # `O1` written alone
            text = re.sub(rf"(?<![A-Za-z0-9]){re.escape(code)}(?![0-9])", " ", text)
    return text


def untraceable(text: str, sources: Sequence[str], sections: Mapping[str, SectionText]) -> str | None:
    """Why an item cannot be traced to its sources, or None when it can."""
    if not sources:
        return "no sources"
    unknown = [s for s in sources if s not in sections]
    if unknown:
        return "unknown source " + ", ".join(repr(s) for s in unknown)
    empty = [s for s in sources if not sections[s].content.strip()]
    if empty:
        return "source " + ", ".join(repr(s) for s in empty) + " has no text this cycle"
    haystack: set[str] = set()
    for key in sources:
        # the owners' list numbering ("1." "2." "（3）") is structure, not a figure an item may cite
        body = "\n".join(_OWNER_MARKER.sub("", line) for line in sections[key].content.splitlines())
        haystack |= numbers_in(body)
    written = _numbers(_without_titles(text, (s.title for s in sections.values())))
    missing = [raw.rstrip("%") for value, raw in sorted(written.items()) if value not in haystack]
    if missing:
        return "number " + ", ".join(dict.fromkeys(missing)) + " not in its sources"
    return None


def placeholder(text: str, sections: Mapping[str, SectionText], prompt_text: str) -> str | None:
    """Why an item is a placeholder or an echo rather than a sentence about the report, or None."""
    bare = _bare(text)
    if not bare:
        return "placeholder (no words)"
    if bare in _PLACEHOLDERS:
        return "placeholder (the prompt's example)"
    if any(bare in (_bare(s.key), _bare(s.title)) for s in sections.values()):
        return "echo (a section key or title)"
    cjk = len(_HAN.findall(text))
    if (cjk < 4 or cjk + len(re.findall(r"[A-Za-z0-9]", text)) < MIN_CJK_CHARS) if cjk \
            else len(re.findall(r"[A-Za-z]+", text)) < MIN_WORDS:
        return "too short to be a sentence"
    if len(bare) >= 8 and bare in _bare(prompt_text):
        return "echo (copied from the prompt)"
    return None


_PLACEHOLDERS = frozenset(
    re.sub(r"[\W_]+", "", p).casefold() for p in (
        "一句话", "one sentence", "text", "string", "sentence", "item", "内容", "条目", "示例", "example", "todo",
        "部分的 key", "section key", "key", "sources", "source", "reflections", "next_week", "收获与反思",
        "下周工作及目标", "lessons", "goal", "goals", "lesson", "无", "none", "n/a", "...", "…",
    )
)


def _bare(text: str) -> str:
    return re.sub(r"[\W_]+", "", text).casefold()


def clean_text(text: str) -> str:
    """The item's sentence without a list marker the model may have put in front."""
    return _LIST_MARKER.sub("", " ".join(text.split()), count=1).strip()


@dataclass
class Guarded:
    """Items that passed the guard, per part, and what was dropped and why."""

    items: dict[Part, list[SummaryItem]] = field(default_factory=lambda: {p: [] for p in PARTS})
    dropped: list[dict[str, object]] = field(default_factory=list)

    def count(self) -> int:
        return sum(len(v) for v in self.items.values())


def guard(answer: Answer, sections: Mapping[str, SectionText], prompt_text: str = "") -> Guarded:
    """Keep the items that are sentences about the report (no placeholder, no echo of the prompt) whose
    sources are this report's sections and whose numbers appear in them; report the rest and why."""
    from bot.summary_offline import says_done

    out = Guarded()
    out.dropped.extend(answer.malformed)
    lessons: set[str] = set()
    for part in PARTS:
        seen: set[str] = set()
        for raw in getattr(answer, part):
            text = clean_text(raw.text)
            sources = tuple(dict.fromkeys(s.strip() for s in raw.sources if s.strip()))
            if text in seen:
                continue
            seen.add(text)
            reason = placeholder(text, sections, prompt_text) or untraceable(text, sources, sections)
            if reason is None and part == "reflections":
                lessons.add(_bare(text))
            elif reason is None and _bare(text) in lessons:
                reason = "also a lesson"
            elif reason is None and says_done(text):
                reason = "a finished result, not a goal"
            if reason:
                out.dropped.append({"part": part, "text": text, "sources": list(sources), "reason": reason})
            else:
                out.items[part].append(SummaryItem(text, sources))
    return out


# -- what goes to the model ---------------------------------------------------------------------
def quote(obj: object) -> str:
    """One compact JSON line of data; "</" is escaped so the owners' text cannot close the tag around it."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).replace("</", "<\\/")


def section_line(section: SectionText, content: str | None = None) -> str:
    """A section as quoted data, `[key, title, the owners' text]`: an array, so the names of its fields are
    said once in the prompt rather than on every section's line (a few tokens a section, hundreds a report)."""
    body = section.content if content is None else content
    return quote([section.key, section.title, body])


def goal_lines(goals: Iterable[SummaryItem]) -> str:
    """Last cycle's goals as quoted data, one per line."""
    return "\n".join(quote({"text": g.text, "sources": list(g.sources)}) for g in goals)


def draft_lines(drafts: Iterable[tuple[Part, SummaryItem]]) -> str:
    """Items drafted per group, as quoted data for the merge call."""
    return "\n".join(quote({"part": p, "text": i.text, "sources": list(i.sources)}) for p, i in drafts)


def cache_key(request: SummaryRequest, prompt_version: str, model: str) -> str:
    """sha256 of the inputs, the prompt version and the model: equal keys, equal summaries."""
    payload = {
        "team": request.team_title,
        "cycle": request.cycle,
        "language": request.language,
        "sections": [[s.key, s.title, s.state, s.content] for s in request.sections],
        "last_goals": [[g.text, list(g.sources)] for g in request.last_goals],
        "prompt": prompt_version,
        "model": model,
    }
    raw = json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


class _Fallback(Exception):
    """The LLM path cannot give a summary; the message completes the note."""


@dataclass
class _Run:
    """What one summarize() spent and dropped, kept whichever way it ends."""

    calls: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    dropped: list[dict[str, object]] = field(default_factory=list)
    partial: bool = False  # a part came from the offline rules: not worth caching
    truncated: bool = False  # the last answer stopped at max_tokens


@dataclass(frozen=True)
class _Job:
    """One request being summarized, with its prompt and lookups."""

    request: SummaryRequest
    prompt: Prompt
    sections: Mapping[str, SectionText]  # every section of the report, by key

    def user(self, sections: Sequence[str], goals: Sequence[SummaryItem]) -> str:
        return self.prompt.user(
            team=self.request.team_title, cycle=self.request.cycle,
            sections="\n".join(sections), last_goals=goal_lines(goals),
        )

    def merge(self, drafts: Sequence[tuple[Part, SummaryItem]]) -> str:
        return self.prompt.merge(
            team=self.request.team_title, cycle=self.request.cycle,
            drafts=draft_lines(drafts), last_goals=goal_lines(self.request.last_goals),
        )

    def tokens(self, user: str) -> int:
        return estimate_prompt_tokens(self.prompt.system, user)

    @property
    def prompt_text(self) -> str:
        """Everything of the prompt that is not the report's data, for spotting items copied from it."""
        return "\n".join((self.prompt.system, self.prompt.format, self.prompt.user_template,
                          self.prompt.merge_template))


# -- the use-case -------------------------------------------------------------------------------
class Summarizer:
    """Drafts a report's closing sections with a chat model, falling back to the offline summarizer."""

    def __init__(
        self,
        chat: ChatModel | None,
        *,
        model: str,
        max_input_tokens: int = 24000,
        cache: SummaryCache | None = None,
        timeout: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.chat = chat
        self.model = model
        self.max_input_tokens = max_input_tokens
        self.cache = cache
        self.timeout = timeout
        self._clock = clock

    def summarize(self, request: SummaryRequest, *, cycle_id: int | None = None) -> Summary:
        """The summary for one report: cached, from the model, or offline with a note saying why."""
        started = self._clock()
        run = _Run()
        if self.chat is None:
            return self._offline(request, "LLM not configured (set OPENAI_API_KEY or OPENAI_BASE_URL)", run, started)
        try:
            prompt = load_prompt(request.language)
        except (ValueError, OSError) as e:
            report_error(f"loading the {request.language} summary prompt", e, logger)
            return self._offline(request, "LLM prompt unavailable", run, started)
        key = cache_key(request, prompt.version, self.model)
        cached = self._cache_get(key)
        if cached is not None:
            return replace(cached, calls=0)
        try:
            summary = self._from_model(_Job(request, prompt, {s.key: s for s in request.sections}), run)
        except ChatTimeout:
            reason = f"LLM unavailable (timeout after {self.timeout:g} s)"
        except ChatUnavailable as e:
            reason = f"LLM unavailable ({e})"
        except AnswerError as e:
            reason = f"LLM answer unusable ({e})"
        except _Fallback as e:
            reason = str(e)
        except Exception as e:  # the report must come whatever the model or the network did
            report_error("the LLM summary", e, logger)
            reason = "LLM summary failed (unexpected error)"
        else:
            summary.latency_ms = self._ms_since(started)
            # a summary with a part from the rules is kept as the cycle's history (next cycle's last goals)
            # under a key no lookup asks for: asking again calls the model again
            self._cache_put(key if not run.partial else f"partial:{key}", summary, cycle_id)
            return summary
        return self._offline(request, reason, run, started)

    # -- the LLM path --
    def _from_model(self, job: _Job, run: _Run) -> Summary:
        present = [s for s in job.request.sections if s.content.strip()]
        if not present:
            raise _Fallback("no section has text yet")
        user = job.user([section_line(s) for s in present], job.request.last_goals)
        if job.tokens(user) <= self.max_input_tokens:
            answer = self._ask(job, user, [s.key for s in present], run)
            if answer.count() == 0 and not answer.malformed:
                raise AnswerError("empty answer: no items" + (f"; cut off at max_tokens={MAX_ANSWER_TOKENS}"
                                                               if run.truncated else ""))
            final = guard(answer, job.sections, job.prompt_text)
        else:
            final = self._split_and_merge(job, present, run)
        run.dropped.extend(final.dropped)
        if final.count() == 0:
            raise _Fallback(_why_none(run.dropped))
        summary = Summary(
            reflections=final.items["reflections"], next_week=final.items["next_week"], source="llm",
            dropped=list(run.dropped), prompt_version=job.prompt.version, model=self.model,
            tokens_in=run.tokens_in, tokens_out=run.tokens_out, calls=run.calls,
        )
        empty = [part for part in PARTS if not final.items[part]]
        if empty:
            # the model's other part stands; this one comes from the rules, and the whole is not cached
            from bot.summary_offline import summarize_offline

            offline = summarize_offline(job.request)
            for part in empty:
                setattr(summary, part, getattr(offline, part))
            reasons = _why_none([d for d in run.dropped if d.get("part") in empty])
            summary.note = f"{' and '.join(_PART_NAMES[job.request.language][p] for p in empty)} from the " \
                           f"rule-based draft: {reasons}"
            run.partial = True
        return summary

    def _split_and_merge(self, job: _Job, present: Sequence[SectionText], run: _Run) -> Guarded:
        """Summarize groups of sections that each fit the budget, then merge their items in one call."""
        groups = self._groups(job, present)
        logger.debug("summary split into %d groups of sections", len(groups))
        drafts: list[tuple[Part, SummaryItem]] = []
        for lines, keys in groups:
            user = job.user(lines, self._goals_for(job, keys))
            partial = guard(self._ask(job, user, keys, run), job.sections, job.prompt_text)
            run.dropped.extend(partial.dropped)
            drafts.extend((part, item) for part in PARTS for item in partial.items[part])
        if not drafts:
            return Guarded()
        return guard(self._merge(job, drafts, run), job.sections, job.prompt_text)

    def _merge(self, job: _Job, drafts: list[tuple[Part, SummaryItem]], run: _Run) -> Answer:
        """One call over all drafts; when they do not fit, merge batches first (a few rounds at most)."""
        for _ in range(MAX_MERGE_ROUNDS):
            user = job.merge(drafts)
            if job.tokens(user) <= self.max_input_tokens:
                return self._ask(job, user, _draft_keys(drafts), run)
            merged: list[tuple[Part, SummaryItem]] = []
            for batch in self._batches(job, drafts):
                partial = guard(self._ask(job, job.merge(batch), _draft_keys(batch), run), job.sections,
                                job.prompt_text)
                run.dropped.extend(partial.dropped)
                merged.extend((part, item) for part in PARTS for item in partial.items[part])
            if not merged:
                return Answer()
            if len(merged) >= len(drafts):
                break
            drafts = merged
        raise _Fallback("too many drafted items to merge within WEEKLY_LLM_MAX_INPUT_TOKENS")

    def _ask(self, job: _Job, user: str, keys: Sequence[str], run: _Run) -> Answer:
        """One chat call; tokens the server does not report are estimated."""
        assert self.chat is not None
        run.calls += 1
        logger.debug("summary call %d: ~%d input tokens", run.calls, job.tokens(user))
        reply = self.chat.complete(system=job.prompt.system, user=user, schema=answer_schema(keys),
                                   format_hint=job.prompt.format, max_tokens=MAX_ANSWER_TOKENS)
        run.tokens_in += reply.tokens_in or job.tokens(user)
        run.tokens_out += reply.tokens_out or estimate_tokens(reply.text)
        run.truncated = reply.truncated
        try:
            answer = parse_answer(reply.text)
        except AnswerError as e:
            if reply.truncated:
                raise AnswerError(f"{e}; cut off at max_tokens={MAX_ANSWER_TOKENS}") from None
            raise
        return answer

    # -- packing within the budget --
    # Packing adds up per-piece estimates: never less than the estimate of the joined prompt
    # (a sum of rounded-up parts), so every packed call is within budget without rebuilding it.
    def _groups(self, job: _Job, present: Sequence[SectionText]) -> list[tuple[list[str], list[str]]]:
        """Sections in report order, packed greedily into groups whose call fits the budget."""
        base = job.tokens(job.user([], []))
        groups: list[tuple[list[str], list[str]]] = []
        lines: list[str] = []
        keys: list[str] = []
        goals: set[int] = set()
        used = base
        for section in present:
            line = section_line(section)
            extra = _piece(line) + self._goal_cost(job, section.key, goals)
            if lines and used + extra > self.max_input_tokens:
                groups.append((lines, keys))
                lines, keys, goals, used = [], [], set(), base
                extra = _piece(line) + self._goal_cost(job, section.key, goals)
            if not lines and base + extra > self.max_input_tokens:
                line = self._truncated(job, section)
                extra = _piece(line) + self._goal_cost(job, section.key, goals)
            lines.append(line)
            keys.append(section.key)
            goals |= {i for i, g in enumerate(job.request.last_goals) if section.key in g.sources}
            used += extra
        if lines:
            groups.append((lines, keys))
        return groups

    @staticmethod
    def _goal_cost(job: _Job, key: str, included: set[int]) -> int:
        """Estimated tokens of last cycle's goals that `key` brings into its group."""
        return sum(
            _piece(goal_lines([g]))
            for i, g in enumerate(job.request.last_goals)
            if i not in included and key in g.sources
        )

    def _truncated(self, job: _Job, section: SectionText) -> str:
        """The longest head of one oversized section that fits alone (binary search on its length)."""

        def fits(line: str) -> bool:
            return job.tokens(job.user([line], self._goals_for(job, [section.key]))) <= self.max_input_tokens

        lo, hi = 0, len(section.content)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if fits(section_line(section, section.content[:mid] + "…")):
                lo = mid
            else:
                hi = mid - 1
        line = section_line(section, section.content[:lo] + "…")
        if not fits(line):
            raise _Fallback(f"WEEKLY_LLM_MAX_INPUT_TOKENS={self.max_input_tokens} is too small for the prompt")
        logger.debug("section %s cut to %d of %d characters to fit the budget", section.key, lo, len(section.content))
        return line

    def _batches(
        self, job: _Job, drafts: list[tuple[Part, SummaryItem]]
    ) -> list[list[tuple[Part, SummaryItem]]]:
        """Drafts packed greedily into merge calls that fit the budget."""
        base = job.tokens(job.merge([]))
        batches: list[list[tuple[Part, SummaryItem]]] = [[]]
        used = base
        for draft in drafts:
            extra = _piece(draft_lines([draft]))
            if base + extra > self.max_input_tokens:
                raise _Fallback(f"WEEKLY_LLM_MAX_INPUT_TOKENS={self.max_input_tokens} is too small to merge")
            if batches[-1] and used + extra > self.max_input_tokens:
                batches.append([])
                used = base
            batches[-1].append(draft)
            used += extra
        return batches

    @staticmethod
    def _goals_for(job: _Job, keys: Sequence[str]) -> list[SummaryItem]:
        """Last cycle's goals that concern these sections (the merge call sees them all)."""
        wanted = set(keys)
        return [g for g in job.request.last_goals if wanted.intersection(g.sources)]

    # -- fallback, cache, clock --
    def _offline(self, request: SummaryRequest, reason: str, run: _Run, started: float) -> Summary:
        from bot.summary_offline import summarize_offline

        # the caller shows `note` to the user (stderr, chat); a log line at WARNING would say it twice
        logger.info("summary for %s %s: %s; using the offline summary", request.team_title, request.cycle, reason)
        summary = summarize_offline(request)
        return replace(
            summary, source="offline", note=f"{reason}: offline summary used (rule-based draft)",
            dropped=list(run.dropped) + list(summary.dropped), tokens_in=run.tokens_in,
            tokens_out=run.tokens_out, calls=run.calls, latency_ms=self._ms_since(started),
        )

    def _cache_get(self, key: str) -> Summary | None:
        if self.cache is None:
            return None
        try:
            return self.cache.get(key)
        except Exception as e:  # a broken cache costs a call, never the report
            report_error("the summary cache lookup", e, logger)
            return None

    def _cache_put(self, key: str, summary: Summary, cycle_id: int | None) -> None:
        if self.cache is None:
            return
        try:
            self.cache.put(key, summary, cycle_id=cycle_id)
        except Exception as e:
            report_error("storing a summary in the cache", e, logger)

    def _ms_since(self, started: float) -> int:
        return max(0, round((self._clock() - started) * 1000))


_PART_NAMES: dict[str, dict[Part, str]] = {
    "zh": {"reflections": "收获与反思", "next_week": "下周工作及目标"},
    "en": {"reflections": "lessons", "next_week": "next week's goals"},
}


def _why_none(dropped: Sequence[Mapping[str, object]]) -> str:
    """One line: why no LLM item was kept, from the reasons the guard gave (most common first)."""
    if not dropped:
        return "the LLM answer had no items"
    counts: dict[str, int] = {}
    for d in dropped:
        reason = str(d.get("reason", "?"))
        reason = re.sub(r"^number .* not in its sources$", "number not in its sources", reason)
        reason = re.sub(r"^(unknown source|source) .*", r"\1", reason)
        counts[reason] = counts.get(reason, 0) + 1
    listed = ", ".join(f"{r} ×{n}" if n > 1 else r for r, n in sorted(counts.items(), key=lambda x: -x[1]))
    return f"no LLM item kept ({len(dropped)} dropped: {listed})"


def _piece(text: str) -> int:
    """Estimated tokens of one line of data and the newline that joins it."""
    return estimate_tokens(text + "\n")


def _draft_keys(drafts: Iterable[tuple[Part, SummaryItem]]) -> list[str]:
    """The section keys the drafts cite, first-seen order."""
    return list(dict.fromkeys(k for _, item in drafts for k in item.sources))
