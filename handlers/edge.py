"""What every chat platform's edge does alike: recognise redeliveries, keep failures out of the
chat, and deliver replies (then the slow work's replies) to channels, members or the asker."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import queue
import threading
import time
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar, cast

import anyio.to_thread
from anyio import CapacityLimiter
from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse, Response

from bot.chat import Outcome, Reply
from bot.errors import BatchMiss, report_error
from bot.i18n import t
from bot.lanes import background
from bot.notify import SendError
from bot.platform import Context, Platform

logger = logging.getLogger(__name__)
T = TypeVar("T")

# Requests worked on at once per process: each may hold a database connection, and the pool has room for
# all of them with the group-commit threads and /healthz's (storage.db.POOL_SIZE), while work off the ack
# path takes turns for the rest (bot.lanes), so none waits for a connection while holding a thread; the
# rest wait their turn here, holding nothing.
WORKER_THREADS = 16
_limiters: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, CapacityLimiter] = weakref.WeakKeyDictionary()


async def in_worker(fn: Callable[..., T], *args: Any) -> T:
    """Run a request's blocking work (Bolt's or the SDK's dispatch, which stores the answer) on a worker thread."""
    loop = asyncio.get_running_loop()
    limiter = _limiters.get(loop)
    if limiter is None:
        limiter = _limiters[loop] = CapacityLimiter(WORKER_THREADS)
    return await anyio.to_thread.run_sync(fn, *args, limiter=limiter)


AFTER_WAIT_S = 1.0  # work after an ack waits at most this long for a burst of requests to pass
FINISH_S = 20.0  # on stopping, the work after acks gets this long (a platform's SIGTERM grace is ~30 s)
QUIET_S = 0.05  # ... which has passed when no request has come or gone for this long


