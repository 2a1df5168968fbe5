"""A PostgreSQL outage under a running `weekly-bot serve` (spec §9): DMs get their 500 fast (Slack sends
them again), /healthz its 503 within a second, the log says so in single lines — no traceback — and
after the outage the redelivered DMs are stored. The outage is a TCP proxy in front of the real server
that the test cuts and restores."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from storage.db import make_engine
from storage.repo import Store

from .conftest import PG_URL
from .test_crash import Serve, _event, _post, serve  # noqa: F401 - the serve fixture

pytestmark = pytest.mark.skipif(not PG_URL, reason="needs PostgreSQL (WEEKLY_TEST_POSTGRES_URL)")


class Proxy:
    """127.0.0.1:port → the PostgreSQL server; `cut()` drops every connection and refuses new ones."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self) -> None:
        if self._listener:
            try:
                self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accept(): close() alone would not
            except OSError:
                pass
            self._listener.close()
            self._listener = None
        with self._lock:
            conns, self._conns = self._conns, []
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
                s.close()
            except OSError:
                pass


@pytest.fixture
def proxied(serve: tuple[Serve, str]) -> Iterator[tuple[Serve, str, Proxy]]:  # noqa: F811
    server, db = serve
    if not db.startswith("postgresql"):
        pytest.skip("the outage is PostgreSQL's")
    url = make_url(db)
    proxy = Proxy((url.host or "127.0.0.1", url.port or 5432))
    proxy.start()
    server.env["DATABASE_URL"] = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    try:
        yield server, db, proxy
    finally:
        proxy.cut()


def _dm(n: int) -> str:
    ts = f"{int(time.time())}.{n:06d}"
    return _event(f"EvOUT{n:04d}", {"type": "message", "channel": "D0ZHANG001", "channel_type": "im",
                                    "user": "U0ZHANG001", "text": f"停机期间的第{n}条", "ts": ts, "event_ts": ts})


def test_a_database_outage_is_a_fast_500_a_fast_503_and_one_line_each(proxied: tuple[Serve, str, Proxy],
                                                                       tmp_path: Path) -> None:
    import urllib.error
    import urllib.request

    server, db, proxy = proxied
    server.start()
    bodies = [_dm(n) for n in range(6)]
    assert _post(server.port, bodies[0], retry=False) == 200
    proxy.cut()
    for body in bodies[1:]:
        started = time.monotonic()
        assert _post(server.port, body, retry=False) == 500
        assert time.monotonic() - started < 3.0
    started = time.monotonic()
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{server.port}/healthz", timeout=5)
        health = 200
    except urllib.error.HTTPError as e:
        health = e.code
    assert (health, time.monotonic() - started < 1.0) == (503, True)
    proxy.start()  # the same port again: the database is back
    for body in bodies[1:]:
        assert _post(server.port, body, retry=True) == 200
    server.stop()
    store = Store(make_engine(db))
    stored = sorted(u.text for c in store.cycles(team_key="clearing") for u in store.updates(cycle_id=c.id))
    assert stored == sorted(f"停机期间的第{n}条" for n in range(6))
    log = "".join(p.read_text(encoding="utf-8", errors="replace") for p in tmp_path.glob("serve-*.log"))
    assert "Traceback" not in log
    assert "storing an event failed" in log  # said, in one line per DM
