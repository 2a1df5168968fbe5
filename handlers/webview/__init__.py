"""The web view for leads (spec §8), served by `weekly-bot serve` beside the platforms' routes.

Server-rendered Jinja2 pages over the read use-cases (`bot.history`), a chart drawn by the vendored
Chart.js, no build step. A lead signs in with the single-use link `/weekly web` hands out
(`bot.weblinks`); the session is a signed, HttpOnly, SameSite=Lax cookie. Every page and export needs
it; the only form that changes anything (sign out) carries a token tied to the session.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import logging
import re
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

from itsdangerous import BadSignature, URLSafeSerializer
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markdown_it import MarkdownIt
from markupsafe import Markup, escape
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from bot.config import Team
from bot.errors import UserError, report_error
from bot.history import PRESENCES, History, Participation
from bot.i18n import MESSAGES, Lang, t
from bot.lanes import off_ack_path
from bot.platform import Context
from bot.weblinks import SIGN_IN_PATH, WebSignIn

logger = logging.getLogger(__name__)

HERE = Path(__file__).parent
COOKIE = "weekly_session"
SESSION_HOURS = 12
MAX_FORM_BYTES = 4096
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # the sign-in link's token never travels in a Referer
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
COLORS = {"on_time": "#2e9e5b", "late": "#e8a23a", "skipped": "#9aa4ae", "away": "#4a8fd6", "missing": "#d64545",
          "pending": "#d8dde2", "imported": "#f0f2f4"}
GLYPHS = {"on_time": "●", "late": "◐", "skipped": "–", "away": "✈", "missing": "✗", "pending": "…",
          "imported": "·"}

_md = MarkdownIt("commonmark", {"html": False})  # owners' text is data: raw HTML is shown as text
_env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]),
                   trim_blocks=True, lstrip_blocks=True)


@dataclass(frozen=True)
class Session:
    member: str
    sid: str


class WebView:
    """The pages, bound to one app: its service, settings and the session secret."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.history = History(ctx.service)
        self.signin = WebSignIn(ctx.service)
        self._secret: str | None = None
        self._lock = threading.Lock()
        self.secure = ctx.service.public_url.startswith("https://")

    # -- sessions ------------------------------------------------------------------------------
    def secret(self) -> str:
        with self._lock:
            if self._secret is None:
                self._secret = self.signin.session_secret(self.ctx.settings.weekly_web_secret)
            return self._secret

    def _serializer(self) -> URLSafeSerializer:
        return URLSafeSerializer(self.secret(), salt="weekly-bot web session")

    def session(self, request: Request) -> Session | None:
        """The signed-in lead, when the cookie is ours, younger than SESSION_HOURS and they still lead a team."""
        raw = request.cookies.get(COOKIE)
        if not raw or len(raw) > 1000:
            return None
        try:
            data = self._serializer().loads(raw)
        except BadSignature:
            return None
        if not isinstance(data, dict):
            return None
        member, sid, issued = data.get("m"), data.get("s"), data.get("t")
        if not isinstance(member, str) or not isinstance(sid, str) or not isinstance(issued, int | float):
            return None
        age = self.ctx.service.now().timestamp() - issued
        if not 0 <= age <= SESSION_HOURS * 3600 or not self.signin.led_teams(member):
            return None
        return Session(member, sid)

    def csrf(self, session: Session) -> str:
        return hmac.new(self.secret().encode(), f"csrf:{session.sid}".encode(), hashlib.sha256).hexdigest()[:40]

    # -- responses -----------------------------------------------------------------------------
    def lang_of(self, team: Team | None) -> Lang:
        return self.ctx.service.lang(team) if team else self.ctx.team_file.language

    def page(self, template: str, *, lang: Lang, status: int = 200, session: Session | None = None,
             team: Team | None = None, **values: Any) -> HTMLResponse:
        teams = self.signin.led_teams(session.member) if session else []
        tz = self.ctx.team_file.tz(team) if team else None

        def when(dt: datetime | None) -> str:
            if dt is None:
                return ""
            return (dt.astimezone(tz) if tz else dt).strftime("%Y-%m-%d %H:%M")

        html = _env.get_template(template).render(
            t=lambda key, **kw: t(lang, key, **kw), tr_or=lambda key, other: t(lang, key) if key in MESSAGES else other,
            lang=lang, session=session, team=team, teams=teams,
            csrf=self.csrf(session) if session else "", when=when, q=quote, colors=COLORS, glyphs=GLYPHS,
            presences=PRESENCES, link=lambda path, **kw: _link(path, team, **kw), **values)
        return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)

    def refuse(self, key: str, *, status: int, lang: Lang | None = None, session: Session | None = None) -> HTMLResponse:
        return self.page("message.html", lang=lang or self.lang_of(None), status=status, session=session,
                         message=key)

    def guarded(self, handler: Callable[[Request, Session, Team], Response]) -> Callable[[Request], Response]:
        """A page that needs a session and a team the lead leads (`?team=`, else their first)."""

        def endpoint(request: Request) -> Response:
            try:
                session = self.session(request)
                if session is None:
                    return self.refuse("web_need_link", status=401)
                teams = self.signin.led_teams(session.member)
                key = request.query_params.get("team")
                team = teams[0] if not key else next((x for x in teams if x.key == key), None)
                if team is None:
                    return self.refuse("web_forbidden", status=403, session=session)
                try:
                    return handler(request, session, team)
                except UserError as e:
                    return self.page("message.html", lang=self.lang_of(team), status=404, session=session,
                                     team=team, text=e.render(self.lang_of(team)))
            except Exception as e:
                report_error("web view: a page", e, logger)
                return self.refuse("error", status=500)

        return off_ack_path(endpoint)  # a page waits behind other background work, never an ack (bot.lanes)

    # -- sign-in and out ----------------------------------------------------------------------
    def sign_in(self, request: Request) -> Response:
        try:
            member = self.signin.redeem(request.query_params.get("token", ""))
        except Exception as e:
            report_error("web view: signing in", e, logger)
            return self.refuse("error", status=500)
        if member is None:
            return self.refuse("web_link_bad", status=401)
        payload = {"m": member, "s": secrets.token_urlsafe(16), "t": int(self.ctx.service.now().timestamp())}
        response = RedirectResponse("/web/", status_code=303, headers=SECURITY_HEADERS)
        response.set_cookie(COOKIE, self._serializer().dumps(payload), max_age=SESSION_HOURS * 3600, path="/web",
                            httponly=True, samesite="lax", secure=self.secure)
        logger.info("web view: %s signed in", member)
        return response

    async def sign_out(self, request: Request) -> Response:
        session = await run_in_threadpool(off_ack_path(self.session), request)
        body = await _read_capped(request, MAX_FORM_BYTES)
        form = parse_qs(body.decode("utf-8", "replace")) if body is not None else {}
        if session is None:
            return self.refuse("web_need_link", status=401)
        given = (form.get("csrf") or [""])[0]
        if not _same_origin(request) or not hmac.compare_digest(given, self.csrf(session)):
            return self.refuse("web_bad_form", status=403, session=session)
        response = self.refuse("web_signed_out", status=200)
        response.delete_cookie(COOKIE, path="/web", httponly=True, samesite="lax", secure=self.secure)
        return response

    # -- pages ---------------------------------------------------------------------------------
    def home(self, request: Request, session: Session, team: Team) -> Response:
        return self.page("home.html", lang=self.lang_of(team), session=session, team=team,
                         lines=self.history.cycles(team))

    def cycle(self, request: Request, session: Session, team: Team) -> Response:
        page = self.history.cycle_page(team, request.path_params["label"])
        titles = {s.key: s.title for s in team.sections}
        return self.page("cycle.html", lang=self.lang_of(team), session=session, team=team, page=page,
                         report_html=Markup(_md.render(page.markdown)), titles=titles,
                         names={k: m.name for k, m in self.history.service.team_file.members.items()})

    def report_md(self, request: Request, session: Session, team: Team) -> Response:
        label = self.history.cycle(team, request.path_params["label"]).label
        text = self.history.report_markdown(team, label)
        return _download(text, f"{team.key}-{label.replace('&', '-')}.md", "text/markdown; charset=utf-8")

    def participation(self, request: Request, session: Session, team: Team) -> Response:
        table = self.history.participation(team)
        return self.page("participation.html", lang=self.lang_of(team), session=session, team=team, table=table,
                         chart=_chart(table, self.lang_of(team)))

    def participation_csv(self, request: Request, session: Session, team: Team) -> Response:
        return _download(participation_csv(self.history.participation(team)), f"{team.key}-participation.csv",
                         "text/csv; charset=utf-8")

    def search(self, request: Request, session: Session, team: Team) -> Response:
        query = " ".join(request.query_params.get("q", "").split())[:200]
        hits = self.history.search(team, query) if query else []
        return self.page("search.html", lang=self.lang_of(team), session=session, team=team, query=query,
                         hits=hits, limit=200, mark=lambda text: _marked(text, query))

    def not_found(self, request: Request) -> Response:
        return self.refuse("web_not_found", status=404)