class AfterAck:
    """Work an ack left (a confirmation to post, a report to compile), run on the edge's own threads once
    the requests arriving have been answered (none in flight, none for QUIET_S), or after AFTER_WAIT_S at
    the latest.

    Acks come first: Slack and Feishu give an ack 3 s, while a confirmation a second late is still in time.
    Under a burst the Web API calls (most of a DM's CPU) wait for the burst to pass instead of competing
    with the acks for the interpreter; under steady load they go out AFTER_WAIT_S late, in order."""

    def __init__(self, threads: int, *, name: str) -> None:
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=f"{name}-after")
        self._waiting: deque[tuple[float, object, Callable[[], None]]] = deque()
        self._lanes: dict[object, deque[Callable[[], None]]] = {}  # a key's jobs, while one of them runs
        self._in_flight = 0
        self._last = 0.0  # when a request last came or went
        self._cond = threading.Condition()
        self._name = name
        self._releaser: threading.Thread | None = None  # started by `submit`, ends when idle GROUP_IDLE_S
        self._finishing = False  # the process is stopping: what waits goes at once

    async def serve(self, handle: Callable[[Any], Awaitable[T]], request: Any) -> T:
        """`handle(request)`, counted as a request in flight: work waits while any is being served. On the
        event loop's thread only."""
        self._in_flight += 1
        self._last = time.monotonic()
        try:
            return await handle(request)
        finally:
            self._in_flight -= 1
            self._last = time.monotonic()
            if not self._in_flight and self._waiting:
                with self._cond:
                    self._cond.notify()

    def submit(self, key: str | None, job: Callable[[], None]) -> None:
        """Run `job` after the burst; jobs of one key run one after another, in order (None: a key alone)."""
        with self._cond:
            self._waiting.append((time.monotonic() + AFTER_WAIT_S, key if key is not None else object(), job))
            self._cond.notify()
            if self._releaser is None:
                self._releaser = threading.Thread(target=self._release, name=f"{self._name}-after-release",
                                                  daemon=True)
                self._releaser.start()

    def _release(self) -> None:
        while True:
            with self._cond:
                while not self._waiting:
                    if not self._cond.wait(GROUP_IDLE_S) and not self._waiting:
                        self._releaser = None
                        return
                while (due := self._waiting[0][0] - time.monotonic()) > 0 and not self._finishing:
                    quiet = self._last + QUIET_S - time.monotonic()
                    if not self._in_flight and quiet <= 0:
                        break
                    self._cond.wait(due if self._in_flight else min(due, quiet))
                for _, key, job in self._waiting:
                    lane = self._lanes.get(key)
                    if lane is not None:  # that person's earlier work is still running: after it
                        lane.append(job)
                        continue
                    self._lanes[key] = deque([job])
                    self._pool.submit(self._run_lane, key)
                self._waiting.clear()

    def _run_lane(self, key: object) -> None:
        while True:
            with self._cond:
                lane = self._lanes[key]
                if not lane:
                    del self._lanes[key]
                    self._cond.notify_all()  # (`finish` waits for the last lane to end)
                    return
                job = lane.popleft()
            with background():  # off the ack path: its transactions take turns (bot.lanes)
                job()

    def finish(self, timeout: float) -> int:
        """Before the process stops: the work waiting goes now, and this waits (up to `timeout`) until all
        work has run; returns how many jobs had not (0: nothing was dropped)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._finishing = True
            self._cond.notify_all()
            while self._waiting or self._lanes:
                left = deadline - time.monotonic()
                if left <= 0:
                    return len(self._waiting) + sum(len(lane) + 1 for lane in self._lanes.values())
                self._cond.wait(left)
        return 0


GROUP_LIMIT = 32  # events applied in one transaction at most
GROUP_IDLE_S = 1.0  # the group commit's thread ends after this long with nothing to do (the next request starts one)
HELD_S = 1.0  # a group that failed after this long met a held database: the events waiting behind it fail too
SLOW_S = 0.1  # a group that took this long met a slow or held database: commands beside the next are answered first


@dataclass
class _Job:
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]
    outside: bool = False  # run on the group's thread before its transaction, in none of the group's


class _Ready(NamedTuple):
    """Requests run, to be answered together, and the work their acks left (started once answered)."""

    outcomes: list[tuple[_Job, Any, BaseException | None]]  # each request's result, or the error to raise
    after: list[Callable[[], object]]


class GroupCommit:
    """Chat events applied in groups, one transaction each (group commit).

    Requests that store an event (a DM, its edit, its deletion) wait here while one thread of the edge's
    own works: it takes every request waiting (up to GROUP_LIMIT), runs each one's dispatch (Bolt's or the
    SDK's: the event is applied and marked, each in a savepoint) inside one `service.together()`
    transaction, commits once, and only then answers them all. Under a burst that is one BEGIN, one
    COMMIT and one hand-over between threads for many events instead of one each; alone, an event is a
    group of one. The work a dispatch leaves for after its ack (`hold`) starts after the commit. A request
    run `outside` (a command) shares the thread and the answer's hand-over, not the transaction.

    All or none: if any event of a group fails to apply (its dispatch answers `failed`), or the commit
    fails, the whole group is rolled back and nothing of it is answered yet. Each of its requests is then
    run again in a group of its own, so only the failing one is answered RetryLater (the platform delivers
    it again; it was not stored, so it is not doubled). A group of several stores its answers in one round
    trip, each taken to be new (`together(batch=True)`): one that was not (a redelivery) fails the group
    the same way (BatchMiss), and alone each is checked as it is stored. A group that failed only after HELD_S met a
    database held elsewhere: its requests and those waiting behind it fail at once rather than each wait
    as long again.
    """

    def __init__(self, together: Callable[[bool], AbstractContextManager[None]], failed: Callable[[Any], bool],
                 *, name: str) -> None:
        self._together = together
        self._failed = failed
        self._name = name
        self._queue: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._held = threading.local()
        self._thread: threading.Thread | None = None
        self._start = threading.Lock()
        self._slow = False  # the last group took SLOW_S or more

    async def run(self, fn: Callable[..., T], *args: Any, outside: bool = False) -> T:
        """`fn(*args)` in the next group; its result once that group has committed, else RetryLater.
        `outside`: on the group's thread, before the group's transaction begins and outside it (its own
        writes, if any, in transactions of their own) — for a request that mostly writes nothing (a
        command): it never waits for the group's write lock, and never fails with the group. It is
        answered with the group (one hand-over to the event loop for all), or at once when there is no
        group, or when the last group took SLOW_S or more (a database held elsewhere)."""
        loop = asyncio.get_running_loop()
        job = _Job(fn, args, loop, loop.create_future(), outside)
        self._queue.put(job)
        with self._start:  # (a thread idle for GROUP_IDLE_S ends: it holds the app, its pool, its connections)
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name=f"{self._name}-group", daemon=True)
                self._thread.start()
        return cast(T, await job.future)

    def hold(self, job: Callable[[], object]) -> bool:
        """Keep `job` (work after an ack) until this thread's group commits; False outside a group."""
        jobs: list[Callable[[], object]] | None = getattr(self._held, "jobs", None)
        if jobs is None:
            return False
        jobs.append(job)
        return True

    def _work(self) -> None:
        while True:
            try:
                first = self._queue.get(timeout=GROUP_IDLE_S)
            except queue.Empty:
                with self._start:
                    if self._queue.empty():
                        self._thread = None
                        return
                continue
            group = [first]
            while len(group) < GROUP_LIMIT:
                try:
                    group.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            apart = [job for job in group if job.outside]
            inside = [job for job in group if not job.outside]
            ready = self._run_apart(apart) if apart else None
            if ready is not None and (not inside or self._slow):  # nothing to wait for, or a slow database
                self._deliver(ready)
                ready = None
            if inside:
                started = time.monotonic()
                self._run(inside, ready)
                self._slow = time.monotonic() - started >= SLOW_S

    @contextmanager
    def _holding(self) -> Iterator[list[Callable[[], object]]]:
        """The work after acks that the dispatches run in the block leave (`hold`), kept in the list given."""
        after: list[Callable[[], object]] = []
        self._held.jobs = after
        try:
            yield after
        finally:
            self._held.jobs = None

    def _run_apart(self, jobs: list[_Job]) -> _Ready:
        """Each of `jobs` on its own, outside any group transaction: their outcomes and the work they left,
        to be answered and started by `_deliver`."""
        outcomes: list[tuple[_Job, Any, BaseException | None]] = []
        with self._holding() as after:
            for job in jobs:
                try:
                    outcomes.append((job, job.fn(*job.args), None))
                except Exception as e:  # the dispatchers catch their listeners' errors; this is a last resort
                    report_error(f"{self._name}: a request", e, logger)
                    outcomes.append((job, None, RetryLater(str(e))))
        return _Ready(outcomes, after)

    def _deliver(self, ready: _Ready) -> None:
        self._answer(ready.outcomes)
        for work in ready.after:
            work()

    def _run(self, group: list[_Job], ready: _Ready | None = None) -> None:
        """The group in one transaction, answered with `ready` (requests run apart, whose answers do not
        depend on it: one hand-over to the event loop for all); failing, each alone, or all failed when
        the database is held elsewhere — `ready` answered either way."""
        started = time.monotonic()
        error = self._attempt(group, ready)
        if error is None:
            return
        if ready is not None:
            self._deliver(ready)
        held = time.monotonic() - started >= HELD_S
        if len(group) > 1 and not held:  # one event failed (the rollback took back the others): each alone
            logger.debug("%s: a group of %d events was rolled back (%s): each is applied alone", self._name,
                         len(group), type(error).__name__)
            for job in group:
                alone = self._attempt([job])
                if alone is not None:
                    self._fail([job], alone)
            return
        failing, spared = list(group), list[_Job]()
        while held:  # the database is held: those waiting would wait as long, so they fail now too
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            (spared if job.outside else failing).append(job)  # a command needs no group: it is run
        self._fail(failing, error)
        if spared:
            self._deliver(self._run_apart(spared))

    def _attempt(self, group: list[_Job], ready: _Ready | None = None) -> Exception | None:
        """Run the group in one transaction; on its commit answer every request (and `ready`'s) and start
        the work they left; else the exception, nothing answered."""
        results: list[Any] = []
        try:
            with self._holding() as after, self._together(len(group) > 1):  # several: answers batched
                for job in group:
                    result = job.fn(*job.args)
                    if self._failed(result):
                        raise RetryLater("an event could not be applied")
                    results.append(result)
        except Exception as e:
            return e
        outcomes: list[tuple[_Job, Any, BaseException | None]] = [
            (job, result, None) for job, result in zip(group, results, strict=True)]
        if ready is not None:
            outcomes += ready.outcomes
            after = ready.after + after
        self._deliver(_Ready(outcomes, after))
        return None

    def _fail(self, jobs: list[_Job], error: Exception) -> None:
        if not isinstance(error, RetryLater):  # an event's own failure was logged where it happened
            logger.error("%s: storing an event failed (%s: %s); the platform will deliver it again%s",
                         self._name, type(error).__name__, str(error).splitlines()[0] if str(error) else "",
                         f" (and the {len(jobs) - 1} others waiting with it)" if len(jobs) > 1 else "")
        self._answer([(job, None, RetryLater(str(error))) for job in jobs])

    @staticmethod
    def _answer(outcomes: list[tuple[_Job, Any, BaseException | None]]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Job, Any, BaseException | None]]] = {}
        for outcome in outcomes:
            by_loop.setdefault(outcome[0].loop, []).append(outcome)
        for loop, some in by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle, some)
            except RuntimeError:  # that loop has closed: nobody waits for these answers
                pass


