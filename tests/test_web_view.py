"""The leads' web view through HTTP (spec §8, issue 14): the real app served by uvicorn on 127.0.0.1, a
lead signing in with the link `/weekly web` gave them, pages and exports read as a browser would."""

from __future__ import annotations

import csv
import hashlib
import http.client
import io
import logging
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from html import unescape
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import yaml
from sqlalchemy import create_engine, text

from bot.wiring import App
from handlers.web import create_web_app
from storage.db import normalize_url
from tests.conftest import EXAMPLES, ROOT, FixedClock, at, console, said
from tests.serving import CurrentApp

PAGES = ["/web/", "/web/cycle/2024-W42", "/web/cycle/2024-W38%26W39", "/web/cycle/2024-W42/report.md",
         "/web/participation", "/web/participation.csv", "/web/search?q=%E4%BA%A4%E6%98%93"]
NAMES = {"wang": "王芳", "li": "李雷", "zhang": "张伟", "chen": "陈静", "liu": "刘洋", "zhao": "赵敏", "sun": "孙浩"}


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: str
    cookies: list[str] = field(default_factory=list)


class Browser:
    """Plain HTTP with one cookie jar and no automatic redirects, so each step can be checked."""

    def __init__(self, base: str) -> None:
        self.host = urlsplit(base).netloc
        self.cookie: str | None = None

    def request(self, method: str, path: str, body: str | None = None, headers: dict[str, str] | None = None,
                ) -> Response:
        conn = http.client.HTTPConnection(self.host, timeout=15)
        sent = dict(headers or {})
        if self.cookie:
            sent["Cookie"] = self.cookie
        conn.request(method, path, body=body.encode() if body is not None else None, headers=sent)
        r = conn.getresponse()
        data = r.read().decode("utf-8")
        cookies = [v for k, v in r.getheaders() if k.lower() == "set-cookie"]
        for c in cookies:
            name_value = c.split(";", 1)[0]
            self.cookie = None if name_value.endswith("=") or "Max-Age=0" in c else name_value
        conn.close()
        return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, data, cookies)

    def get(self, path: str) -> Response:
        return self.request("GET", path)


class Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[tuple[str, str]] = []
        self._href: str | None = None
        self._text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._href, self._text = dict(attrs).get("href"), ""

    def handle_data(self, data: str) -> None:
        if self._href is not None:
            self._text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._href is not None:
            self.hrefs.append((self._text.strip(), self._href))
            self._href = None


def links(html: str) -> dict[str, str]:
    """Link text → href, as a person clicking would choose them."""
    parser = Links()
    parser.feed(html)
    return dict(parser.hrefs)


def visible(html: str) -> str:
    """The page's text as a person reads it: tags stripped, entities decoded."""
    return unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)))


@dataclass
class Web:
    app: App
    clock: FixedClock
    base: str

    def link_for(self, member: str) -> str | None:
        chat, out = console(self.app, member)
        chat.handle("/weekly web")
        lines = "\n".join(said(out))
        found = re.search(r"http://\S+", lines)
        return found.group(0) if found else None

    def signed_in(self, member: str = "wang") -> Browser:
        link = self.link_for(member)
        assert link is not None
        browser = Browser(self.base)
        r = browser.get(_path(link))
        assert (r.status, r.headers["location"]) == (303, "/web/")
        return browser


def _path(link: str) -> str:
    parts = urlsplit(link)
    return f"{parts.path}?{parts.query}"


@pytest.fixture
def web(make_app: Callable[..., App], server: tuple[CurrentApp, str]) -> Iterator[Web]:
    """The example team with history: an imported two-week report, then 2024-W42 just after its deadline
    with answers on time, late, an edit, a skip and someone away; served over real HTTP."""
    clock = FixedClock(at("2024-10-14 10:30"))
    app = make_app(clock)
    service = app.service
    team = service.team("clearing")
    service.import_reports([str(ROOT / "bot" / "demo_data" / "report-2024-W38-W39.md")], team=team)
    chat, out = console(app, "li")
    chat.handle("交易3120笔，成功率99.95%。")
    chat.handle("1")  # 结算通道
    chat.handle("/edit 1 交易3200笔，成功率99.95%。招商银行直连联调完成。")
    chat.member = "zhang"
    chat.handle("对账差错3笔，均已处理。<script>alert(1)</script>")
    chat.member = "chen"
    chat.handle("/weekly away 10-16 10-18")
    chat.member = "zhao"
    chat.handle("/weekly skip")
    clock.now = at("2024-10-17 19:00")  # the deadline (Thu 18:00) has passed
    chat.member = "sun"
    chat.handle("【系统指标】可用性99.99%")
    said(out)
    current, base = server
    current.web = create_web_app(app)
    yield Web(app, clock, base)
    current.web = None


