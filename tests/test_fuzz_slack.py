# ruff: noqa: F811  (pytest fixtures imported from test_slack are parameters here)
"""Hypothesis-generated requests into the real Slack edge over HTTP (spec §9): whatever the body — bytes,
broken JSON, signed events and payloads of any shape — the answer is 2xx or 4xx, never 500; nothing is
stored and no traceback reaches the log."""

from __future__ import annotations

import json
import logging
import os
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import sqlite_only
from tests.test_slack import Slack, fake, sign, slack, team_file  # noqa: F401  (fixtures)

pytestmark = sqlite_only
FUZZ = settings(max_examples=int(os.environ.get("WEEKLY_FUZZ_EXAMPLES", "60")), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                           lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids,
                                                                                      max_size=4), max_leaves=12)
EVENT_KEYS = ["type", "subtype", "channel", "channel_type", "user", "text", "ts", "event_ts", "message",
              "previous_message", "bot_id", "deleted_ts"]
events = st.dictionaries(st.sampled_from(EVENT_KEYS), json_values | st.just("im") | st.just("message"), max_size=8)
PAYLOAD_KEYS = ["type", "user", "actions", "view", "trigger_id", "response_url", "team", "container"]
payloads = st.dictionaries(st.sampled_from(PAYLOAD_KEYS),
                           json_values | st.sampled_from(["block_actions", "view_submission"]), max_size=6)


def _clean(slack: Slack, caplog: pytest.LogCaptureFixture, status: int) -> None:
    assert status in (200, 400, 401, 404, 413), status
    assert slack.updates() == []
    assert not any(r.exc_info or "Traceback" in r.getMessage() for r in caplog.records)


@FUZZ
@given(raw=st.binary(max_size=300))
def test_unsigned_bytes_get_401(slack: Slack, caplog: pytest.LogCaptureFixture, raw: bytes) -> None:
    from tests.test_slack import _raw_post

    status = _raw_post(slack.url + "/slack/events", {"Content-Type": "application/json"}, raw)
    _clean(slack, caplog, status)
    assert status == 401


@FUZZ
@given(event=events)
def test_signed_events_of_any_shape_never_500(slack: Slack, caplog: pytest.LogCaptureFixture,
                                              event: dict[str, Any]) -> None:
    caplog.set_level(logging.WARNING)
    event = {**event, "user": event.get("user", "U0NOBODY01")}  # never an owner: nothing may be stored
    if isinstance(event.get("message"), dict):
        event["message"]["user"] = "U0NOBODY01"
    status, _ = slack.post(slack.event_body(event), "application/json")
    _clean(slack, caplog, status)


@FUZZ
@given(payload=payloads)
def test_signed_interactivity_payloads_of_any_shape_never_500(slack: Slack, caplog: pytest.LogCaptureFixture,
                                                             payload: dict[str, Any]) -> None:
    caplog.set_level(logging.WARNING)
    status, _ = slack.post(urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded")
    _clean(slack, caplog, status)


@FUZZ
@given(form=st.dictionaries(st.sampled_from(["command", "text", "user_id", "response_url", "trigger_id"]),
                            st.text(max_size=30), max_size=5))
def test_signed_commands_of_any_shape_never_500(slack: Slack, caplog: pytest.LogCaptureFixture,
                                                form: dict[str, str]) -> None:
    caplog.set_level(logging.WARNING)
    status, _ = slack.post(urlencode(form), "application/x-www-form-urlencoded")
    _clean(slack, caplog, status)