def _settle(outcomes: list[tuple[_Job, Any, BaseException | None]]) -> None:
    for job, result, error in outcomes:
        if job.future.done():  # its request went away (the client hung up)
            continue
        if error is not None:
            job.future.set_exception(error)
        else:
            job.future.set_result(result)




class RetryLater(Exception):
    """Storing an event failed: the platform gets a 500 and delivers the event again."""


class QuietRetries(logging.Filter):
    """The SDKs log a listener's exception with its traceback; RetryLater was already logged in one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, RetryLater) and "RetryLater" not in record.getMessage()


class OneLine(logging.Filter):
    """An SDK's own log records as one line: no traceback (WEEKLY_DEBUG=1 keeps them), first line only."""

    def filter(self, record: logging.LogRecord) -> bool:
        if os.environ.get("WEEKLY_DEBUG"):
            return True
        if record.exc_info or record.exc_text:
            exc = record.exc_info[1] if record.exc_info else None
            record.exc_info, record.exc_text, record.stack_info = None, None, None
            first = record.getMessage().splitlines()[0] if record.getMessage() else ""
            record.msg = f"{first[:300]} ({type(exc).__name__})" if exc is not None else first[:300]
            record.args = ()
        return True


class ChatEdge:
    """Shared behaviour of the Slack and Feishu edges; a subclass says how to post to a channel."""

    platform: str  # "slack", "feishu": the key events and members are stored under
    name: str  # "Slack", "Feishu": for the log
    app: Context
    after_ack: AfterAck
    delivery_errors: tuple[type[BaseException], ...] = ()

    def finish(self, timeout: float) -> None:
        """The process is stopping: the work the acks left (confirmations, a lead's report) done first."""
        left = self.after_ack.finish(timeout)
        if left:
            logger.warning("%s: stopped with %d pieces of work after acks not done in %.0f s (replies not sent)",
                           self.name, left, timeout)

    def platforms(self) -> list[Platform]:
        """Where a lead's Publish goes from here: this platform, and every other one configured."""
        from handlers import registry

        others = getattr(self, "_others", None)
        if others is None:
            others = [p for plugin in registry.configured(self.app.settings) if plugin.name != self.platform
                      and (p := plugin.sender(self.app)) is not None]
            self._others = others
        return [self.sender, *others]  # type: ignore[attr-defined]  # each subclass has its sender

    def _apply(self, work: Callable[[], Outcome]) -> Outcome:
        """Apply an event exactly once, or have the platform deliver it again.

        The use-case stores the change and marks the event handled in one transaction (a redelivery
        finds the mark and gets an empty outcome). Any failure leaves nothing stored or marked and
        raises RetryLater, which the platform's SDK answers with a 500, so the platform delivers the
        event again instead of it being lost.
        """
        try:
            return work()
        except BatchMiss:  # the group's answers sent with this one's met a redelivery: the group runs again
            raise RetryLater("a group's answers met a redelivery") from None
        except Exception as e:
            logger.error("%s: storing an event failed (%s: %s); the platform will deliver it again",
                         self.name, type(e).__name__, str(e).splitlines()[0] if str(e) else "")
            raise RetryLater(str(e)) from None

    def _safely(self, fn: Callable[[], Outcome]) -> Outcome:
        """ChatBot never raises; this catches the edge's own failures (a lookup, the database) the same way."""
        try:
            return fn()
        except Exception as e:
            report_error(f"{self.name}: handling a request", e, logger)
            return Outcome([Reply(t(self.app.team_file.language, "error"))])

    def _deliver(self, outcome: Outcome, here: Callable[[Reply], None]) -> None:
        """Send the replies, then run the slow work and send its replies: to channels, members, or `here`."""
        for reply in outcome.replies:
            self._send(reply, here)
        if outcome.later is None:
            return
        try:
            later = outcome.later()
        except Exception as e:  # ChatBot guards its own work; this is a last resort
            report_error(f"{self.name}: slow work after the answer", e, logger)
            later = [Reply(t(self.app.team_file.language, "error"))]
        for reply in later:
            self._send(reply, here)

    def _send(self, reply: Reply, here: Callable[[Reply], None]) -> None:
        try:
            if reply.channel:
                self._post_channel(reply.channel, reply)
            elif reply.to:
                self._dm(reply.to, reply)
            else:
                here(reply)
        except self.delivery_errors as e:
            logger.warning("%s: a reply could not be delivered: %s", self.name, self._describe(e))

    def _post_channel(self, channel: str, reply: Reply) -> None:
        raise NotImplementedError

    def _dm(self, member: str, reply: Reply) -> None:
        raise NotImplementedError

    def _describe(self, error: BaseException) -> str:
        return str(error)