# -- must show 1: without a session nothing is shown; the link works once and expires -------------------
def test_without_a_session_every_page_and_export_says_ask_the_bot(web: Web) -> None:
    browser = Browser(web.base)
    for path in PAGES:
        r = browser.get(path)
        assert r.status == 401, path
        assert "/weekly web" in r.body and "李雷" not in r.body and "交易" not in r.body, path
    browser.cookie = "weekly_session=eyJtIjoid2FuZyJ9.forged"
    assert {browser.get(p).status for p in PAGES} == {401}


def test_the_link_signs_in_once_with_a_safe_cookie(web: Web) -> None:
    link = web.link_for("wang")
    assert link is not None and link.startswith("http://localhost:3000/web/signin?token=")
    browser = Browser(web.base)
    r = browser.get(_path(link))
    assert r.status == 303 and r.headers["location"] == "/web/"
    (cookie,) = r.cookies
    flags = {f.strip().lower() for f in cookie.split(";")[1:]}
    assert {"httponly", "samesite=lax", "path=/web"} <= flags
    assert browser.get("/web/").status == 200
    # the same link again, in another browser: refused, and it opens no session
    again = Browser(web.base).get(_path(link))
    assert again.status == 401 and "只能使用一次" in again.body and not again.cookies
    # only the token's hash is kept, and not after it was used
    token = link.split("token=")[1]
    engine = create_engine(normalize_url(web.app.settings.database_url))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM web_links")).scalar() == 0
        fresh = web.link_for("wang")
        assert fresh is not None
        kept = [row[0] for row in conn.execute(text("SELECT token_hash FROM web_links"))]
    engine.dispose()
    assert kept == [hashlib.sha256(fresh.split("token=")[1].encode()).hexdigest()] and token not in kept


def test_the_link_expires_after_ten_minutes(web: Web) -> None:
    start = web.clock.now
    late = web.link_for("wang")
    in_time = web.link_for("wang")
    assert late and in_time
    web.clock.now = start + timedelta(minutes=9, seconds=59)
    assert Browser(web.base).get(_path(in_time)).status == 303
    web.clock.now = start + timedelta(minutes=10)
    r = Browser(web.base).get(_path(late))
    assert r.status == 401 and "10 分钟内有效" in r.body


def test_a_non_lead_gets_no_link(web: Web) -> None:
    chat, out = console(web.app, "zhang")
    chat.handle("/weekly web")
    assert said(out) == ["  bot → 张伟: 只有周报的负责人可以打开网页视图（/weekly web）。"]
    engine = create_engine(normalize_url(web.app.settings.database_url))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM web_links")).scalar() == 0
    engine.dispose()


def test_a_link_opened_twice_at_once_signs_in_exactly_once(web: Web) -> None:
    link = web.link_for("wang")
    assert link is not None
    statuses: list[int] = []
    go = threading.Barrier(4)

    def open_it() -> None:
        go.wait()
        statuses.append(Browser(web.base).get(_path(link)).status)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(20)
    assert sorted(statuses) == [303, 401, 401, 401]


def test_signing_out_needs_the_pages_form_token(web: Web) -> None:
    browser = web.signed_in()
    home = browser.get("/web/")
    token = re.search(r'name="csrf" value="([0-9a-f]+)"', home.body)
    assert token is not None
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    assert browser.request("POST", "/web/signout", "csrf=0000", form).status == 403
    forged_origin = form | {"Origin": "http://evil.example"}
    assert browser.request("POST", "/web/signout", f"csrf={token.group(1)}", forged_origin).status == 403
    assert browser.get("/web/").status == 200
    out = browser.request("POST", "/web/signout", f"csrf={token.group(1)}", form)
    assert out.status == 200 and "已退出登录" in out.body
    assert browser.cookie is None and browser.get("/web/").status == 401


