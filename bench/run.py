"""Benchmarks: print figures, assert nothing. `make bench` runs them; the README shows the latest.

Each figure is measured on a temporary SQLite database (and PostgreSQL when
WEEKLY_TEST_POSTGRES_URL is set) with an invented 40-section team.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.teams import team_yaml  # noqa: E402
from bot.chat import Reply  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.model import SectionText, SummaryRequest  # noqa: E402
from bot.summary_offline import summarize_offline  # noqa: E402
from bot.tick import tick  # noqa: E402
from bot.wiring import build_app  # noqa: E402

TZ = ZoneInfo("Asia/Shanghai")
SECTIONS = 40


class Sink:
    platform = "bench"

    def __init__(self) -> None:
        self.count = 0

    def can_reach(self, member: str) -> bool:
        return True

    def send(self, member: str, reply: Reply) -> None:
        self.count += 1

    def publish(self, channel: str, reply: Reply) -> None:
        self.count += 1


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def fmt(samples: list[float]) -> str:
    samples = sorted(samples)
    p95 = samples[min(len(samples) - 1, int(len(samples) * 0.95))]
    return f"median {statistics.median(samples):7.2f} ms   p95 {p95:7.2f} ms   (n={len(samples)})"


def run(db_url: str, label: str, workdir: Path) -> None:
    team = workdir / "team.yaml"
    team.write_text(team_yaml(SECTIONS, name="Member {i}", holidays="CN"), encoding="utf-8")
    now = [datetime(2024, 10, 14, 10, 0, tzinfo=TZ)]
    app = build_app(settings=Settings(weekly_config=str(team), database_url=db_url), clock=lambda: now[0])
    svc = app.service
    t = svc.team(None)
    counter = [0]

    def record() -> None:
        counter[0] += 1
        i = counter[0] % SECTIONS
        svc.record(f"m{i}", f"1. 本周完成第{counter[0]}项工作，成功率99.9%。\n2. 计划下周上线。", platform="bench",
                   message_id=f"b{counter[0]}")

    sink = Sink()
    print(f"[{label}] tick at the opening, {SECTIONS} owners: "
          f"{fmt(timed(lambda: tick(svc, [sink], now[0]), 1))} — {sink.count} prompts")
    print(f"[{label}] idle tick (nothing due):            {fmt(timed(lambda: tick(svc, [sink], now[0]), 20))}")
    print(f"[{label}] record one answer (store + confirm): {fmt(timed(record, 200))}")
    print(f"[{label}] status of {SECTIONS} sections:             {fmt(timed(lambda: svc.status(t), 20))}")
    print(f"[{label}] compile the report (no summary):    "
          f"{fmt(timed(lambda: svc.report(t, summarize=False), 20))}")
    now[0] += timedelta(days=2)


def offline_summary() -> None:
    sections = tuple(
        SectionText(f"s{i}", f"部分{i}", "\n".join(
            f"{j + 1}. 事项{j}：进度{50 + j}%，预计11月上线；发现风险{j}项。" for j in range(30)))
        for i in range(200))
    request = SummaryRequest(team_title="基准", cycle="2024-W42", language="zh", sections=sections)
    print(f"[core] offline summary, 200 sections × 30 lines:  {fmt(timed(lambda: summarize_offline(request), 10))}")


def main() -> None:
    print(f"weekly-bot benchmarks — Python {sys.version.split()[0]}, {os.cpu_count()} cores")
    offline_summary()
    with tempfile.TemporaryDirectory() as tmp:
        run(f"sqlite:///{tmp}/bench.db", "sqlite", Path(tmp))
    pg = os.environ.get("WEEKLY_TEST_POSTGRES_URL")
    if pg:
        from bench.pg import pg_schema

        with pg_schema(pg, "bench") as url, tempfile.TemporaryDirectory() as tmp:
            run(url, "postgresql", Path(tmp))
    # issue 13's targets, each beside a floor measured in the same run (each script also runs alone)
    import runpy

    for script in ("slack_ack.py", "fanout.py", "history.py", "tokens.py"):
        print(flush=True)
        runpy.run_path(str(Path(__file__).parent / script), run_name="__main__")


if __name__ == "__main__":
    main()
