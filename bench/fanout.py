"""A cycle opening for 1,000 owners (issue 13): the first tick against Slack's Web API played by the tests'
fake with 30 ms a call and 50 answers of 429 (Retry-After: 1), spread over the run. Prints the time,
duplicates and owners missing after that one tick (target < 30 s, 0, 0) beside the floor measured in the
same run: the same 1,000 chat.postMessage calls through slack_sdk alone, 16 in flight like the tick's,
against the same 30 ms and no 429 — what the sending takes with no claim, no database, no prompt to
compose and nothing to wait out. Prints figures, asserts nothing."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from slack_sdk import WebClient  # noqa: E402

from bench.teams import team_yaml  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.fanout import SENDERS  # noqa: E402
from bot.tick import tick  # noqa: E402
from bot.wiring import build_app, build_senders  # noqa: E402
from tests.fakes.slack_api import FakeSlackApi, landed_in  # noqa: E402

OWNERS = 1000
LATENCY_S = 0.030
LIMITED = 50  # answers of 429
EVERY = 18  # every 18th call is one of them, until 50 have been: spread over the first ~900 calls
TARGET_S = 30.0
OPENS = datetime(2024, 10, 14, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))  # Monday 10:00: 2024-W42 opens


def user(i: int) -> str:
    return f"U0FAN{i:05d}"


def delivered(fake: FakeSlackApi) -> Counter[str]:
    """Successful chat.postMessage calls per DM."""
    return Counter(landed_in(str(c.params.get("channel"))) for c in fake.calls("chat.postMessage") if c.status == 200)


def floor() -> float:
    """The same sends through slack_sdk alone, 16 in flight, none refused."""
    with FakeSlackApi(latency=LATENCY_S) as fake:
        client = WebClient(token="xoxb-floor", base_url=fake.api_url)

        def send(i: int) -> None:
            client.chat_postMessage(channel=user(i), text=f"成员{i}你好，扇出周报 2024-W42 开始收集了。")

        started = time.perf_counter()
        with ThreadPoolExecutor(SENDERS) as pool:
            list(pool.map(send, range(OWNERS)))
        took = time.perf_counter() - started
        got = delivered(fake)
        print(f"[fanout] floor: {OWNERS} posts through slack_sdk alone, {SENDERS} in flight, no 429: {took:6.2f} s   "
              f"({sum(got.values())} delivered to {len(got)} DMs)")
        return took


def run(label: str, db_url: str, workdir: Path, floor_s: float) -> None:
    with FakeSlackApi(latency=LATENCY_S) as fake:
        settings = Settings(weekly_config=str(workdir / "team.yaml"), database_url=db_url,
                            slack_bot_token="xoxb-bench", slack_api_url=fake.api_url)
        app = build_app(settings=settings, clock=lambda: OPENS)
        senders = build_senders(app)
        fake.fail("chat.postMessage", status=429, headers={"Retry-After": "1"}, times=LIMITED, every=EVERY)
        started = time.perf_counter()
        sent = tick(app.service, senders, OPENS)
        took = time.perf_counter() - started
        got = delivered(fake)
        limited = sum(1 for c in fake.calls("chat.postMessage") if c.status == 429)
        doubled = sum(n - 1 for n in got.values() if n > 1)
        missing = sum(1 for i in range(OWNERS) if got["D" + user(i)[1:]] == 0)
        ok = took < TARGET_S and not doubled and not missing
        print(f"[fanout/{label}] first tick, {OWNERS} owners: {took:6.2f} s ({took / floor_s:4.1f} × the floor)   "
              f"duplicates {doubled}   missing {missing}   ({len(sent)} sends, {limited} × 429 waited out)   "
              f"target < {TARGET_S:g} s, 0, 0: {'met' if ok else 'MISSED'}")
        started = time.perf_counter()
        again = tick(app.service, senders, OPENS + timedelta(minutes=1))
        print(f"[fanout/{label}] the next minute's tick: {len(again)} sends, {time.perf_counter() - started:5.2f} s; "
              f"outgoing rows sent: {sum(o.status == 'sent' for o in app.service.outgoing('fanout', '2024-W42'))}")
        app.store.engine.dispose()  # type: ignore[attr-defined]


def main() -> None:
    tmp = Path(tempfile.mkdtemp())
    try:
        (tmp / "team.yaml").write_text(team_yaml(OWNERS, key="fanout", title="扇出周报", slack=user), encoding="utf-8")
        floor_s = floor()
        run("sqlite", f"sqlite:///{tmp}/fanout.db", tmp, floor_s)
        pg = os.environ.get("WEEKLY_TEST_POSTGRES_URL")
        if pg:
            from bench.pg import pg_schema

            with pg_schema(pg, "bench_fanout") as url:
                run("postgresql", url, tmp, floor_s)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
