"""How fast the leads' web view answers with a year of history: 52 cycles × 40 sections, every section
answered each cycle (a third of them edited twice, some late), a closing-section draft per cycle. Real
HTTP into uvicorn on 127.0.0.1 with a signed-in session; beside each page, a trivial Starlette route in
the same server as the floor. The issue's bar: < 300 ms per page.

    .venv/bin/python bench/web_pages.py            # SQLite
    WEEKLY_TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/test .venv/bin/python bench/web_pages.py
"""

from __future__ import annotations

import http.client
import os
import shutil
import statistics
import sys
import tempfile
import time
from contextlib import nullcontext
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402
from starlette.responses import PlainTextResponse  # noqa: E402
from starlette.routing import Route  # noqa: E402

from bench.pg import pg_schema  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.model import Summary, SummaryItem  # noqa: E402
from bot.weblinks import WebSignIn  # noqa: E402
from bot.wiring import build_app  # noqa: E402
from handlers.web import create_web_app  # noqa: E402
from tests.serving import running  # noqa: E402

TZ = ZoneInfo("Asia/Shanghai")
CYCLES, SECTIONS, N = 52, 40, 20
LIMIT_MS = 300.0


def team_yaml(path: Path) -> None:
    members = {f"m{i:02d}": {"name": f"成员{i:02d}"} for i in range(SECTIONS)}
    members["lead"] = {"name": "负责人"}
    path.write_text(yaml.safe_dump({
        "timezone": "Asia/Shanghai", "language": "zh", "members": members,
        "teams": [{"key": "big", "title": "大部门周报", "leads": ["lead"],
                   "schedule": {"weeks": 1, "start": "2023-W40", "open": "mon 10:00", "deadline": "thu 18:00",
                                "holidays": "none"},
                   "sections": [{"key": f"s{i:02d}", "title": f"工作流{i:02d}", "owners": [f"m{i:02d}"]}
                                for i in range(SECTIONS)]}],
    }, allow_unicode=True), encoding="utf-8")


def fill(app, first_monday: datetime) -> None:  # type: ignore[no-untyped-def]
    """A year of answers, written straight into the store (the use-cases' writes are benchmarked elsewhere)."""
    store = app.store
    n = 0
    for c in range(CYCLES):
        opens = first_monday + timedelta(weeks=c, hours=10)
        deadline = opens + timedelta(days=3, hours=8)
        label = f"{(opens.date()).isocalendar()[0]}-W{opens.date().isocalendar()[1]:02d}"
        cycle = store.ensure_cycle(team_key="big", label=label, opens_at=opens, deadline=deadline)
        for s in range(SECTIONS):
            n += 1
            late = (s + c) % 9 == 0
            at = deadline + timedelta(hours=1) if late else opens + timedelta(hours=1 + s % 30)
            body = (f"1. 本周完成第{c + 1}期的交付{n % 17}项，成功率99.{n % 100:02d}%。\n"
                    f"2. 风险：上游接口变更，预计下周{('一', '二', '三')[s % 3]}完成联调。")
            store.add_update(cycle_id=cycle.id, section_key=f"s{s:02d}", member_key=f"m{s:02d}", platform="slack",
                             message_id=f"bench-{n}", text=body, at=at, late=late)
            if s % 3 == 0:
                for k in (1, 2):
                    store.edit_update(platform="slack", message_id=f"bench-{n}", text=f"{body}\n3. 补充{k}。",
                                      at=at + timedelta(minutes=k))
        items = [SummaryItem(f"工作流{s:02d}的联调要提前确认。", (f"s{s:02d}",)) for s in range(4)]
        store.put_summary(cycle_id=cycle.id, cache_key=f"bench:{c}", at=deadline,
                          summary=Summary(reflections=items[:2], next_week=items[2:], source="offline"))