# -- must show 2: following links from the home page -------------------------------------------------
def test_following_links_reaches_past_reports_the_open_cycle_participation_and_the_csv(web: Web) -> None:
    browser = web.signed_in()
    home = browser.get("/web/")
    assert home.status == 200
    assert home.headers["content-security-policy"].startswith("default-src 'none'; script-src 'self'")
    rows = re.findall(r"<tr class=\"state-(\w+)\">(.*?)</tr>", home.body, re.S)
    table = [(state, re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)) for state, row in rows]
    assert [(s, visible(cells[0]).strip(), visible(cells[5]).strip()) for s, cells in table] == [
        ("open", "2024-W42", "3 / 8"), ("imported", "2024-W38&W39", "7 / 8")]
    assert "合并周期" in visible(table[1][1][1])
    nav = links(home.body)

    past = browser.get(nav["2024-W38&W39"])
    assert past.status == 200
    page = visible(past.body)
    assert "两周处理交易6920笔，金额4870万元（中秋假期三天）。" in page  # the imported report, rendered
    assert "<li>压测要覆盖连接池等资源配置，不只看TPS。（来源：支付网关、生产事件）</li>" in past.body
    assert "导入" in page  # its closing sections' one revision: imported

    open_cycle = browser.get(nav["2024-W42"])
    assert open_cycle.status == 200
    page = visible(open_cycle.body)
    assert "交易3200笔，成功率99.95%。招商银行直连联调完成。" in page  # the current text
    assert "交易3120笔，成功率99.95%。" in page  # and the one before the edit, in the history
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in open_cycle.body and "<script>alert" not in open_cycle.body
    assert re.search(r"系统指标 <span class=\"badge presence-late\">已提交 · 迟交", open_cycle.body)
    assert "3 个版本 提交 2024-10-14 10:30 交易3120笔，成功率99.95%。 选择部分 2024-10-14 10:30 交易3120笔，成功率99.95%。 " \
           "修改 2024-10-14 10:30 交易3200笔" in page
    download = browser.get(links(open_cycle.body)["下载 Markdown"])
    assert download.status == 200 and download.headers["content-disposition"] == \
        'attachment; filename="clearing-2024-W42.md"'
    assert download.body.startswith("# 2024-W42\n") and "    交易3200笔，成功率99.95%。招商银行直连联调完成。" in download.body

    participation = browser.get(nav["提交情况"])
    assert participation.status == 200
    assert '<canvas id="participation-chart"' in participation.body
    assert '<script src="/web/static/chart.umd.min.js"></script>' in participation.body
    members = re.findall(r'<th class="member">(.*?)</th>', participation.body)
    assert members == ["李雷", "张伟", "陈静", "刘洋", "赵敏", "孙浩", "王芳"]  # every owner, in section order
    chart_js = browser.get("/web/static/chart.umd.min.js")
    assert chart_js.status == 200 and "Chart.js v4" in chart_js.body[:200]

    export = browser.get(links(participation.body)["下载 CSV"])
    assert export.status == 200 and export.headers["content-type"] == "text/csv; charset=utf-8"
    got = list(csv.reader(io.StringIO(export.body.removeprefix("\ufeff"))))
    assert got[0] == ["team", "cycle", "weeks", "deadline", "member", "name", "state"]
    w42 = {row[4]: (row[5], row[6]) for row in got[1:] if row[1] == "2024-W42"}
    assert w42 == {"li": ("李雷", "on_time"), "zhang": ("张伟", "on_time"), "chen": ("陈静", "away"),
                   "liu": ("刘洋", "missing"), "zhao": ("赵敏", "skipped"), "sun": ("孙浩", "late"),
                   "wang": ("王芳", "missing")}
    assert {row[6] for row in got[1:] if row[1] == "2024-W38&W39"} == {"imported"}
    assert [row[2:4] for row in got[1:2]] == [["2024-W38 2024-W39", "2024-09-26T18:00:00+08:00"]]
    # each member's rate: one cycle expected (the imported one says nothing of who wrote)
    rates = dict(re.findall(r'<th class="member">(.*?)</th>\s*<td class="num">(\d+%|—)', participation.body))
    assert rates == {"李雷": "100%", "张伟": "100%", "陈静": "—", "刘洋": "0%", "赵敏": "—", "孙浩": "100%",
                     "王芳": "0%"}


def test_search_finds_answers_in_every_cycle(web: Web) -> None:
    browser = web.signed_in()
    r = browser.get("/web/search?q=%E4%BA%A4%E6%98%93")  # 交易
    assert r.status == 200
    cycles = re.findall(r'<td><a href="/web/cycle/[^"]+">([^<]+)</a></td><td>([^<]+)</td>', unescape(r.body))
    assert cycles == [("2024-W42", "结算通道"), ("2024-W38&W39", "风控引擎"), ("2024-W38&W39", "结算通道")]
    # when: an owner's answer when it was written; an imported one is from the report, not from the import's run
    when = re.findall(r'</a></td><td>[^<]+</td>\s*<td>[^<]+</td><td>([^<]+)</td>', unescape(r.body))
    assert when[1:] == ["已导入", "已导入"] and re.fullmatch(r"2024-10-1\d \d\d:\d\d", when[0]), when
    assert "<mark>交易</mark>3200笔" in r.body
    assert "“交易”：3 条结果" in r.body
    assert "“9%5”：0 条结果" in browser.get("/web/search?q=9%255").body  # % is a character, not a wildcard
    assert "“95%”：1 条结果" in browser.get("/web/search?q=95%25").body
    tagged = browser.get("/web/search?q=%3Cscript%3E")
    assert "<mark>&lt;script&gt;</mark>alert(1)" in tagged.body and "<script>alert" not in tagged.body


