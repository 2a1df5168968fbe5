# ruff: noqa: F811  (pytest fixtures imported from test_feishu are parameters here)
"""Hypothesis-generated requests into the real Feishu edge over HTTP (spec §9): encrypted and signed
events and card callbacks of any shape, and unsigned bytes — 2xx or 4xx, never 500; nothing stored;
no traceback in the log."""

from __future__ import annotations

import logging
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import sqlite_only
from tests.test_feishu import Feishu, envelope, fake, feishu, team_file  # noqa: F401  (fixtures)
from tests.test_fuzz_slack import json_values

pytestmark = sqlite_only
FUZZ = settings(max_examples=int(os.environ.get("WEEKLY_FUZZ_EXAMPLES", "50")), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
EVENT_TYPES = ["im.message.receive_v1", "im.message.recalled_v1", "card.action.trigger", "something.else_v1"]
MESSAGE_KEYS = ["message_id", "chat_id", "chat_type", "message_type", "content", "mentions", "create_time"]
events = st.fixed_dictionaries({}, optional={
    "sender": st.dictionaries(st.sampled_from(["sender_id", "sender_type"]), json_values, max_size=2),
    "message": st.dictionaries(st.sampled_from(MESSAGE_KEYS), json_values, max_size=6),
    "operator": json_values, "action": json_values | st.fixed_dictionaries(
        {}, optional={"value": json_values, "form_value": json_values, "tag": json_values}),
    "context": json_values, "message_id": json_values, "chat_id": json_values,
})


def _clean(feishu: Feishu, caplog: pytest.LogCaptureFixture, status: int) -> None:
    assert status in (200, 400, 401, 413), status
    assert feishu.updates() == []
    assert not any(r.exc_info or "Traceback" in r.getMessage() for r in caplog.records)


@FUZZ
@given(kind=st.sampled_from(EVENT_TYPES), event=events, header=st.one_of(st.none(), json_values))
def test_encrypted_signed_events_of_any_shape_never_500(feishu: Feishu, caplog: pytest.LogCaptureFixture, kind: str,
                                                        event: dict[str, Any], header: Any) -> None:
    caplog.set_level(logging.WARNING)
    plain = envelope(kind, event, event_id=feishu.next_id("ev_fz"))
    if header is not None:
        plain["header"] = header if not isinstance(header, dict) else {**plain["header"], **header}
    status, _ = feishu.post(plain)
    _clean(feishu, caplog, status)


@FUZZ
@given(raw=st.binary(max_size=300))
def test_unsigned_bytes_get_4xx(feishu: Feishu, caplog: pytest.LogCaptureFixture, raw: bytes) -> None:
    from tests.test_slack import _raw_post

    status = _raw_post(feishu.url + "/feishu/events", {"Content-Type": "application/json"}, raw)
    _clean(feishu, caplog, status)
    assert status in (400, 401)