def participation_csv(table: Participation) -> str:
    """One row per member and cycle: team, cycle, weeks, deadline (ISO 8601), member key, name, state. With a
    byte-order mark, so that Excel and WPS read the Chinese names as UTF-8."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["team", "cycle", "weeks", "deadline", "member", "name", "state"])
    for i, cycle in enumerate(table.cycles):
        for member in table.members:
            writer.writerow([table.team.key, cycle.label, " ".join(cycle.week_labels), cycle.deadline.isoformat(),
                             member.key, member.name, member.cells[i]])
    return out.getvalue()


def _chart(table: Participation, lang: Lang) -> dict[str, Any]:
    """Chart.js data: a stacked bar per cycle (imported ones left out: they say nothing of who wrote)."""
    shown = [i for i, c in enumerate(table.cycles) if not c.imported]
    datasets = []
    for presence in ("on_time", "late", "skipped", "away", "missing", "pending"):
        counts = table.per_cycle(presence)  # type: ignore[arg-type]
        data = [counts[i] for i in shown]
        if presence == "pending" and not any(data):
            continue
        datasets.append({"label": t(lang, f"web_{presence}"), "data": data, "color": COLORS[presence]})
    return {"labels": [table.cycles[i].label for i in shown], "datasets": datasets}


def _link(path: str, team: Team | None, **params: str) -> str:
    query = ({"team": team.key} if team else {}) | {k: v for k, v in params.items() if v}
    return f"{path}?{urlencode(query)}" if query else path


def _marked(text: str, query: str, width: int = 400) -> Markup:
    """`text` escaped, around its first match of `query`, with every match in <mark>."""
    if not query:
        return Markup(escape(text[:width]))
    pattern = re.compile(re.escape(query), re.IGNORECASE)
    first = pattern.search(text)
    start = max(0, (first.start() if first else 0) - width // 3)
    piece = text[start:start + width]
    out = Markup("…") if start else Markup("")
    pos = 0
    for m in pattern.finditer(piece):
        out += escape(piece[pos:m.start()]) + Markup("<mark>") + escape(m.group(0)) + Markup("</mark>")
        pos = m.end()
    out += escape(piece[pos:])
    return out + (Markup("…") if start + width < len(text) else Markup(""))


def _download(text: str, filename: str, media_type: str) -> Response:
    safe = re.sub(r"[^A-Za-z0-9._-]", "-", filename)
    headers = SECURITY_HEADERS | {"Content-Disposition": f'attachment; filename="{safe}"'}
    return Response(text.encode("utf-8"), media_type=media_type, headers=headers)


def _same_origin(request: Request) -> bool:
    """A browser's Origin, when it sends one, names this host (a form posted from elsewhere does not)."""
    origin = request.headers.get("origin")
    if not origin:
        return True
    return origin.split("://", 1)[-1].rstrip("/") == request.headers.get("host", "")


