"""History at full size: importing 52 cycles × 300 sections, and one 300-section report compiled and
rendered in process (issue 13: < 10 s and < 200 ms). The floor, measured in the same run, is reading
and parsing the same files, which any import must do. Prints figures, asserts nothing."""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.teams import team_yaml  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.parse import parse_report  # noqa: E402
from bot.wiring import build_app  # noqa: E402

CYCLES = 52
SECTIONS = 300
IMPORT_TARGET_S = 10.0
REPORT_TARGET_MS = 200.0


def report_md(week: date, n: int, sections: int) -> str:
    """One week's report as people wrote it: every section with a few nested lines, both closing parts."""
    year, wk, _ = week.isocalendar()
    lines = [f"# {year}-W{wk:02d}", "", f"Created: {week:%Y年%m月%d日} 18:05", ""]
    for i in range(sections):
        lines += [f"- 【部分{i}】",
                  f"    1. 本周完成第{n}批任务{i}，处理{100 + i}笔，成功率99.{i % 10}%。",
                  "        - 上线检查全部通过，无回滚。",
                  f"    2. 计划下周推进事项{i}，预计{(i % 28) + 1}日完成。"]
    lines += ["", "## 收获与反思", "",
              "1. 上线前的检查清单要覆盖回滚演练。（来源：部分1、部分2）",
              "2. 告警阈值要随流量调整。（来源：部分3）", "",
              "# 下周工作及目标", "",
              "1. 推进事项1上线。（来源：部分1）",
              "2. 完成事项3的回滚演练。（来源：部分3）", ""]
    return "\n".join(lines)


def write_reports(directory: Path, cycles: int, sections: int) -> list[str]:
    first = date(2023, 1, 2)  # a Monday: 2023-W01
    paths = []
    for n in range(cycles):
        path = directory / f"report-{n:02d}.md"
        path.write_text(report_md(first + timedelta(weeks=n), n, sections), encoding="utf-8")
        paths.append(str(path))
    return paths


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f} ms"


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def run(db_url: str, label: str, workdir: Path, paths: list[str], floor_s: float) -> None:
    settings = Settings(weekly_config=str(workdir / "team.yaml"), database_url=db_url)
    app = build_app(settings=settings)
    svc = app.service
    team = svc.team(None)
    seen: list[str] = []
    started = time.perf_counter()
    result = svc.import_reports(paths, team=team, progress=lambda done, total, cycle: seen.append(cycle))
    took = time.perf_counter() - started
    print(f"[history/{label}] import {len(result.cycles)} cycles × {SECTIONS} sections "
          f"({result.sections} section texts): {took:6.2f} s   target < {IMPORT_TARGET_S:g} s: "
          f"{verdict(took < IMPORT_TARGET_S)}   ({took / floor_s:4.1f} × the floor; progress seen "
          f"{len(seen)} reports)")
    started = time.perf_counter()
    svc.import_reports(paths[:1], team=team)
    print(f"[history/{label}] import one of them again (revises, never doubles): "
          f"{ms(time.perf_counter() - started)}")
    samples = []
    for label_ in (result.cycles[10], result.cycles[30], result.cycles[50]) * 4:
        started = time.perf_counter()
        report = svc.report(team, label_, summarize=False)
        samples.append(time.perf_counter() - started)
    assert len(report.sections) == SECTIONS
    p50 = statistics.median(samples)
    print(f"[history/{label}] compile and render one {SECTIONS}-section report: median {ms(p50)}   "
          f"max {ms(max(samples))}   target < {REPORT_TARGET_MS:g} ms: {verdict(max(samples) * 1000 < REPORT_TARGET_MS)}"
          f"   ({len(report.markdown):,} characters, n={len(samples)})")
    app.store.engine.dispose()  # type: ignore[attr-defined]


def main() -> None:
    tmp = Path(tempfile.mkdtemp())
    try:
        (tmp / "team.yaml").write_text(team_yaml(SECTIONS, key="history", title="历史周报", name="Member {i}"), encoding="utf-8")
        paths = write_reports(tmp, CYCLES, SECTIONS)
        started = time.perf_counter()
        for path in paths:
            parse_report(Path(path).read_text(encoding="utf-8"))
        floor_s = time.perf_counter() - started
        print(f"[history] floor: read and parse the {CYCLES} files: {floor_s:6.2f} s")
        run(f"sqlite:///{tmp}/history.db", "sqlite", tmp, paths, floor_s)
        pg = os.environ.get("WEEKLY_TEST_POSTGRES_URL")
        if pg:
            from bench.pg import pg_schema

            with pg_schema(pg, "bench_history") as url:
                run(url, "postgresql", tmp, paths, floor_s)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
