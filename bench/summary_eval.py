"""Score a summarizer against reports that carry their own hand-written closing sections (issue 12).

    python bench/summary_eval.py                       # the offline rules, on bot/demo_data/ (= examples/) + generated reports
    python bench/summary_eval.py --url http://127.0.0.1:8080/v1 --model qwen2.5-7b-instruct [--key sk-…]

For each report the closing sections a lead wrote (收获与反思 / 下周工作及目标) are the reference; the
summarizer sees only the sections above them. Printed per report and in total:
  L/G        lessons and goals drafted
  L cov      share of the sections the reference's lessons name that the drafted lessons name too
  G cov      the same for next week's goals
  dropped    items the guard removed (LLM) or last goals that traced nowhere (offline), with the reasons below
  dup        lines standing in both lists, or twice in one
  done G     goals that are finished results (a word of completion and nothing open), which should be none
The generated reports are built with a known reference (which sections hold open work, incidents and
risks), so they test spread and coverage; the examples test the wording on reports as people write them.
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.model import SectionText, Summary, SummaryItem, SummaryRequest  # noqa: E402
from bot.parse import parse_report  # noqa: E402
from bot.summary_offline import says_done, summarize_offline  # noqa: E402
from bot.titles import keyed_by_title, norm_title, sections_named  # noqa: E402


@dataclass
class Case:
    name: str
    request: SummaryRequest
    reference: dict[str, list[SummaryItem]]  # part → items, sources as section keys


@dataclass
class Score:
    name: str
    source: str
    lessons: int
    goals: int
    cov: dict[str, tuple[int, int]]  # part → (reference sections also named, reference sections)
    dropped: list[str] = field(default_factory=list)
    dup: int = 0
    done_goals: list[str] = field(default_factory=list)
    seconds: float = 0.0
    note: str | None = None


def load_case(path: Path) -> Case:
    report = parse_report(path.read_text(encoding="utf-8"))
    sections = tuple(SectionText(f"s{i}", s.title, s.content, "submitted" if s.content.strip() else "missing",
                                 s.style) for i, s in enumerate(report.sections))
    by_title = {norm_title(s.title): s.key for s in sections}
    pairs = [(s.key, s.title) for s in sections]

    def keyed(items: tuple[SummaryItem, ...]) -> list[SummaryItem]:
        out = []
        for item in items:
            keys = keyed_by_title(item.sources, by_title) or sections_named(item.text, pairs)
            out.append(SummaryItem(item.text, keys))
        return out

    language = "zh" if any("\u4e00" <= ch <= "\u9fff" for ch in path.read_text(encoding="utf-8")) else "en"
    request = SummaryRequest("eval", report.cycle or path.stem, language, sections)  # type: ignore[arg-type]
    return Case(str(path.relative_to(ROOT)), request,
                {"reflections": keyed(report.reflections), "next_week": keyed(report.next_week)})


# -- generated reports ---------------------------------------------------------------------------
STREAMS = ["好店", "贝易转", "标准银行账户", "收单业务", "对公收佣", "清结算", "风控", "基础架构", "跨境收款", "商户进件",
           "代付通道", "营销平台"]
DONE = ["{s}新版本已上线，覆盖商户{n}家。", "{s}接口联调完成，安全评审已通过。", "{s}压测通过：峰值{n} TPS，无错误。"]
OPEN = ["{s}改造进度{p}%，预计{m}月下旬完成。", "计划下周启动{s}二期方案评审。", "{s}与合作方对接，待对方排期。"]
CAUSES = ["内存泄露导致频繁GC", "证书过期未续", "上游文件格式变更未通知", "批量任务与备份任务争用磁盘IO",
          "消息队列消费者配置遗漏"]


def generated(seed: int) -> Case:
    """A report of 6–9 workstreams and an incident section, with the closing sections a rule of thumb
    expects: a goal for every workstream with open work, a lesson for every incident's cause."""
    rng = random.Random(seed)
    streams = rng.sample(STREAMS, rng.randint(6, 9))
    sections: list[SectionText] = []
    goals: list[SummaryItem] = []
    lessons: list[SummaryItem] = []
    for i, stream in enumerate(streams):
        key = f"s{i}"
        lines = [rng.choice(DONE).format(s=stream, n=rng.randint(10, 3000))]
        if rng.random() < 0.7:
            lines.append(rng.choice(OPEN).format(s=stream, p=rng.randint(10, 90), m=rng.randint(1, 12)))
            goals.append(SummaryItem(f"{stream}继续推进", (key,)))
        if i == 1:
            lines.append("TODO：1. 梳理失败码映射 2. 收集重点商户诉求 3. 组织第三轮研讨")
            goals.append(SummaryItem(f"{stream}待办", (key,)))
        sections.append(SectionText(key, stream, "\n".join(f"{j + 1}. {line}" for j, line in enumerate(lines))))
    incidents = []
    for j in range(rng.randint(2, 5)):
        where = rng.randrange(len(streams))
        cause = rng.choice(CAUSES)
        incidents.append(f"- 10/{8 + j:02d} 1{j}:05  {streams[where]}服务异常，持续{rng.randint(5, 40)}分钟，原因是{cause}，"
                         "处理后恢复。")
    sections.append(SectionText("incidents", "生产事件", "\n".join(incidents), style="heading"))
    lessons.append(SummaryItem("事件原因", ("incidents",)))
    request = SummaryRequest("eval", f"gen-{seed}", "zh", tuple(sections))
    return Case(f"generated #{seed}", request, {"reflections": lessons, "next_week": goals})


