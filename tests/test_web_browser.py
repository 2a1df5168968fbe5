"""One real browser (issue 14): Debian's chromium, headless, driven by Playwright, signs a lead in through
the link `/weekly web` gave them, opens the participation page, waits for Chart.js to draw and saves a
screenshot to docs/participation.png (the README shows it).

It runs under `make test-browser`, which installs Playwright; Playwright's own browser download is never
used, only the machine's chromium (`apt-get install chromium`). Where either is missing the test is
skipped, saying why."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from bot.wiring import App
from handlers.web import create_web_app
from tests.conftest import ROOT, FixedClock, at, console, said
from tests.serving import running

CHROMIUM = os.environ.get("WEEKLY_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOT = ROOT / "docs" / "participation.png"
# as root in a container, without a GPU, and no calls home: the machine has no network beyond loopback
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-quic"]

# who does what, cycle after cycle (2024-W42 … W50): o on time, l late, s skipped, a away, - nothing
PATTERN = {
    "li":    "ooooloooo",
    "zhang": "oolooooso",
    "chen":  "ooaaooloo",
    "liu":   "o-o-lo-oo",
    "zhao":  "soooo-ooo",
    "sun":   "ollolloll",
    "wang":  "oooooooo-",
}
SECTION_OF = {"li": "结算通道", "zhang": "清分对账", "chen": "风控引擎", "liu": "支付网关", "zhao": "O1 业务服务",
              "sun": "系统指标", "wang": "其他"}


def _history(app: App, clock: FixedClock) -> None:
    """Nine weeks of a department's answers, plus the imported report before them."""
    service = app.service
    team = service.team(None)
    service.import_reports([str(ROOT / "bot" / "demo_data" / "report-2024-W38-W39.md")], team=team)
    first = at("2024-10-14 11:00")  # Monday of 2024-W42, after the 10:00 opening
    n = 0
    for week in range(len(PATTERN["li"])):
        monday = first + timedelta(weeks=week)
        for member, plan in PATTERN.items():
            what = plan[week]
            if what == "a":
                day = (monday + timedelta(days=3)).date()
                service.set_away(member, day, day)
            elif what == "s":
                clock.now = monday
                service.skip(member)
            elif what in "ol":
                clock.now = monday + (timedelta(days=3, hours=8) if what == "l" else timedelta(hours=week % 5))
                n += 1
                service.record(member, f"【{SECTION_OF[member]}】第{week + 1}周进展：完成{3 + n % 7}项。",
                               platform="console", message_id=f"browser-{n}")
    clock.now = first + timedelta(weeks=len(PATTERN["li"]), days=1)  # Tuesday of W51: open, not yet due


def test_a_lead_signs_in_through_the_link_and_sees_the_participation_chart(
        make_app: Callable[..., App]) -> None:
    if not os.environ.get("WEEKLY_TEST_BROWSER"):
        pytest.skip("the real-browser test runs under `make test-browser`")
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="Playwright is not installed here (make test-browser installs it)")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no chromium at {CHROMIUM}: `apt-get install chromium` (Debian) to run the browser test")
    clock = FixedClock(at("2024-10-14 09:00"))
    app = make_app(clock)
    _history(app, clock)
    chat, out = console(app, "wang")
    chat.handle("/weekly web")
    link = next(line.strip() for line in said(out) if "/web/signin?token=" in line)
    with running(create_web_app(app)) as base, sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="zh-CN")
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(link.replace("http://localhost:3000", base))
            assert page.url == f"{base}/web/"  # signed in, sent home, the token gone from the address bar
            assert page.locator("table.cycles tbody tr").count() == 11  # W38&W39 imported, W42 … W51
            page.get_by_role("link", name="提交情况").first.click()
            page.wait_for_url(f"{base}/web/participation?team=clearing")
            page.wait_for_selector('#participation-chart[data-rendered="1"]', timeout=10000)
            drawn = page.evaluate("""() => {
                const c = document.getElementById('participation-chart');
                const chart = window.Chart.getChart(c);
                const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                let inked = 0;
                for (let i = 3; i < px.length; i += 4) { if (px[i] > 0) inked++; }
                return {labels: chart.data.labels, sets: chart.data.datasets.map(d => d.label), inked,
                        w: c.width, h: c.height};
            }""")
            assert drawn["labels"][0] == "2024-W42" and drawn["labels"][-1] == "2024-W51"
            assert drawn["sets"] == ["按时", "迟交", "跳过", "请假", "未提交", "未到截止"]
            assert drawn["inked"] > drawn["w"] * drawn["h"] // 20  # bars, axes and legend were painted
            names = page.locator("th.member").all_inner_texts()
            assert names == ["李雷", "张伟", "陈静", "刘洋", "赵敏", "孙浩", "王芳"]
            assert errors == []  # no script blocked by the page's Content-Security-Policy, no error
            SCREENSHOT.parent.mkdir(exist_ok=True)
            page.screenshot(path=str(SCREENSHOT), full_page=True)
        finally:
            browser.close()
    assert SCREENSHOT.stat().st_size > 20000