def test_an_unknown_cycle_is_a_clear_404(web: Web) -> None:
    browser = web.signed_in()
    r = browser.get("/web/cycle/2030-W01")
    assert r.status == 404 and "“2030-W01”不是这个团队已有的周期。" in r.body
    assert browser.get("/web/cycle/nonsense").status == 404
    assert unquote("/web/cycle/2024-W38%26W39") == "/web/cycle/2024-W38&W39"
    assert browser.get("/web/cycle/2024-W39").status == 200  # a week inside a merged cycle names it
    for path in ("/web/nowhere", "/web/cycle/2024-W42/nothing", "/web/search/x"):
        missing = browser.get(path)
        assert missing.status == 404 and "没有这个页面。" in missing.body and "<html" in missing.body, path
    assert browser.get("/web/static/missing.css").status == 404  # a file the view does not have


# -- several teams ---------------------------------------------------------------------------------
@pytest.fixture
def team_file(tmp_path: Path) -> Path:
    """examples/team.yaml plus a second team, in English, led by 李雷 alone."""
    data = yaml.safe_load((EXAMPLES / "team.yaml").read_text(encoding="utf-8"))
    data["teams"].append({
        "key": "ops", "title": "Ops weekly", "language": "en", "leads": ["li", "wang"],
        "schedule": {"weeks": 1, "open": "mon 10:00", "deadline": "thu 18:00", "holidays": "none"},
        "sections": [{"key": "oncall", "title": "On-call", "owners": ["liu"]}],
    })
    data["teams"][0]["leads"] = ["wang"]
    path = tmp_path / "team.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def test_a_lead_sees_only_the_teams_they_lead_each_in_its_language(web: Web) -> None:
    wang = web.signed_in("wang")
    home = wang.get("/web/")
    assert '<option value="clearing" selected>支付清算中心周报</option>' in home.body
    assert '<option value="ops">Ops weekly</option>' in home.body
    ops = wang.get("/web/participation?team=ops")
    assert ops.status == 200 and "Participation" in ops.body and re.findall(
        r'<th class="member">(.*?)</th>', ops.body) == ["刘洋"]
    li = web.signed_in("li")
    assert li.get("/web/?team=clearing").status == 403
    assert li.get("/web/participation.csv?team=clearing").status == 403
    first = li.get("/web/")
    assert first.status == 200 and "Ops weekly" in first.body and "<select" not in first.body


def test_every_process_shares_the_stored_secret_unless_one_is_configured(
        web: Web, make_app: Callable[..., App], server: tuple[CurrentApp, str]) -> None:
    browser = web.signed_in()
    current, _ = server
    current.web = create_web_app(make_app(web.clock))  # another process on the same database
    assert browser.get("/web/participation").status == 200
    current.web = create_web_app(make_app(web.clock, weekly_web_secret="from-the-environment-" + "x" * 20))
    assert browser.get("/web/participation").status == 401  # signed with another secret: not ours
    engine = create_engine(normalize_url(web.app.settings.database_url))
    with engine.connect() as conn:
        assert [r[0] for r in conn.execute(text("SELECT name FROM web_secrets"))] == ["session"]
    engine.dispose()


def test_a_session_lasts_twelve_hours(web: Web) -> None:
    browser = web.signed_in()
    start = web.clock.now
    web.clock.now = start + timedelta(hours=12)
    assert browser.get("/web/").status == 200
    web.clock.now = start + timedelta(hours=12, seconds=1)
    assert browser.get("/web/").status == 401


def test_a_cycles_page_shows_the_leads_edit_and_when_it_was_published(web: Web) -> None:
    chat, out = console(web.app, "wang")
    chat.handle("/weekly edit\n## 收获与反思\n差错当天清零（来源：清分对账）\n# 下周工作及目标\n直连上线（来源：结算通道）")
    chat.handle("3")  # Publish on the preview that follows the edit
    assert said(out)[-1] == "  bot → 王芳: 周报已发布：#C0WEEKLY01。"
    page = visible(web.signed_in().get("/web/cycle/2024-W42").body)
    assert "负责人修改" in page and "王芳" in page and "已发布" in page
    assert "差错当天清零" in page


def test_the_access_log_never_holds_a_sign_in_token() -> None:
    from handlers.web import _NoTokens

    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5", "GET", "/web/signin?token=k8HZPKz4n_wpfiprWx&x=1", "1.1", 303), None)
    assert _NoTokens().filter(record)
    assert record.getMessage() == '127.0.0.1:5 - "GET /web/signin?token=…&x=1 HTTP/1.1" 303'
