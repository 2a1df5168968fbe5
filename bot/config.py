"""The team file (YAML, validated with pydantic) and the environment (pydantic-settings)."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.errors import ConfigError

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_KEY = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
_WEEK_LABEL = re.compile(r"^(\d{4})-W(\d{2})$")
_DURATION = re.compile(r"^(\d+)\s*([mhd])$")
_CYCLE_LABEL = re.compile(r"^(\d{4})-W(\d{2})(?:&(?:(\d{4})-)?W(\d{2}))?$")
MAX_CYCLE_WEEKS = 8


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WeekTime(Strict):
    """A weekday and a time of day, written `thu 18:00`."""

    weekday: int  # 0 = Monday
    at: time

    @classmethod
    def parse(cls, text: str) -> WeekTime:
        m = re.fullmatch(r"\s*([A-Za-z]{3})[a-z]*\s+(\d{1,2}):(\d{2})\s*", str(text))
        if not m or m.group(1).lower() not in WEEKDAYS:
            raise ValueError(f"expected a weekday and a time like 'thu 18:00', got {text!r}")
        hour, minute = int(m.group(2)), int(m.group(3))
        if hour > 23 or minute > 59:
            raise ValueError(f"{text!r} is not a time of day (00:00 to 23:59)")
        return cls(weekday=WEEKDAYS.index(m.group(1).lower()), at=time(hour, minute))

    def __str__(self) -> str:
        return f"{WEEKDAYS[self.weekday]} {self.at:%H:%M}"


def parse_duration(text: str) -> timedelta:
    m = _DURATION.fullmatch(str(text).strip())
    if not m:
        raise ValueError(f"expected a duration like '24h', '2h', '30m' or '1d', got {text!r}")
    n, unit = int(m.group(1)), m.group(2)
    return {"m": timedelta(minutes=n), "h": timedelta(hours=n), "d": timedelta(days=n)}[unit]


def parse_week_label(text: str) -> tuple[int, int]:
    m = _WEEK_LABEL.fullmatch(str(text).strip())
    if not m:
        raise ValueError(f"expected an ISO week like '2024-W38', got {text!r}")
    year, week = int(m.group(1)), int(m.group(2))
    try:
        date.fromisocalendar(year, week, 1)
    except ValueError:
        raise ValueError(f"{text!r}: {year} has no week {week}") from None
    return year, week


def parse_cycle_label(text: str) -> tuple[date, int]:
    """`2024-W40` → (its Monday, 1); `2024-W38&W39` or `2024-W52&2025-W01` → (first Monday, weeks)."""
    m = _CYCLE_LABEL.fullmatch(str(text).strip().upper())
    if not m:
        raise ValueError(f"{text!r} is not a cycle label (like 2024-W40 or 2024-W38&W39)")
    year, week = parse_week_label(f"{m.group(1)}-W{m.group(2)}")
    first = date.fromisocalendar(year, week, 1)
    if not m.group(4):
        return first, 1
    last_year, last_week = parse_week_label(f"{m.group(3) or m.group(1)}-W{m.group(4)}")
    weeks = (date.fromisocalendar(last_year, last_week, 1) - first).days // 7 + 1
    if weeks < 2:
        raise ValueError(f"{text!r}: its last week is not after its first")
    if weeks > MAX_CYCLE_WEEKS:
        raise ValueError(f"{text!r}: a cycle spans at most {MAX_CYCLE_WEEKS} weeks")
    return first, weeks


def _day(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise ValueError(f"expected a day like 2024-10-01, got {value!r}") from None


def parse_away(value: Any) -> tuple[date, date]:
    """One entry of `away:`: a day (`2024-10-11`) or a range (`2024-10-01..2024-10-07`), as (first, last)."""
    if isinstance(value, str) and ".." in value:
        left, _, right = value.partition("..")
        first, last = _day(left), _day(right)
        if last < first:
            raise ValueError(f"{value!r}: the range ends before it starts")
        return first, last
    day = _day(value)
    return day, day


class Member(Strict):
    name: str = Field(min_length=1)
    slack: str | None = None
    feishu: str | None = None
    email: str | None = None
    ids: dict[str, str] = {}  # the member's id on other registered platforms, by platform name
    away: tuple[tuple[date, date], ...] = ()  # days off, as (first, last) ranges

    def id_on(self, platform: str) -> str | None:
        """The member's user id on `platform` as the team file gives it (`slack:`, `feishu:`, or `ids:`)."""
        if platform in ("slack", "feishu"):
            return getattr(self, platform)  # type: ignore[no-any-return]
        return self.ids.get(platform)

    @field_validator("away", mode="before")
    @classmethod
    def _away(cls, v: Any) -> Any:
        if v is None:
            return ()
        if isinstance(v, (str, date)):
            v = [v]
        if not isinstance(v, list | tuple):
            raise ValueError("expected a list of days or ranges like [2024-10-01..2024-10-07, 2024-10-11]")
        return tuple(parse_away(item) for item in v)


