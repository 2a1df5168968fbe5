"""One HTTP server for bench/slack_ack.py, in a process of its own, on a listening socket the bench hands
down (`--fd`): either `weekly-bot serve --no-scheduler` as cli.cmd_serve builds it (our Starlette app and
Bolt, on a fixed clock so a cycle is open), or the floor — a sync Bolt `App` behind Bolt's own Starlette
adapter that only acks. Both run the same uvicorn configuration. Touches `--ready` once it serves."""

from __future__ import annotations

import argparse
import logging
import socket
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import uvicorn  # noqa: E402
from starlette.applications import Starlette  # noqa: E402

from bot.i18n import t  # noqa: E402


def floor_app(secret: str, api_url: str) -> Starlette:
    """What a Bolt app costs with no work of ours: verify, parse, dispatch, ack."""
    from slack_bolt import App
    from slack_bolt.adapter.starlette import SlackRequestHandler
    from slack_sdk import WebClient
    from starlette.requests import Request
    from starlette.routing import Route

    # process_before_response as ours runs: the listener acks inline. (Bolt's default runs it in a thread
    # and polls for the ack every 10 ms on the event loop, a floor no server would want.)
    bolt = App(signing_secret=secret, client=WebClient(token="xoxb-floor", base_url=api_url),
               process_before_response=True)

    @bolt.event("message")
    def on_message(ack: Any) -> None:
        ack()

    help_text = t("zh", "help")  # the same words weekly-bot answers, so both send as much

    @bolt.command("/weekly")
    def on_command(ack: Any) -> None:
        ack(text=help_text)

    handler = SlackRequestHandler(bolt)

    async def endpoint(request: Request) -> Any:
        return await handler.handle(request)

    return Starlette(routes=[Route("/slack/events", endpoint, methods=["POST"])])


def weekly_app(config: str, db: str, secret: str, api_url: str, at: datetime) -> Starlette:
    """`weekly-bot serve --no-scheduler`, as cli.cmd_serve builds it, reading the time from a fixed clock."""
    from bot.cli import _log_info
    from bot.config import Settings
    from bot.wiring import build_app
    from handlers.web import create_web_app, tune_for_serving, web_edges

    _log_info()
    settings = Settings(weekly_config=config, database_url=db, slack_bot_token="xoxb-bench",
                        slack_signing_secret=secret, slack_api_url=api_url)
    app = build_app(settings=settings, clock=lambda: at)
    web = create_web_app(app, web_edges(app))
    tune_for_serving()  # as run_server does before it serves
    return web


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--kind", choices=["floor", "weekly"], required=True)
    p.add_argument("--fd", type=int, required=True)
    p.add_argument("--ready", required=True)
    p.add_argument("--secret", required=True)
    p.add_argument("--api-url", required=True)
    p.add_argument("--config")
    p.add_argument("--db")
    p.add_argument("--at", help="the fixed clock, ISO-8601")
    args = p.parse_args()
    # as `weekly-bot` sets logging up (cli.main)
    logging.basicConfig(level=logging.WARNING, format="weekly-bot: %(message)s")
    logging.getLogger("slack_sdk").setLevel(logging.CRITICAL)
    if args.kind == "floor":
        web = floor_app(args.secret, args.api_url)
    else:
        at = datetime.fromisoformat(args.at).replace(tzinfo=ZoneInfo("Asia/Shanghai"))
        web = weekly_app(args.config, args.db, args.secret, args.api_url, at)
    sock = socket.socket(fileno=args.fd)
    server = uvicorn.Server(uvicorn.Config(web, log_level="info", lifespan="off"))  # as `serve` runs it

    def ready() -> None:
        while not server.started:
            time.sleep(0.01)
        Path(args.ready).touch()

    threading.Thread(target=ready, daemon=True).start()
    server.run(sockets=[sock])


if __name__ == "__main__":
    main()