class Directory:
    """Members and a platform's user ids: the team file's, else found by email and cached in the database."""

    platform: str  # also the team file's field for the id: `slack:` / `feishu:`
    name: str

    def __init__(self, app: Context) -> None:
        self.app = app
        self._no_match: set[str] = set()  # user ids whose email matched no member (this process)
        self._settled: set[str] = set()  # user ids known to be a member or no member (this process)

    def _lookup_email(self, email: str) -> str | None:
        """The platform's user id for an email, None if it has none; raises SendError when it can't say."""
        raise NotImplementedError

    def _email_of(self, user_id: str) -> str | None:
        """A user's email, quickly (before an ack), None when the platform won't tell."""
        raise NotImplementedError

    def known_ids(self) -> dict[str, str]:
        """member key → user id, the team file winning over the cache."""
        return self.app.service.platform_ids(self.platform)

    def knows(self, member: str) -> bool:
        m = self.app.team_file.members.get(member)
        return m is not None and bool(m.id_on(self.platform) or m.email or self.app.service.platform_id(
            self.platform, member))

    def user_id(self, member: str) -> str:
        """The member's user id; looked up by email once, then cached."""
        found = self.app.service.platform_id(self.platform, member)
        if found:
            return found
        m = self.app.team_file.members.get(member)
        if m is None or not m.email:
            raise SendError(f"{self.name}: member {member} has no {self.platform} id or email in the team file")
        user_id = self._lookup_email(m.email)
        if not user_id:
            raise SendError(f"{self.name}: no user with member {member}'s email")
        self.app.service.remember_platform_id(member, self.platform, user_id)
        logger.info("%s: member %s is %s (found by email)", self.name, member, user_id)
        return user_id

    def recognised(self, user_id: str) -> bool:
        """Whether `recognise` has settled who this is in this process (from memory: no lookup)."""
        return user_id in self._settled

    def recognise(self, user_id: str) -> None:
        """Make sure someone with no id in the team file is matched to a member by email."""
        if user_id in self._no_match or self.app.service.member_by(self.platform, user_id) is not None:
            self._settled.add(user_id)
            return
        known = self.known_ids()
        candidates = {m.email.lower(): k for k, m in self.app.team_file.members.items() if m.email and k not in known}
        email = (self._email_of(user_id) or "").lower() if candidates else ""
        member = candidates.get(email) if email else None
        if member is None:
            self._no_match.add(user_id)
            self._settled.add(user_id)
            return
        self.app.service.remember_platform_id(member, self.platform, user_id)
        self._settled.add(user_id)
        logger.info("%s: member %s is %s (matched by email)", self.name, member, user_id)

    def name_of(self, user_id: str) -> str | None:
        """A member's name for a mention of `user_id`, when the user is a member."""
        member = self.app.service.member_by(self.platform, user_id)
        return self.app.team_file.members[member].name if member else None


