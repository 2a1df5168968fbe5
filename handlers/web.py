"""The HTTP face of `weekly-bot serve`: every configured platform's routes, `GET /healthz` and the leads'
web view under `/web/` (handlers/webview).

Each registered platform brings its own routes (Slack: `POST /slack/events`, Feishu:
`POST /feishu/events`); the chat SDKs load only when their platform is configured.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import re
import sys
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from bot.config import Settings
from bot.errors import ConfigError
from bot.platform import Context, WebEdge
from handlers import registry
from handlers.edge import FINISH_S
from handlers.webview import web_routes

logger = logging.getLogger(__name__)
HEALTH_TIMEOUT_S = 0.6  # /healthz answers within a second, whatever the database does (and however busy)


def web_edges(app: Context) -> list[WebEdge]:
    """The platforms whose HTTP credentials are set (none is allowed: `serve` then serves the web view alone)."""
    return [edge for plugin in registry.configured(app.settings) if (edge := plugin.web_edge(app)) is not None]


def no_platform_note(settings: Settings) -> str:
    """What `serve` says when no chat platform is configured: which variables would turn one on."""
    hint = " (SLACK_APP_TOKEN is set: for Socket Mode run `weekly-bot socket`)" if settings.slack_app_token else ""
    return (f"serve: no chat platform is configured, so only /healthz and the web view are served, and nothing "
            f"is sent: set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET{hint}, or FEISHU_APP_ID, FEISHU_APP_SECRET, "
            "FEISHU_VERIFICATION_TOKEN and FEISHU_ENCRYPT_KEY")


def create_web_app(app: Context, edges: Sequence[WebEdge] = ()) -> Starlette:
    """The ASGI app: `GET /healthz` and each edge's routes."""

    health = ThreadPoolExecutor(max_workers=2, thread_name_prefix="healthz")  # never queued behind requests

    async def healthz(request: Request) -> JSONResponse:
        try:
            ok = await asyncio.wait_for(asyncio.get_running_loop().run_in_executor(health, app.service.healthy),
                                        HEALTH_TIMEOUT_S)
        except TimeoutError:
            ok = False
        return JSONResponse({"status": "ok" if ok else "error", "database": "ok" if ok else "unreachable"},
                            status_code=200 if ok else 503)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield
        # stopping (uvicorn has answered the requests in flight): the work after their acks, done
        await asyncio.gather(*(asyncio.to_thread(edge.finish, FINISH_S) for edge in edges))

    # the platforms' endpoints first: the router tries routes in order, and theirs take the load
    routes: list[BaseRoute] = [r for edge in edges for r in edge.routes() if isinstance(r, BaseRoute)]
    routes += [Route("/healthz", healthz, methods=["GET"]), *web_routes(app)]
    return Starlette(routes=routes, lifespan=lifespan)


class _NoTokens(logging.Filter):
    """The access log keeps the path, never a sign-in link's token (`?token=…` becomes `?token=…`)."""

    _TOKEN = re.compile(r"(token=)[^&\s]+")

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(self._TOKEN.sub(r"\1…", a) if isinstance(a, str) else a for a in record.args)
        return True


GC_YOUNG = 10_000  # allocations between collections of the youngest generation (CPython's default: 700)
SWITCH_S = 0.02  # how long a thread may hold the interpreter while another waits (CPython's default: 5 ms)


def tune_for_serving() -> None:
    """Once the app is built, the interpreter set for serving (issue 13, each measured in bench/):

    - What start-up made (modules, SDK clients, the ORM's mappers) is frozen out of the garbage collector's
      reach, and young objects are collected less often: a request makes hundreds of short-lived objects,
      and at the default threshold the collector ran every few requests and now and then rescanned the
      whole heap.
    - Two threads do a request's work: the event loop (HTTP) and the group commit's (Bolt, the database).
      At CPython's 5 ms switch interval the loop took the interpreter away from a group half-way, over and
      over; at 20 ms a group usually finishes first, and the loop still runs whenever the group waits on
      the database."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG, middle, old)
    sys.setswitchinterval(SWITCH_S)


def run_server(web_app: Starlette, *, port: int, host: str = "0.0.0.0") -> None:
    """Serve until interrupted (uvicorn; several processes may run behind a load balancer)."""
    import socket

    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:  # bound here, so a port in use is one clear line rather than uvicorn's error after start-up
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port} ({e.strerror or e})") from None
    logger.info("serving HTTP on %s:%d", host, port)
    config = uvicorn.Config(web_app, host=host, port=port, log_level="info")  # configures uvicorn's loggers
    logging.getLogger("uvicorn.access").addFilter(_NoTokens())
    tune_for_serving()
    uvicorn.Server(config).run(sockets=[sock])