async def _read_capped(request: Request, limit: int) -> bytes | None:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return body


def web_routes(ctx: Context) -> list[BaseRoute]:
    """The web view's routes, all under /web (the static files need no session: they are public code)."""
    view = WebView(ctx)
    guarded = view.guarded
    return [
        Route("/web", lambda request: RedirectResponse("/web/", status_code=307), methods=["GET"]),
        Route("/web/", guarded(view.home), methods=["GET"]),
        Route(SIGN_IN_PATH, off_ack_path(view.sign_in), methods=["GET"]),
        Route("/web/signout", view.sign_out, methods=["POST"]),
        Route("/web/cycle/{label}", guarded(view.cycle), methods=["GET"]),
        Route("/web/cycle/{label}/report.md", guarded(view.report_md), methods=["GET"]),
        Route("/web/participation", guarded(view.participation), methods=["GET"]),
        Route("/web/participation.csv", guarded(view.participation_csv), methods=["GET"]),
        Route("/web/search", guarded(view.search), methods=["GET"]),
        Mount("/web/static", app=StaticFiles(directory=HERE / "static"), name="web-static"),
        # anything else under /web: the view's own page in the team's language, not the framework's bare text
        Route("/web/{rest:path}", off_ack_path(view.not_found), methods=["GET", "HEAD", "POST"]),
    ]

