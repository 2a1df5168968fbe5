"""The HTTP face of `weekly-bot serve`: every configured platform's routes, plus `GET /healthz`.

A platform edge brings its own routes (Slack: `POST /slack/events`, Feishu: `POST /feishu/events`);
adding one is an `if` in `web_edges`. The chat SDKs stay in `handlers/`, imported only when their
platform is configured.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from bot.app import App
from bot.errors import UserError
from bot.notify import Sender

logger = logging.getLogger(__name__)


class WebEdge(Protocol):
    """A chat platform served over HTTP: its routes, and its Sender for the scheduler."""

    platform: str

    @property
    def sender(self) -> Sender: ...

    def routes(self) -> list[BaseRoute]: ...


def web_edges(app: App) -> list[WebEdge]:
    """The platforms whose HTTP credentials are set; a UserError when there is none."""
    s = app.settings
    edges: list[WebEdge] = []
    if s.slack_bot_token or s.slack_signing_secret:
        from handlers.slack import build_slack

        edges.append(build_slack(app))
    if s.feishu_app_id or s.feishu_app_secret:
        from handlers.feishu import build_feishu

        edges.append(build_feishu(app))
    if not edges:
        hint = " (SLACK_APP_TOKEN is set: for Socket Mode run `weekly-bot socket`)" if s.slack_app_token else ""
        raise UserError(f"serve: no platform is configured: set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET{hint}, "
                        "or FEISHU_APP_ID, FEISHU_APP_SECRET, FEISHU_VERIFICATION_TOKEN and FEISHU_ENCRYPT_KEY")
    return edges


def database_ok(app: App) -> bool:
    """True when the database answers `SELECT 1`."""
    try:
        with app.store.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True
    except SQLAlchemyError as e:
        logger.warning("healthz: the database does not answer (%s)", type(e).__name__)
        return False


def create_web_app(app: App, edges: Sequence[WebEdge] = ()) -> Starlette:
    """The ASGI app: `GET /healthz` and each edge's routes."""

    async def healthz(request: Request) -> JSONResponse:
        ok = await run_in_threadpool(database_ok, app)
        return JSONResponse({"status": "ok" if ok else "error", "database": "ok" if ok else "unreachable"},
                            status_code=200 if ok else 503)

    routes: list[BaseRoute] = [Route("/healthz", healthz, methods=["GET"])]
    for edge in edges:
        routes.extend(edge.routes())
    return Starlette(routes=routes)


def run_server(web_app: Starlette, *, port: int, host: str = "0.0.0.0") -> None:
    """Serve until interrupted (uvicorn; several processes may run behind a load balancer)."""
    import uvicorn

    logger.info("serving HTTP on %s:%d", host, port)
    uvicorn.run(web_app, host=host, port=port, log_level="info")
