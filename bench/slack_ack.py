"""How fast Slack gets its ack: signed requests into the real server (uvicorn + Bolt) on 127.0.0.1,
Slack's Web API played by the tests' fake. Prints figures; Slack's limit is 3 s."""

from __future__ import annotations

import hashlib
import hmac
import json
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import datetime
from pathlib import Path
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import uvicorn  # noqa: E402

from bot.config import Settings  # noqa: E402
from bot.wiring import build_app  # noqa: E402
from handlers.web import create_web_app, web_edges  # noqa: E402
from tests.fakes.slack_api import FakeSlackApi  # noqa: E402

SECRET = "bench-signing-secret"
N = 60


def signed(body: str) -> dict[str, str]:
    ts = str(int(time.time()))
    digest = hmac.new(SECRET.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


def post(url: str, body: str, content_type: str) -> float:
    req = urllib.request.Request(url, data=body.encode(), method="POST",
                                 headers={"Content-Type": content_type, **signed(body)})
    start = time.perf_counter()
    with urllib.request.urlopen(req, timeout=10) as resp:
        resp.read()
    return (time.perf_counter() - start) * 1000


def fmt(samples: list[float]) -> str:
    samples = sorted(samples)
    return (f"median {statistics.median(samples):7.2f} ms   p95 {samples[int(len(samples) * 0.95)]:7.2f} ms   "
            f"max {samples[-1]:7.2f} ms   (n={len(samples)})")


def main() -> None:
    tmp = Path(tempfile.mkdtemp())
    try:
        shutil.copy(ROOT / "examples" / "team.yaml", tmp / "team.yaml")
        with FakeSlackApi() as fake:
            settings = Settings(weekly_config=str(tmp / "team.yaml"), database_url=f"sqlite:///{tmp}/b.db",
                                slack_bot_token="xoxb-bench", slack_signing_secret=SECRET,
                                slack_api_url=fake.api_url)
            now = datetime(2024, 10, 15, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
            app = build_app(settings=settings, clock=lambda: now)
            web = create_web_app(app, web_edges(app))
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            server = uvicorn.Server(uvicorn.Config(web, log_level="warning", lifespan="off"))
            thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
            thread.start()
            while not server.started:
                time.sleep(0.01)
            url = f"http://127.0.0.1:{sock.getsockname()[1]}/slack/events"
            dms = []
            for i in range(N):
                event = {"type": "message", "channel_type": "im", "channel": "D0ZHANG001", "user": "U0ZHANG001",
                         "text": f"{i + 1}. 对账差错{i}笔，已处理。", "ts": f"1728957600.{i:06d}"}
                body = json.dumps({"type": "event_callback", "team_id": "T0TEAM0001", "event_id": f"EvB{i:06d}",
                                   "event": event})
                dms.append(post(url, body, "application/json"))
            commands = {}
            for sub, user in (("status", "U0WANG0001"), ("summary", "U0WANG0001")):
                samples = []
                for i in range(N // 3):
                    body = urlencode({"command": "/weekly", "text": sub, "user_id": user, "team_id": "T0TEAM0001",
                                      "channel_id": "D0WANG0001", "trigger_id": f"t{i}",
                                      "response_url": fake.response_url(f"r{sub}{i}")})
                    samples.append(post(url, body, "application/x-www-form-urlencoded"))
                commands[sub] = samples
            server.should_exit = True
            thread.join(10)
        print(f"[slack] ack of a DM (stored before the 200):     {fmt(dms)}")
        print(f"[slack] ack of /weekly status:                   {fmt(commands['status'])}")
        print(f"[slack] ack of /weekly summary (report after):  {fmt(commands['summary'])}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
