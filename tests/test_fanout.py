"""The fan-out: sends in flight together, each recipient paced, a 429's Retry-After honoured for that
recipient only; every prompt still claimed once and sent once."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable

import pytest

from bot.fanout import MAX_LIMITED, run_paced
from bot.notify import RateLimited
from bot.tick import tick
from bot.wiring import App, build_senders
from tests.conftest import OPEN_CYCLE, FixedClock, at
from tests.fakes.slack_api import FakeSlackApi, landed_in

OWNERS = {"U0LILEI001", "U0ZHANG001", "U0CHEN0001", "U0LIUY0001", "U0ZHAO0001", "U0SUNH0001", "U0WANG0001"}


def test_a_429_is_waited_out_for_its_recipient_only_and_nobody_is_prompted_twice(
        make_app: Callable[..., App]) -> None:
    with FakeSlackApi() as fake:
        app = make_app(FixedClock(OPEN_CYCLE), slack_bot_token="xoxb-test", slack_api_url=fake.api_url)
        fake.fail("chat.postMessage", status=429, headers={"Retry-After": "1"}, times=1)
        senders = build_senders(app)
        started = time.monotonic()
        sent = tick(app.service, senders, at("2024-10-14 10:00"))
        took = time.monotonic() - started
        assert {(s.due.member, s.ok) for s in sent} == {
            (m, True) for m in ("li", "zhang", "chen", "liu", "zhao", "sun", "wang")}
        calls = fake.calls("chat.postMessage")
        [limited] = [c for c in calls if c.status == 429]
        ok = [c for c in calls if c.status == 200]
        assert Counter(landed_in(c.params["channel"]) for c in ok) == Counter({"D" + u[1:]: 1 for u in OWNERS})
        [retry] = [c for c in ok if c.params["channel"] == limited.params["channel"]]
        assert retry.at - limited.at >= 1.0  # its Retry-After, honoured
        others = [c for c in ok if c is not retry]
        assert all(c.at < limited.at + 1.0 for c in others)  # …by it alone: the others did not wait
        assert fake.calls("conversations.open") == []
        assert took < 2.5  # one Retry-After, not one per send
        assert {o.status for o in app.service.outgoing("clearing", "2024-W42")} == {"sent"}
        assert tick(app.service, senders, at("2024-10-14 10:01")) == []


def test_run_paced_spaces_one_channel_and_runs_the_others_meanwhile() -> None:
    done: list[tuple[str, float]] = []
    lock = threading.Lock()
    limited_once: set[str] = set()

    def work(job: tuple[str, int]) -> None:
        ch, n = job
        if ch == "b" and n == 0 and ch not in limited_once:
            limited_once.add(ch)
            raise RateLimited("429", retry_after=0.3)
        with lock:
            done.append((f"{ch}{n}", time.monotonic()))

    start = time.monotonic()
    jobs = [("a", 0), ("a", 1), ("b", 0), ("c", 0), ("c", 1), ("d", 0)]
    run_paced(jobs, work, channel=lambda j: j[0], gave_up=lambda j, e: None, threads=4, min_gap=0.1)
    when = {name: t - start for name, t in done}
    assert sorted(when) == ["a0", "a1", "b0", "c0", "c1", "d0"]  # each once
    assert when["a1"] - when["a0"] >= 0.1 and when["c1"] - when["c0"] >= 0.1  # paced per channel
    assert when["b0"] >= 0.3  # after its Retry-After
    assert when["d0"] < 0.1 and when["a0"] < 0.1  # not behind b's wait


@pytest.mark.parametrize("threads", [1, 3])
def test_run_paced_hands_back_a_job_still_limited_after_its_tries(threads: int) -> None:
    tries: Counter[str] = Counter()
    handed_back: list[str] = []

    def work(job: str) -> None:
        tries[job] += 1
        if job == "x":
            raise RateLimited("429", retry_after=0.01)

    run_paced(["x", "y"], work, channel=lambda j: j, gave_up=lambda j, e: handed_back.append(j), threads=threads,
              min_gap=0.0)
    assert (tries["x"], tries["y"], handed_back) == (MAX_LIMITED, 1, ["x"])