MAX_BODY_BYTES = 1024 * 1024  # spec §9: a larger request is refused unread


class TooLarge(Exception):
    """A request body over MAX_BODY_BYTES (413)."""


class HungUp(Exception):
    """The client went away before its body was read: nobody to answer, nothing to log but a line."""


async def read_body(request: Any, limit: int = MAX_BODY_BYTES) -> bytes:
    """A Starlette request's body, read no further than `limit` bytes: a declared or actual excess raises
    TooLarge, so one client's 10 MB body never sits in memory."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise TooLarge(declared)
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise TooLarge(str(size))
            chunks.append(chunk)
    except ClientDisconnect:
        raise HungUp(f"after {size} bytes") from None
    return b"".join(chunks)


async def body_or_refusal(request: Any, platform: str, error_field: str) -> bytes | Response:
    """The request's body, or the answer to give instead: 413 past the cap, 400 (one info line) when the
    client hung up before sending it all."""
    try:
        return await read_body(request)
    except TooLarge:
        return JSONResponse({error_field: "request too large"}, status_code=413)
    except HungUp as e:
        logger.info("%s: the client hung up mid-request (%s): nothing done", platform, e)
        return Response(status_code=400)


def load_json(raw: bytes | str) -> Any:
    """JSON, or ValueError for anything that is not (invalid UTF-8, truncated, nested too deep)."""
    try:
        return json.loads(raw)
    except RecursionError:
        raise ValueError("nested too deep") from None
    except UnicodeDecodeError:
        raise ValueError("not UTF-8") from None
