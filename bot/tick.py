"""`tick`: send what is due at an instant, exactly once, across processes and restarts.

Each message is claimed under its unique key in the database before it is sent, so two ticks
at once, a retry or a restart never send twice; a failed send is marked and retried by a later
tick while it is still due. A live sender keeps its claim fresh (a heartbeat every HEARTBEAT); a claim
not refreshed for STALE_CLAIM belongs to a process that died and is taken back — but first the platform
is asked whether the message got there (Slack: the key in the message's metadata), so a sender killed
right after the platform took a message does not send it twice.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.config import Team
from bot.due import Due, answered_sections, due_at
from bot.errors import report_error
from bot.fanout import SENDERS, run_paced
from bot.i18n import STATUS_TIME, bracket, join, period, t, with_owners
from bot.lanes import off_ack_path
from bot.model import Cycle, SummaryItem
from bot.notify import RateLimited, Sender, deliver, pick_sender
from bot.platform import Reply
from bot.records import Outgoing
from bot.service import WeeklyService

logger = logging.getLogger(__name__)
STALE_CLAIM = timedelta(seconds=60)  # a tick a minute later retakes a dead sender's claim: prompted within 2 min
HEARTBEAT = timedelta(seconds=15)
EVENT_MEMORY = timedelta(days=7)  # processed platform events are remembered this long for dedupe


@dataclass(frozen=True)
class Sent:
    due: Due
    platform: str
    ok: bool
    text: str
    error: str | None = None


def tick(service: WeeklyService, senders: Sequence[Sender], at: datetime | None = None) -> list[Sent]:
    """Do everything due at `at` (default: now) once; returns what was attempted."""
    at = at or service.now()
    service.sync()
    service.forget_events(before=service.now() - EVENT_MEMORY)
    out: list[Sent] = []
    beat = _Heartbeat(service, at)
    try:
        for team in service.team_file.teams:
            try:
                out.extend(_tick_team(service, senders, team, at, beat))
            except Exception as e:
                report_error(f"the tick for team {team.key}", e, logger)
    finally:
        beat.stop()
    return out


class _Heartbeat:
    """Keeps the claim being sent fresh while a send takes long (a rate limit waited out), so that only a
    dead process's claim ever goes stale."""

    def __init__(self, service: WeeklyService, at: datetime | None = None) -> None:
        self.service = service
        # claims are stamped on the tick's clock (`tick --at` may be another instant than now): so are beats
        self.shift = (at - service.now()) if at is not None else timedelta(0)
        self.keys: set[str] = set()
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def hold(self, key: str) -> None:
        """Keep `key`'s claim fresh until it is released (sent, failed, or handed back)."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=off_ack_path(self._run), name="tick-heartbeat",
                                                daemon=True)
                self._thread.start()
            self.keys.add(key)

    def release(self, key: str) -> None:
        with self._lock:
            self.keys.discard(key)

    def _run(self) -> None:
        while not self._stopped.wait(HEARTBEAT.total_seconds()):
            with self._lock:
                keys = list(self.keys)
            if keys:
                try:
                    self.service.refresh_claims(keys, at=self.service.now() + self.shift)
                except Exception as e:  # the next beat tries again; a missed one only shortens the lease
                    report_error("refreshing the tick's claims", e, logger)

    def stop(self) -> None:
        self._stopped.set()


@dataclass(frozen=True)
class _Plan:
    """What one team owes at an instant, and what the database says was already sent."""

    cycle: Cycle
    dues: list[Due]
    existing: dict[str, Outgoing]
    excused: frozenset[str]  # skipped the cycle, or away on its deadline


def _plan(service: WeeklyService, team: Team, at: datetime) -> _Plan | None:
    cycle = service.timeline(team).cycle_at(at)
    if cycle is None or cycle.imported:  # imported: history from a past report, nobody is chased for it
        return None
    stored = service.stored_cycle(team, cycle, at=at)
    if stored is None or stored.imported:
        return None
    updates, skips = service.answers(stored)
    answered = answered_sections([(u.member_key, u.section_key) for u in updates])
    skipped = frozenset(skips)
    away = service.away_on(team, cycle)
    dues = due_at(team, cycle, at, answered=answered, skipped=skipped, away=away)
    if not dues:
        return None
    existing = {o.key: o for o in service.outgoing(team.key, cycle.label)}
    return _Plan(cycle, dues, existing, skipped | away)


def pending(service: WeeklyService, at: datetime) -> list[Due]:
    """What a tick at `at` would still try to send (nothing is claimed or sent)."""
    service.sync()
    out: list[Due] = []
    for team in service.team_file.teams:
        plan = _plan(service, team, at)
        if plan:
            out.extend(d for d in plan.dues if getattr(plan.existing.get(d.key), "status", None) != "sent")
    return out


def _tick_team(service: WeeklyService, senders: Sequence[Sender], team: Team, at: datetime,
               beat: _Heartbeat) -> list[Sent]:
    """Claim and send what the team owes, FANOUT sends in flight; each message is claimed before it is sent
    and finished after, so a crash or a second tick never sends one twice."""
    plan = _plan(service, team, at)
    if plan is None:
        return []
    cycle, dues, existing, skipped = plan.cycle, plan.dues, plan.existing, plan.excused
    prompted_now = {d.member for d in dues if d.kind == "prompt" and d.key not in existing}
    jobs: list[_Job] = []
    for due in dues:
        if due.kind == "reminder" and due.member in prompted_now:
            # the prompt going out now says the deadline: a reminder on top would be a burst
            if service.claim_message(due, at=at):
                service.finish_message(due.key, ok=True, at=at, error="superseded by the prompt")
            continue
        if pick_sender(senders, due.member) is None:
            logger.warning("no platform reaches member %s: %s not sent", due.member, due.kind)
            continue
        jobs.append(_Job(len(jobs), due))
    if not jobs:
        return []
    # composed from what is read once per team and tick: last cycle's goals, titles, names
    words = Composer(service, team, cycle, skipped,
                     last_plan(service, team, cycle) if any(j.due.kind == "prompt" for j in jobs) else None)
    out: list[tuple[int, Sent]] = []
    lock = threading.Lock()

    def sent(job: _Job, result: Sent) -> None:
        beat.release(job.due.key)
        with lock:
            out.append((job.n, result))

    def work(job: _Job) -> None:
        due = job.due
        if job.text is None:  # the first try: win the claim, unless a dead sender's message got there
            earlier = existing.get(due.key)
            if not _claim(service, due, earlier, at):
                return
            beat.hold(due.key)
            if earlier is not None and earlier.status == "claimed" and _delivered(senders, due):
                logger.info("%s %s to %s: found delivered after its sender died; not sent again",
                            due.kind, due.cycle, due.member)
                service.finish_message(due.key, ok=True, at=at, error="found delivered after its sender died")
                beat.release(due.key)
                return
            job.text = words.text(due)
        try:
            platform = deliver(senders, due.member, Reply(job.text, key=due.key), paced=True)
        except RateLimited:
            raise  # run_paced tries again after the Retry-After; the claim stays held (and fresh)
        except Exception as e:  # every platform failed: keep it due, try again next tick
            logger.warning("sending %s to %s failed: %s", due.kind, due.member, e)
            service.finish_message(due.key, ok=False, at=at, error=str(e)[:500])
            sent(job, Sent(due, senders[0].platform, False, job.text, str(e)))
            return
        service.finish_message(due.key, ok=True, at=at)
        sent(job, Sent(due, platform, True, job.text))

    def gave_up(job: _Job, e: RateLimited) -> None:
        logger.warning("sending %s to %s: still rate limited; the next tick tries again", job.due.kind,
                       job.due.member)
        service.finish_message(job.due.key, ok=False, at=at, error=str(e)[:500])
        sent(job, Sent(job.due, senders[0].platform, False, job.text or "", str(e)))

    # a platform may take fewer sends at once (the terminal: one, so its lines come out whole and in order)
    threads = min((int(getattr(s, "in_flight", SENDERS)) for s in senders), default=SENDERS)
    run_paced(jobs, work, channel=lambda j: j.due.member, gave_up=gave_up, threads=threads)
    return [result for _n, result in sorted(out, key=lambda x: x[0])]


@dataclass
class _Job:
    n: int  # its place among the team's dues: results come back in this order
    due: Due
    text: str | None = None  # composed once claimed; a retry after a rate limit sends the same words


def _delivered(senders: Sequence[Sender], due: Due) -> bool:
    """Whether a platform that can tell says the message is there; a platform that cannot, or fails to
    answer, counts as 'not there' (then it is sent: once more at worst, never lost)."""
    for sender in senders:
        check = getattr(sender, "delivered", None)
        if check is not None and sender.can_reach(due.member):
            try:
                if check(due.member, due.key):
                    return True
            except Exception as e:
                logger.warning("asking %s whether %s arrived failed: %s", sender.platform, due.key, e)
    return False


def _claim(service: WeeklyService, due: Due, existing: Outgoing | None, at: datetime) -> bool:
    """Win the right to send `due`: a fresh claim, a failed one to retry, or a stale one whose sender died."""
    if existing is None:
        return service.claim_message(due, at=at)
    if existing.status == "failed":
        return service.reclaim_message(due.key, at=at)
    if existing.status == "claimed":
        return service.reclaim_message(due.key, at=at, stale_before=at - STALE_CLAIM)
    return False


@dataclass(frozen=True)
class LastPlan:
    """The cycle before's 下周工作及目标 and how many weeks that cycle spanned (上周计划 or 上期计划)."""

    goals: tuple[SummaryItem, ...]
    weeks: int