class Publish(Strict):
    slack: str | None = None
    feishu: str | None = None
    feishu_doc: bool = False  # a Feishu 云文档 per cycle
    slack_canvas: bool = False  # a Slack canvas per cycle


class Schedule(Strict):
    weeks: int = Field(default=1, ge=1, le=8)
    start: str | None = None
    open: WeekTime = WeekTime(weekday=0, at=time(10, 0))
    deadline: WeekTime = WeekTime(weekday=3, at=time(18, 0))
    reminders: tuple[str, ...] = ("24h", "2h")
    holidays: Literal["CN", "none"] = "none"
    extra_holidays: tuple[date, ...] = ()  # days off the calendar does not know (or after its data ends)
    extra_workdays: tuple[date, ...] = ()  # adjusted workdays (调休) the calendar does not know
    merge_short_weeks: int = Field(default=0, ge=0, le=4)  # a week with at most this many workdays
    merge: tuple[str, ...] = ()  # cycles merged by hand, like 2025-W40&W41

    @field_validator("open", "deadline", mode="before")
    @classmethod
    def _weektime(cls, v: Any) -> Any:
        return WeekTime.parse(v) if isinstance(v, str) else v

    @field_validator("start")
    @classmethod
    def _start(cls, v: str | None) -> str | None:
        if v is not None:
            parse_week_label(v)
        return v

    @field_validator("reminders", mode="before")
    @classmethod
    def _reminders(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = [v]
        for item in v or ():
            parse_duration(item)
        return tuple(str(x).strip() for x in v or ())

    @field_validator("holidays", mode="before")
    @classmethod
    def _holidays(cls, v: Any) -> Any:
        if v is None or v is False:
            return "none"
        return str(v).strip().upper() if str(v).strip().lower() == "cn" else str(v).strip().lower()

    @field_validator("merge", mode="before")
    @classmethod
    def _merge(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = [v]
        out = []
        for item in v or ():
            label = str(item).strip().upper()
            if parse_cycle_label(label)[1] < 2:
                raise ValueError(f"{item!r} is one week: list merged cycles like 2025-W40&W41")
            out.append(label)
        return tuple(out)

    @model_validator(mode="after")
    def _needs_start(self) -> Schedule:
        if self.weeks > 1 and not self.start:
            raise ValueError("'start' (the first cycle, like 2024-W38) is needed when weeks > 1")
        if self.weeks > 1 and (self.merge_short_weeks or self.merge):
            raise ValueError("merge_short_weeks and merge apply to weekly cycles (weeks: 1)")
        spans = sorted((parse_cycle_label(label), label) for label in self.merge)
        for ((a, n), first), ((b, _), second) in zip(spans, spans[1:], strict=False):
            if b < a + timedelta(weeks=n):
                raise ValueError(f"merge: {first} and {second} share a week")
        return self

    def merged_spans(self) -> list[tuple[date, int]]:
        """The hand-merged cycles as (first Monday, weeks), oldest first."""
        return sorted(parse_cycle_label(label) for label in self.merge)

    def reminder_offsets(self) -> list[tuple[str, timedelta]]:
        return [(r, parse_duration(r)) for r in self.reminders]


class Section(Strict):
    key: str = Field(pattern=_KEY)
    title: str = Field(min_length=1)
    owners: tuple[str, ...] = ()
    hint: str | None = None
    style: Literal["item", "heading"] = "item"

    @field_validator("owners")
    @classmethod
    def _unique_owners(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for i, owner in enumerate(v):
            if owner in v[:i]:
                raise ValueError(f"owner {owner!r} is listed twice")
        return v


class Team(Strict):
    key: str = Field(pattern=_KEY)
    title: str = Field(min_length=1)
    leads: tuple[str, ...] = ()
    publish: Publish = Publish()
    schedule: Schedule = Schedule()
    timezone: str | None = None  # overrides the file's
    language: Literal["zh", "en"] | None = None
    sections: tuple[Section, ...] = Field(min_length=1)

    @field_validator("sections")
    @classmethod
    def _unique_sections(cls, v: tuple[Section, ...]) -> tuple[Section, ...]:
        keys: set[str] = set()
        titles: set[str] = set()
        for s in v:
            if s.key in keys:
                raise ValueError(f"section key {s.key!r} is used twice")
            # owners pick a section by its title (【标题】) and imports match titles: they must differ
            if s.title in titles:
                raise ValueError(f"section title {s.title!r} is used twice")
            keys.add(s.key)
            titles.add(s.title)
        return v

    def section(self, key: str) -> Section | None:
        return next((s for s in self.sections if s.key == key), None)


class TeamFile(Strict):
    timezone: str = "Asia/Shanghai"
    language: Literal["zh", "en"] = "zh"
    members: dict[str, Member] = Field(min_length=1)
    teams: tuple[Team, ...] = Field(min_length=1)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        _zone(v)
        return v

    @model_validator(mode="after")
    def _references(self) -> TeamFile:
        problems: list[tuple[tuple[Any, ...], str]] = []
        for key in self.members:
            if not re.match(_KEY, key):
                problems.append((("members", key), f"member key {key!r} must be letters, digits, _ . -"))
        team_keys: set[str] = set()
        for ti, team in enumerate(self.teams):
            if team.key in team_keys:
                problems.append((("teams", ti, "key"), f"team key {team.key!r} is used twice"))
            team_keys.add(team.key)
            if team.timezone:
                try:
                    _zone(team.timezone)
                except ValueError as e:
                    problems.append((("teams", ti, "timezone"), str(e)))
            for li, lead in enumerate(team.leads):
                if lead not in self.members:
                    problems.append((("teams", ti, "leads", li), f"unknown member {lead!r}"))
            for si, section in enumerate(team.sections):
                for oi, owner in enumerate(section.owners):
                    if owner not in self.members:
                        problems.append(
                            (("teams", ti, "sections", si, "owners", oi), f"unknown owner {owner!r}")
                        )
        if problems:
            loc, msg = problems[0]
            raise _RefError(loc, msg)
        return self

    def team(self, key: str | None) -> Team:
        if key is None:
            if len(self.teams) == 1:
                return self.teams[0]
            keys = ", ".join(t.key for t in self.teams)
            raise ConfigError(f"this file has several teams ({keys}): choose one with --team")
        for t in self.teams:
            if t.key == key:
                return t
        keys = ", ".join(t.key for t in self.teams)
        raise ConfigError(f"no team {key!r} in the team file (teams: {keys})")

    def tz(self, team: Team) -> ZoneInfo:
        return _zone(team.timezone or self.timezone)

    def lang(self, team: Team) -> Literal["zh", "en"]:
        return team.language or self.language

    def member_by(self, platform: str, user_id: str) -> str | None:
        """The member whose id on `platform` the team file gives as `user_id`."""
        for key, m in self.members.items():
            if m.id_on(platform) == user_id:
                return key
        return None


class _RefError(ValueError):
    def __init__(self, loc: tuple[Any, ...], msg: str) -> None:
        super().__init__(msg)
        self.loc = loc
        self.msg = msg


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} (use an IANA name like Asia/Shanghai)") from None


def _duplicate_key(node: yaml.Node | None, path: str = "") -> tuple[str, yaml.Mark] | None:
    """The first mapping key written twice, as (key path, mark): PyYAML would silently keep the last."""
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            here = f"{path}.{key}" if path else key
            if key in seen:
                return here, key_node.start_mark
            seen.add(key)
            found = _duplicate_key(value_node, here)
            if found:
                return found
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            found = _duplicate_key(item, f"{path}[{i}]")
            if found:
                return found
    return None


def _path(loc: tuple[Any, ...], data: Any) -> str:
    """Render a pydantic location as `teams[0].sections[1].owners[0]`, naming keys where known."""
    out = ""
    node = data
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            if part in ("function-after", "function-before") or str(part).startswith("function-"):
                continue
            out += ("." if out else "") + str(part)
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            node = None
    return out or "(top level)"


def load_team_file(path: str | Path) -> TeamFile:
    """Read and validate the team file; any problem is a ConfigError naming file, key path and problem."""
    p = Path(path)
    name = str(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{name}: no such file (set WEEKLY_CONFIG or pass --config)") from None
    except OSError as e:
        raise ConfigError(f"{name}: cannot read: {e.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{name}: not UTF-8 text") from None
    try:
        duplicate = _duplicate_key(yaml.compose(text, Loader=yaml.SafeLoader))
        if duplicate:
            key_path, key_mark = duplicate
            raise ConfigError(f"{name}:{key_mark.line + 1}:{key_mark.column + 1}: {key_path}: duplicate key "
                              f"(written twice; YAML would silently keep the last)")
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"{name}:{mark.line + 1}:{mark.column + 1}" if mark else name
        problem = str(e.problem) if e.problem else str(e)
        raise ConfigError(f"{where}: YAML syntax error: {problem}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{name}: YAML syntax error: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{name}: (top level): expected a mapping with 'members' and 'teams'")
    try:
        return TeamFile.model_validate(data)
    except _RefError as e:
        raise ConfigError(f"{name}: {_path(e.loc, data)}: {e.msg}") from None
    except ValidationError as e:
        err = e.errors()[0]
        loc = tuple(err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif err["type"] == "missing":
            msg = "is required"
        elif err["type"] == "too_short":
            msg = "must not be empty"
        ctx_err = (err.get("ctx") or {}).get("error")
        if isinstance(ctx_err, _RefError):
            loc, msg = loc + ctx_err.loc, ctx_err.msg
        return _raise(name, loc, msg, data)


def _raise(name: str, loc: tuple[Any, ...], msg: str, data: Any) -> TeamFile:
    raise ConfigError(f"{name}: {_path(loc, data)}: {msg}")


class Settings(BaseSettings):
    """The environment of spec §3; everything optional."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", case_sensitive=False)

    weekly_config: str = "team.yaml"
    database_url: str = "sqlite:///weekly.db"
    slack_bot_token: str | None = None
    slack_signing_secret: str | None = None
    slack_app_token: str | None = None
    slack_api_url: str = "https://slack.com/api/"
    feishu_app_id: str | None = None
    feishu_app_secret: str | None = None
    feishu_verification_token: str | None = None
    feishu_encrypt_key: str | None = None
    feishu_domain: str = "https://open.feishu.cn"
    openai_api_key: str | None = None
    openai_base_url: str | None = None
    weekly_llm_model: str = "gpt-4o-mini"
    weekly_llm_timeout: float = 60.0
    weekly_llm_max_input_tokens: int = 24000
    port: int = Field(default=3000, ge=1, le=65535)
    weekly_public_url: str | None = None  # the web view's address in sign-in links (default http://localhost:$PORT)
    weekly_web_secret: str | None = None  # signs web sessions; else one is made once and kept in the database

    @field_validator("weekly_llm_timeout")
    @classmethod
    def _timeout(cls, v: float) -> float:
        if not 0 < v <= 600:  # also refuses nan and inf
            raise ValueError("must be a number of seconds above 0 and at most 600")
        return v

    @field_validator("weekly_llm_max_input_tokens")
    @classmethod
    def _budget(cls, v: int) -> int:
        if v < 500:
            raise ValueError("must be at least 500 tokens")
        return v

    @field_validator("slack_api_url", "feishu_domain", "openai_base_url", "weekly_public_url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^https?://[^\s/]+", v):
            raise ValueError(f"{v!r} is not an http(s) URL")
        return v

    @property
    def public_url(self) -> str:
        """Where the web view is reached, for the links the bot hands out."""
        return (self.weekly_public_url or f"http://localhost:{self.port}").rstrip("/")

    @property
    def llm_enabled(self) -> bool:
        return bool(self.openai_api_key or self.openai_base_url)


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as e:
        err = e.errors()[0]
        msg = str(err["msg"]).removeprefix("Value error, ")
        raise ConfigError(f"environment: {str(err['loc'][0]).upper()}: {msg}") from None