# -- scoring -------------------------------------------------------------------------------------
def _key(text: str) -> str:
    return norm_title(text.removeprefix("（延续）").removeprefix("(carried over)"))


def score(case: Case, summary: Summary, seconds: float) -> Score:
    parts = {"reflections": summary.reflections, "next_week": summary.next_week}
    cov: dict[str, tuple[int, int]] = {}
    for part, reference in case.reference.items():
        wanted = {k for item in reference for k in item.sources}
        named = {k for item in parts[part] for k in item.sources}
        cov[part] = (len(wanted & named), len(wanted))
    lesson_keys = [_key(i.text) for i in summary.reflections]
    goal_keys = [_key(i.text) for i in summary.next_week]
    dup = (len(set(lesson_keys) & set(goal_keys)) + len(lesson_keys) - len(set(lesson_keys))
           + len(goal_keys) - len(set(goal_keys)))
    done = [i.text for i in summary.next_week if says_done(_strip_carried(i.text))]
    return Score(case.name, summary.source, len(summary.reflections), len(summary.next_week), cov,
                 [re.sub(r"^number .* not in its sources$", "number not in its sources", str(d.get("reason", "?")))
                  for d in summary.dropped], dup, done, seconds, summary.note)


def _strip_carried(text: str) -> str:
    return text.removeprefix("（延续）").removeprefix("(carried over) ")


def _pct(hit: int, total: int) -> str:
    return "  –  " if not total else f"{100 * hit / total:4.0f}%"


def print_table(scores: list[Score], out: list[str]) -> None:
    head = f"{'report':<48} {'src':<7} {'L':>2} {'G':>2} {'L cov':>6} {'G cov':>6} {'dropped':>7} {'dup':>3} {'done G':>6}"
    out.append(head)
    out.append("-" * len(head))
    for s in scores:
        out.append(f"{s.name:<48} {s.source:<7} {s.lessons:>2} {s.goals:>2} {_pct(*s.cov['reflections']):>6} "
                   f"{_pct(*s.cov['next_week']):>6} {len(s.dropped):>7} {s.dup:>3} {len(s.done_goals):>6}")
    total = {p: (sum(s.cov[p][0] for s in scores), sum(s.cov[p][1] for s in scores)) for p in ("reflections", "next_week")}
    out.append("-" * len(head))
    out.append(f"{'total (' + str(len(scores)) + ' reports)':<48} {'':<7} {sum(s.lessons for s in scores):>2} "
               f"{sum(s.goals for s in scores):>2} {_pct(*total['reflections']):>6} {_pct(*total['next_week']):>6} "
               f"{sum(len(s.dropped) for s in scores):>7} {sum(s.dup for s in scores):>3} "
               f"{sum(len(s.done_goals) for s in scores):>6}")
    reasons = Counter(r for s in scores for r in s.dropped)
    if reasons:
        out.append("dropped because: " + "; ".join(f"{r} ×{n}" for r, n in reasons.most_common()))
    for s in scores:
        if s.note and s.source == "offline" and not s.note.startswith(("规则草稿", "Rule-based draft")):
            out.append(f"{s.name}: {s.note}")
        for text in s.done_goals:
            out.append(f"finished result among the goals of {s.name}: {text}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("reports", nargs="*", type=Path, help="reports with their own closing sections "
                        "(default: bot/demo_data/report-*.md and bot/demo_data/eval/*.md, also under examples/)")
    parser.add_argument("--generated", type=int, default=4, help="generated reports to add (default 4)")
    parser.add_argument("--url", help="an OpenAI-compatible base URL; without it the offline rules are scored")
    parser.add_argument("--model", default="gpt-4o-mini")
    parser.add_argument("--key", default="", help="API key (or set OPENAI_API_KEY)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per report (default 120)")
    args = parser.parse_args(argv)

    data = ROOT / "bot" / "demo_data"
    paths = args.reports or sorted(data.glob("report-*.md")) + sorted((data / "eval").glob("*.md"))
    cases = [load_case(p.resolve()) for p in paths] + [generated(seed) for seed in range(1, args.generated + 1)]

    summarize = summarize_offline
    if args.url:
        import os

        from bot.config import Settings
        from bot.summarize import Summarizer
        from handlers.llm import OpenAIChat

        settings = Settings(openai_api_key=args.key or os.environ.get("OPENAI_API_KEY") or "unused",
                            openai_base_url=args.url, weekly_llm_model=args.model, weekly_llm_timeout=args.timeout)
        summarizer = Summarizer(OpenAIChat(settings), model=args.model, timeout=args.timeout)
        summarize = summarizer.summarize  # type: ignore[assignment]

    scores = []
    for case in cases:
        started = time.perf_counter()
        summary = summarize(case.request)
        scores.append(score(case, summary, time.perf_counter() - started))
    out: list[str] = [f"summarizer: {'LLM ' + args.model + ' at ' + args.url if args.url else 'offline rules'}"]
    print_table(scores, out)
    if args.url:
        out.append(f"time: {sum(s.seconds for s in scores):.1f} s for {len(scores)} reports")
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