def get(host: str, path: str, cookie: str) -> tuple[float, int, int]:
    conn = http.client.HTTPConnection(host, timeout=30)
    start = time.perf_counter()
    conn.request("GET", path, headers={"Cookie": cookie})
    resp = conn.getresponse()
    body = resp.read()
    took = (time.perf_counter() - start) * 1000
    conn.close()
    return took, resp.status, len(body)


def main() -> None:
    pg = os.environ.get("WEEKLY_TEST_POSTGRES_URL")
    tmp = Path(tempfile.mkdtemp())
    try:
        team_yaml(tmp / "team.yaml")
        with pg_schema(pg, "bench_web") if pg else nullcontext(f"sqlite:///{tmp / 'weekly.db'}") as url:
            measure(url, pg, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def measure(url: str, pg: str | None, tmp: Path) -> None:
    """Fill a year of history into the database at `url`, then time each page through real HTTP."""
    first = datetime(2023, 10, 2, tzinfo=TZ)  # Monday of 2023-W40
    now = first + timedelta(weeks=CYCLES - 1, days=2)  # Wednesday of the 52nd week: it is open
    app = build_app(settings=Settings(weekly_config=str(tmp / "team.yaml"), database_url=url),
                    clock=lambda: now)
    started = time.perf_counter()
    fill(app, first)
    filled = time.perf_counter() - started
    web = create_web_app(app)
    web.router.routes.append(Route("/floor", lambda request: PlainTextResponse("ok")))
    with running(web) as base:  # the same uvicorn-on-port-0 the tests serve through
        host = base.removeprefix("http://")
        link = urlsplit(WebSignIn(app.service).issue("lead"))
        conn = http.client.HTTPConnection(host)
        conn.request("GET", f"{link.path}?{link.query}")
        resp = conn.getresponse()
        resp.read()
        cookie = resp.getheader("set-cookie", "").split(";")[0]
        assert resp.status == 303 and cookie, "sign-in failed"
        labels = [c.label for c in app.service.timeline(app.service.team("big")).between(first.date(), now.date())]
        pages = [
            ("floor: a trivial route", "/floor"),
            ("home: 52 cycles", "/web/"),
            ("a closed cycle: report + 40 sections' history", f"/web/cycle/{quote(labels[25], safe='')}"),
            ("the open cycle", f"/web/cycle/{quote(labels[-1], safe='')}"),
            ("participation: 40 × 52 + chart", "/web/participation"),
            ("participation CSV", "/web/participation.csv"),
            ("search '联调' (200 newest of 2080)", "/web/search?q=%E8%81%94%E8%B0%83"),
            ("a cycle's Markdown", f"/web/cycle/{quote(labels[25], safe='')}/report.md"),
        ]
        db = "postgresql" if pg else "sqlite"
        print(f"weekly-bot web view — {CYCLES} cycles × {SECTIONS} sections ({CYCLES * SECTIONS} answers, "
              f"{CYCLES * len(range(0, SECTIONS, 3)) * 2} edits) on {db}, filled in {filled:.1f} s; Python "
              f"{sys.version.split()[0]}, {os.cpu_count()} cores; n={N} each, after 2 warm-ups")
        worst = 0.0
        for name, path in pages:
            for _ in range(2):
                get(host, path, cookie)
            samples = []
            for _ in range(N):
                took, status, size = get(host, path, cookie)
                assert status == 200, (path, status)
                samples.append(took)
            samples.sort()
            p95 = samples[int(len(samples) * 0.95) - 1]
            if path != "/floor":
                worst = max(worst, p95)
            print(f"[{db}] {name:<48} median {statistics.median(samples):7.2f} ms   p95 {p95:7.2f} ms   "
                  f"max {samples[-1]:7.2f} ms   {size // 1024:5d} KiB")
        print(f"slowest page p95 {worst:.1f} ms: {'under' if worst < LIMIT_MS else 'OVER'} the {LIMIT_MS:.0f} ms bar")
    app.store.engine.dispose()


if __name__ == "__main__":
    main()