def last_plan(service: WeeklyService, team: Team, cycle: Cycle) -> LastPlan:
    """Read once per team and tick, not once per prompt."""
    return LastPlan(service.previous_goals(team, cycle), _previous_weeks(service, team, cycle))


def compose(service: WeeklyService, team: Team, cycle: Cycle, due: Due,
            skipped: frozenset[str] = frozenset(), last: LastPlan | None = None) -> str:
    """The words of a prompt, reminder or escalation, in the team's language."""
    if last is None and due.kind == "prompt":
        last = last_plan(service, team, cycle)
    return Composer(service, team, cycle, skipped, last).text(due)


class Composer:
    """What every message of one team's cycle says alike, worked out once: a fan-out to a thousand owners
    looks sections, names and last cycle's goals up in dicts, never scans for them."""

    def __init__(self, service: WeeklyService, team: Team, cycle: Cycle, skipped: frozenset[str] = frozenset(),
                 last: LastPlan | None = None) -> None:
        self.team, self.cycle, self.skipped = team, cycle, skipped
        self.lang = service.lang(team)
        tz = service.team_file.tz(team)
        self.members = service.team_file.members
        self.deadline = cycle.deadline.astimezone(tz).strftime(STATUS_TIME[self.lang])
        self.sections = {s.key: s for s in team.sections}
        self.last = last
        self.plans: dict[str, list[str]] = {}
        for goal in last.goals if last else ():
            for key in dict.fromkeys(goal.sources):
                self.plans.setdefault(key, []).append(goal.text)
        self.plan_head = t(self.lang, "prompt_plan_1" if last is None or last.weeks == 1 else "prompt_plan_n")
        self.period = period(self.lang, cycle.weeks)

    def text(self, due: Due) -> str:
        lang, team, cycle = self.lang, self.team, self.cycle
        if due.kind == "escalation":
            parts = []
            for key in due.sections:
                sec = self.sections.get(key)
                owners = join(lang, [self.members[o].name for o in (sec.owners if sec else ()) if o not in self.skipped])
                parts.append(with_owners(lang, self.sections[key].title, owners))
            return t(lang, "escalation", team=team.title, cycle=cycle.label, missing=join(lang, parts))
        if due.kind == "reminder":
            return t(lang, "reminder", team=team.title, cycle=cycle.label, deadline=self.deadline,
                     sections=join(lang, [self.sections[k].title for k in due.sections]))
        lines = [t(lang, "prompt", name=self.members[due.member].name, team=team.title, cycle=cycle.label,
                   section=join(lang, [self.sections[k].title for k in due.sections]), deadline=self.deadline,
                   period=self.period)]
        for key in due.sections:
            sec = self.sections[key]
            plan = self.plans.get(key, [])
            if not (sec.hint or plan):
                continue
            lines.append(bracket(lang, sec.title))
            if sec.hint:
                lines.append("  " + t(lang, "prompt_hint", hint=sec.hint))
            if plan:
                lines.append("  " + self.plan_head + "".join(f"\n    - {p}" for p in plan))
        if len(due.sections) > 1:
            lines.append(t(lang, "several_sections"))
        return "\n".join(lines)


def _previous_weeks(service: WeeklyService, team: Team, cycle: Cycle) -> int:
    """How many weeks the cycle before this one spanned (上周计划 for one, 上期计划 for more)."""
    before = service.timeline(team).between(cycle.first_monday - timedelta(weeks=9), cycle.first_monday)
    earlier = [c for c in before if c.first_monday < cycle.first_monday]
    return earlier[-1].weeks if earlier else 1
