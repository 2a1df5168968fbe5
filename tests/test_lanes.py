"""Which threads take turns for the database (bot.lanes): the work after acks and the fan-out's senders
do; the request workers and the group commit's thread, on the ack path, do not."""

from __future__ import annotations

import asyncio
import threading
from contextlib import nullcontext

from bot.fanout import run_paced
from bot.lanes import background, in_background
from handlers.edge import AfterAck, GroupCommit, in_worker


def test_the_fan_outs_senders_work_off_the_ack_path() -> None:
    seen: list[bool] = []
    run_paced(list(range(6)), lambda job: seen.append(in_background()), channel=lambda j: j,
              gave_up=lambda j, e: None, threads=3, min_gap=0.0)
    assert seen == [True] * 6
    assert not in_background()  # the caller's own thread is as it was


def test_work_after_acks_is_off_the_ack_path_and_the_acks_are_on_it() -> None:
    after = AfterAck(2, name="t")
    seen: dict[str, bool] = {}
    ran = threading.Event()

    def later() -> None:
        seen["after an ack"] = in_background()
        ran.set()

    after.submit(None, later)
    assert after.finish(5.0) == 0 and ran.is_set()

    group = GroupCommit(nullcontext, lambda r: False, name="t")

    async def requests() -> None:
        seen["group commit"] = await group.run(in_background)
        seen["command beside it"] = await group.run(in_background, outside=True)
        seen["request worker"] = await in_worker(in_background)

    asyncio.run(requests())
    assert seen == {"after an ack": True, "group commit": False, "command beside it": False,
                    "request worker": False}


def test_background_nests_and_restores() -> None:
    with background():
        with background():
            assert in_background()
        assert in_background()
    assert not in_background()
