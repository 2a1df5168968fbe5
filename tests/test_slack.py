"""Slack end to end: signed HTTP requests into the real Bolt app served by uvicorn on 127.0.0.1, with
Slack's Web API played by tests/fakes/slack_api.py; assertions on what the fake received and the DB holds."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
import yaml
from slack_bolt import BoltRequest
from sqlalchemy import create_engine
from starlette.applications import Starlette

from bot.chat import Button, ChatBot, Reply
from bot.cli import main
from bot.i18n import t
from bot.notify import SendError
from bot.service import WeeklyService, preview
from bot.wiring import App
from handlers.slack.app import (
    SlackEdge,
    action_of,
    blocks_for,
    build_slack,
    classify,
    from_slack,
    to_slack,
)
from handlers.web import create_web_app
from storage.repo import Store
from tests.conftest import (
    CYCLE,
    EXAMPLES,
    OPEN_CYCLE,
    TEAM_TITLE,
    FixedClock,
    SlowSummarizer,
    at,
    holding_database,
    settle,
    sqlite_only,
)
from tests.fakes.slack_api import BOT_ID, BOT_USER_ID, TEAM_ID, FakeSlackApi
from tests.serving import CurrentApp, http, running, socket_process

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
TOKEN = "xoxb-1234-5678-test"
SLOW_SUMMARY_S = 10.0  # the 10-second summarizer: far past Slack's 3 s ack
MA = "U0MAXX0001"  # in the team file by email only


# Storage-facing tests run on every database conftest offers (PostgreSQL too, when configured); the
# rest, the slow ones among them, on SQLite only, keeping this file well under 30 s either way.


def dm(user: str) -> str:
    return "D" + user[1:]  # the fake's conversations.open names DMs this way too


@pytest.fixture
def team_file(tmp_path: Path) -> Path:
    """examples/team.yaml plus 马丽 (email only: resolved through Slack) and 幽灵 (unreachable)."""
    data = yaml.safe_load((EXAMPLES / "team.yaml").read_text(encoding="utf-8"))
    data["members"]["ma"] = {"name": "马丽", "email": "ma@example.com"}
    data["members"]["ghost"] = {"name": "幽灵"}
    data["members"]["lost"] = {"name": "无踪", "email": "lost@example.com"}
    data["teams"][0]["sections"].append({"key": "ops", "title": "运维", "owners": ["ma"]})
    path = tmp_path / "team.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture
def fake() -> Iterator[FakeSlackApi]:
    with FakeSlackApi(users={"ma@example.com": MA}) as api:
        yield api





def sign(body: str, *, secret: str = SECRET, timestamp: int | None = None) -> dict[str, str]:
    """Slack's v0 request signature, computed here by the book."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}




@dataclass
class Slack:
    """The served app, the fake Web API, and ways to talk to the app as Slack does."""

    app: App
    edge: SlackEdge
    fake: FakeSlackApi
    url: str
    _n: int = 0

    def post(self, body: str, content_type: str, *, headers: dict[str, str] | None = None,
             signed: dict[str, str] | None = None) -> tuple[int, str]:
        all_headers = {"Content-Type": content_type, **(sign(body) if signed is None else signed), **(headers or {})}
        return http("POST", self.url + "/slack/events", body, all_headers)

    def event_body(self, event: dict[str, Any], event_id: str | None = None) -> str:
        self._n += 1
        return json.dumps({
            "token": "legacy", "team_id": TEAM_ID, "api_app_id": "A0APP00001", "type": "event_callback",
            "event_id": event_id or f"Ev{self._n:08d}", "event_time": int(time.time()), "event": event,
        }, ensure_ascii=False)

    def event(self, event: dict[str, Any], *, event_id: str | None = None, retry: int | None = None) -> int:
        headers = {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"} if retry else {}
        status, _ = self.post(self.event_body(event, event_id), "application/json", headers=headers)
        return status

    def say(self, user: str, text: str, *, ts: str | None = None, **extra: Any) -> str:
        """A DM from `user`; returns its ts."""
        self._n += 1
        ts = ts or f"1728957600.{self._n:06d}"
        event = {"type": "message", "channel": dm(user), "channel_type": "im", "user": user, "text": text,
                 "ts": ts, "event_ts": ts, **extra}
        assert self.event(event) == 200
        return ts

    def command(self, user: str, text: str, *, reply_to: str = "cmd") -> tuple[int, dict[str, Any], float]:
        """`/weekly text` from `user`; returns (status, the ack as JSON, seconds until the ack)."""
        body = urlencode({
            "token": "legacy", "team_id": TEAM_ID, "channel_id": dm(user), "channel_name": "directmessage",
            "user_id": user, "user_name": user.lower(), "command": "/weekly", "text": text,
            "api_app_id": "A0APP00001", "response_url": self.fake.response_url(reply_to), "trigger_id": "1.2.3",
        })
        started = time.monotonic()
        status, answer = self.post(body, "application/x-www-form-urlencoded")
        took = time.monotonic() - started
        # Bolt acks a text-only reply as plain text (Slack shows it to the sender only), blocks as JSON
        return status, json.loads(answer) if answer.startswith("{") else {"text": answer}, took

    def press(self, user: str, action_id: str, value: str, *, reply_to: str = "act") -> int:
        payload = {
            "type": "block_actions", "user": {"id": user}, "api_app_id": "A0APP00001", "token": "legacy",
            "team": {"id": TEAM_ID}, "channel": {"id": dm(user), "name": "directmessage"},
            "container": {"type": "message", "message_ts": "1728957600.000001", "channel_id": dm(user)},
            "trigger_id": "1.2.3", "response_url": self.fake.response_url(reply_to),
            "actions": [{"action_id": action_id, "block_id": "b1", "type": "button", "value": value,
                         "action_ts": str(time.time())}],
        }
        status, _ = self.post(urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded")
        return status

    def texts(self, user: str) -> list[str]:
        """What the bot posted in `user`'s DM, in order."""
        return [p["text"] for p in self.fake.posted(dm(user))]

    def updates(self) -> list[Any]:
        cycle = self.app.store.find_cycle(team_key="clearing", label=CYCLE)
        return self.app.store.updates(cycle_id=cycle.id) if cycle else []








@pytest.fixture
def slack(make_app: Callable[..., App], fake: FakeSlackApi, server: tuple[CurrentApp, str]) -> Iterator[Slack]:
    """Each test its own database, fake Web API and Bolt app, served over real HTTP."""
    app = make_app(FixedClock(OPEN_CYCLE), slack_bot_token=TOKEN, slack_signing_secret=SECRET,
                   slack_api_url=fake.api_url)
    edge = build_slack(app)
    current, url = server
    current.web = create_web_app(app, [edge])
    yield Slack(app, edge, fake, url)
    current.web = None
    edge.finish(5.0)  # as serve does on stopping: the replies the acks left, sent while the fake still listens


def recorded(section: str, text: str) -> str:
    return to_slack(t("zh", "recorded", section=section, cycle=CYCLE, preview=preview(text)))


# -- the signature check -------------------------------------------------------------------------
@sqlite_only
def test_url_verification_answers_the_challenge(slack: Slack) -> None:
    body = json.dumps({"token": "legacy", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
                       "type": "url_verification"})
    status, answer = slack.post(body, "application/json")
    assert (status, json.loads(answer)) == (200, {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"})


@sqlite_only
@pytest.mark.parametrize("signed", [
    pytest.param(lambda body: sign(body, secret="not-the-secret"), id="bad-signature"),
    pytest.param(lambda body: sign(body, timestamp=int(time.time()) - 600), id="10-minutes-old"),
    pytest.param(lambda body: {}, id="unsigned"),
])
def test_a_request_failing_the_signature_check_gets_401_changes_nothing_and_is_not_logged(
    slack: Slack, signed: Callable[[str], dict[str, str]], caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    event = {"type": "message", "channel": dm("U0ZHANG001"), "channel_type": "im", "user": "U0ZHANG001",
             "text": "secret-marker 对账差错3笔", "ts": "1728957600.000100"}
    body = slack.event_body(event)
    status, _ = slack.post(body, "application/json", signed=signed(body))
    settle()
    assert status == 401
    assert slack.updates() == []
    assert slack.fake.calls("chat.postMessage") == []
    assert "secret-marker" not in caplog.text
    assert "refused a request with a bad or expired signature" in caplog.text


# -- DMs -----------------------------------------------------------------------------------------
def test_a_dm_becomes_the_owners_update_and_is_confirmed(slack: Slack) -> None:
    text = "对账差错下降至3笔，均已处理。"
    ts = slack.say("U0ZHANG001", text)
    # stored before the ack: the 200 above came after it
    status = slack.app.service.status(slack.app.service.team("clearing"))
    assert {s.key: s.state for s in status.sections}["reconciliation"] == "submitted"
    [update] = slack.updates()
    assert (update.member_key, update.section_key, update.text, update.message_id) == (
        "zhang", "reconciliation", text, f"{dm('U0ZHANG001')}:{ts}")
    slack.fake.wait_for("chat.postMessage")
    assert slack.texts("U0ZHANG001") == [recorded("清分对账", text)]


def test_a_retry_or_the_same_message_under_a_new_event_id_is_stored_once(slack: Slack) -> None:
    event = {"type": "message", "channel": dm("U0ZHANG001"), "channel_type": "im", "user": "U0ZHANG001",
             "text": "对账差错3笔", "ts": "1728957600.000200"}
    assert slack.event(event, event_id="Ev0RETRY01") == 200
    assert slack.event(event, event_id="Ev0RETRY01", retry=1) == 200
    assert slack.event(event, event_id="Ev0RETRY02") == 200  # Slack sent the same message again
    slack.fake.wait_for("chat.postMessage")
    settle()
    assert [u.text for u in slack.updates()] == ["对账差错3笔"]
    assert slack.texts("U0ZHANG001") == [recorded("清分对账", "对账差错3笔")]


@sqlite_only
def test_several_dms_add_up(slack: Slack) -> None:
    slack.say("U0ZHANG001", "对账差错3笔")
    slack.say("U0ZHANG001", "处理时效提升到T+0")
    assert [u.text for u in slack.updates()] == ["对账差错3笔", "处理时效提升到T+0"]


def test_an_edit_replaces_the_text_and_the_revisions_keep_the_old_one(slack: Slack) -> None:
    ts = slack.say("U0ZHANG001", "对账差错3笔")
    slack.fake.wait_for("chat.postMessage")
    edited = {"type": "message", "subtype": "message_changed", "hidden": True, "channel": dm("U0ZHANG001"),
              "channel_type": "im", "ts": "1728957700.000001",
              "message": {"type": "message", "user": "U0ZHANG001", "text": "对账差错2笔", "ts": ts,
                          "edited": {"user": "U0ZHANG001", "ts": "1728957700.000000"}},
              "previous_message": {"type": "message", "user": "U0ZHANG001", "text": "对账差错3笔", "ts": ts}}
    assert slack.event(edited) == 200
    [update] = slack.updates()
    assert update.text == "对账差错2笔"
    revisions = slack.app.store.revisions(update_id=update.id)
    assert [(r.action, r.text) for r in revisions] == [("create", "对账差错3笔"), ("edit", "对账差错2笔")]
    slack.fake.wait_for("chat.postMessage", count=2)
    assert slack.texts("U0ZHANG001")[1] == to_slack(t("zh", "edited", section="清分对账", preview="对账差错2笔"))


def test_a_deleted_message_is_removed(slack: Slack) -> None:
    ts = slack.say("U0ZHANG001", "对账差错3笔")
    deleted = {"type": "message", "subtype": "message_deleted", "hidden": True, "channel": dm("U0ZHANG001"),
               "channel_type": "im", "ts": "1728957800.000001", "deleted_ts": ts,
               "previous_message": {"type": "message", "user": "U0ZHANG001", "text": "对账差错3笔", "ts": ts}}
    assert slack.event(deleted) == 200
    assert slack.updates() == []
    status = slack.app.service.status(slack.app.service.team("clearing"))
    assert {s.key: s.state for s in status.sections}["reconciliation"] == "missing"
    slack.fake.wait_for("chat.postMessage", count=2)
    assert slack.texts("U0ZHANG001")[1] == to_slack(t("zh", "deleted", section="清分对账"))


@sqlite_only
def test_bot_messages_ours_and_others_and_unfurls_are_ignored(slack: Slack) -> None:
    channel = dm("U0ZHANG001")
    slack.event({"type": "message", "subtype": "bot_message", "bot_id": "B0OTHER001", "channel": channel,
                 "channel_type": "im", "text": "I am another bot", "ts": "1728957600.000301"})
    slack.event({"type": "message", "user": BOT_USER_ID, "bot_id": BOT_ID, "channel": channel,
                 "channel_type": "im", "text": "已记录到【清分对账】", "ts": "1728957600.000302"})
    slack.event({"type": "message", "user": "U0OTHERBOT", "bot_id": "B0OTHER002", "app_id": "A0OTHER",
                 "channel": channel, "channel_type": "im", "text": "app as a user", "ts": "1728957600.000303"})
    ts = slack.say("U0ZHANG001", "见 https://example.com/report")
    slack.fake.wait_for("chat.postMessage")
    unfurl = {"type": "message", "subtype": "message_changed", "hidden": True, "channel": channel,
              "channel_type": "im", "ts": "1728957600.000399",
              "message": {"user": "U0ZHANG001", "text": "见 https://example.com/report", "ts": ts,
                          "attachments": [{"title": "Report"}]},
              "previous_message": {"user": "U0ZHANG001", "text": "见 https://example.com/report", "ts": ts}}
    slack.event(unfurl)
    settle()
    assert [u.text for u in slack.updates()] == ["见 https://example.com/report"]
    assert len(slack.fake.posted()) == 1
    [update] = slack.updates()
    assert [r.action for r in slack.app.store.revisions(update_id=update.id)] == ["create"]


@sqlite_only
@pytest.mark.parametrize("extra", [
    pytest.param({"text": "   "}, id="blank"),
    pytest.param({"text": "", "subtype": "file_share", "files": [{"id": "F0IMAGE001", "name": "chart.png"}]},
                 id="file-only"),
])
def test_blank_and_file_only_messages_get_a_polite_word(slack: Slack, extra: dict[str, Any]) -> None:
    slack.say("U0ZHANG001", **{"text": "", **extra})
    slack.fake.wait_for("chat.postMessage")
    assert slack.updates() == []
    assert slack.texts("U0ZHANG001") == [to_slack(t("zh", "empty"))]


@sqlite_only
def test_an_unknown_person_is_told_so(slack: Slack) -> None:
    slack.say("U0NOBODY01", "hello")
    slack.fake.wait_for("chat.postMessage")
    assert slack.updates() == []
    assert slack.texts("U0NOBODY01") == [to_slack(t("zh", "unknown_member"))]


def test_a_member_known_only_by_email_is_matched_once_and_cached(slack: Slack) -> None:
    slack.say(MA, "巡检正常")
    slack.say(MA, "扩容完成")
    slack.fake.wait_for("chat.postMessage", count=2)
    assert [(u.member_key, u.section_key) for u in slack.updates()] == [("ma", "ops"), ("ma", "ops")]
    assert slack.app.store.member_platform_ids(platform="slack")["ma"] == MA
    assert len(slack.fake.calls("users.info")) == 1


@sqlite_only
def test_a_failed_lookup_answers_500_at_once_and_slacks_retry_stores_the_answer(slack: Slack) -> None:
    slack.fake.fail("users.info", status=429, headers={"Retry-After": "30"})  # never waited out before the ack
    event = {"type": "message", "channel": dm(MA), "channel_type": "im", "user": MA, "text": "巡检正常",
             "ts": "1728957600.424242"}
    started = time.monotonic()
    assert slack.event(event, event_id="Ev0FAILED1") == 500  # not stored: Slack must deliver it again
    assert time.monotonic() - started < 1.5
    assert slack.updates() == []
    assert slack.fake.calls("chat.postMessage") == []
    assert slack.event(event, event_id="Ev0FAILED1", retry=1) == 200  # Slack's retry, a minute later
    assert [(u.member_key, u.text) for u in slack.updates()] == [("ma", "巡检正常")]
    assert slack.event(event, event_id="Ev0FAILED1", retry=2) == 200  # one retry too many: nothing doubles
    assert len(slack.updates()) == 1
    [confirmation] = slack.fake.wait_for("chat.postMessage")
    assert confirmation.params["text"] == recorded("运维", "巡检正常")
    settle()
    assert len(slack.fake.calls("chat.postMessage")) == 1


def test_a_late_retry_of_an_edit_does_not_undo_what_came_after(slack: Slack) -> None:
    ts = slack.say("U0ZHANG001", "v1 对账差错3笔")
    changed = {"type": "message", "subtype": "message_changed", "channel": dm("U0ZHANG001"), "channel_type": "im",
               "message": {"type": "message", "user": "U0ZHANG001", "text": "v2 对账差错2笔", "ts": ts},
               "previous_message": {"type": "message", "user": "U0ZHANG001", "text": "v1 对账差错3笔", "ts": ts}}
    deleted = {"type": "message", "subtype": "message_deleted", "channel": dm("U0ZHANG001"), "channel_type": "im",
               "deleted_ts": ts, "previous_message": changed["message"]}
    assert slack.event(changed, event_id="Ev0EDIT0001") == 200
    assert slack.event(deleted, event_id="Ev0DELETE01") == 200
    assert slack.event(changed, event_id="Ev0EDIT0001", retry=1) == 200  # Slack retries the edit late
    assert slack.updates() == []  # still deleted
    stored = slack.app.store.update_by_message(platform="slack", message_id=f"{dm('U0ZHANG001')}:{ts}")
    assert stored is not None and stored.deleted
    assert [r.action for r in slack.app.store.revisions(update_id=stored.id)] == ["create", "edit", "delete"]


def test_an_edited_command_is_not_stored_as_an_update(slack: Slack) -> None:
    ts = slack.say("U0ZHANG001", "/weekly show")
    changed = {"type": "message", "subtype": "message_changed", "channel": dm("U0ZHANG001"), "channel_type": "im",
               "message": {"type": "message", "user": "U0ZHANG001", "text": "/weekly help", "ts": ts},
               "previous_message": {"type": "message", "user": "U0ZHANG001", "text": "/weekly show", "ts": ts}}
    assert slack.event(changed) == 200
    assert slack.updates() == []


# -- several sections: buttons -------------------------------------------------------------------
def test_an_owner_of_two_sections_gets_buttons_and_pressing_one_assigns(slack: Slack) -> None:
    slack.say("U0LILEI001", "招商银行直连联调完成")
    [call] = slack.fake.wait_for("chat.postMessage")
    [update] = slack.updates()
    assert update.section_key is None
    blocks = call.params["blocks"]
    assert blocks[0]["text"]["text"] == to_slack(t("zh", "choose_section"))
    buttons = [(e["text"]["text"], e["action_id"], e["value"]) for e in blocks[-1]["elements"]]
    assert buttons == [("结算通道", "weekly_assign", f"{update.id}:settlement"),
                       ("O1 业务服务", "weekly_assign.2", f"{update.id}:o1_business")]

    assert slack.press("U0LILEI001", "weekly_assign.2", f"{update.id}:o1_business") == 200
    [answer] = slack.fake.wait_for("respond")
    assert slack.updates()[0].section_key == "o1_business"
    assert answer.params["replace_original"] is True
    assert answer.params["text"] == recorded("O1 业务服务", "招商银行直连联调完成")


def preview_buttons(slack: Slack) -> dict[str, str]:
    """The lead's `/weekly summary` preview: its buttons' action ids and values."""
    slack.command("U0WANG0001", "summary", reply_to="summary")
    [answer] = slack.fake.wait_for("respond")
    slack.fake.wait_for("files.completeUploadExternal")
    slack.fake.clear()
    return {e["action_id"]: e["value"] for e in answer.params["blocks"][-1]["elements"]}


def test_publish_posts_the_report_to_the_publish_channel(slack: Slack) -> None:
    slack.say("U0ZHANG001", "对账差错3笔")
    buttons = preview_buttons(slack)
    assert list(buttons) == ["weekly_edit", "weekly_regenerate", "weekly_publish"]
    assert slack.press("U0WANG0001", "weekly_publish", buttons["weekly_publish"]) == 200
    [answer] = slack.fake.wait_for("respond")
    assert answer.params["text"] == to_slack(t("zh", "published", targets="#C0WEEKLY01"))
    [upload] = slack.fake.uploads()
    assert (upload.channel, upload.filename, upload.initial_comment) == (
        "C0WEEKLY01", f"clearing-{CYCLE}.md", f"{TEAM_TITLE} {CYCLE}")
    assert upload.content.startswith(f"# {CYCLE}\n")
    assert "对账差错3笔" in upload.content


@sqlite_only
def test_only_a_lead_may_publish(slack: Slack) -> None:
    buttons = preview_buttons(slack)
    assert slack.press("U0ZHANG001", "weekly_publish", buttons["weekly_publish"]) == 200
    [answer] = slack.fake.wait_for("respond")
    assert answer.params["text"] == to_slack(t("zh", "not_lead", team=TEAM_TITLE, cmd="publish"))
    assert slack.fake.uploads() == []


# -- /weekly -------------------------------------------------------------------------------------
@sqlite_only
def test_a_non_lead_asking_for_the_summary_gets_a_clear_no(slack: Slack) -> None:
    status, ack, _ = slack.command("U0ZHANG001", "summary")
    settle()
    assert (status, ack["text"]) == (200, to_slack(t("zh", "not_lead", team=TEAM_TITLE, cmd="summary")))
    assert slack.fake.calls("respond") == [] and slack.fake.uploads() == []


@sqlite_only
def test_a_leads_summary_is_acked_at_once_and_the_report_arrives_after_the_slow_summarizer(slack: Slack) -> None:
    slack.say("U0ZHANG001", "对账差错下降至3笔，均已处理。")
    slow = SlowSummarizer(SLOW_SUMMARY_S)
    slack.app.service.summarizer = slow
    sent = time.monotonic()
    status, ack, took = slack.command("U0WANG0001", "summary", reply_to="summary")
    assert status == 200 and took < 1.5 < 3.0 < SLOW_SUMMARY_S
    assert ack == {"text": to_slack(t("zh", "summary_wait", cycle=CYCLE))}

    [answer] = slack.fake.wait_for("respond", timeout=SLOW_SUMMARY_S + 10)
    assert len(slow.started) == 1 and slow.started[0] >= sent
    assert answer.at - sent >= SLOW_SUMMARY_S
    slack.app.service.summarizer = None  # the same report again, offline and at once
    expected = ChatBot(slack.app.service).report_replies(slack.app.service.report(slack.app.service.team("clearing")))
    assert answer.params["text"] == to_slack(expected[0].text)
    assert answer.params["text"].startswith(f"{TEAM_TITLE} {CYCLE} 周报预览。")
    edit, regenerate, publish = answer.params["blocks"][-1]["elements"]
    assert (edit["action_id"], edit["value"]) == ("weekly_edit", f"clearing:{CYCLE}")
    assert (publish["action_id"], publish["value"]) == ("weekly_publish", expected[0].buttons[2].value)
    slack.fake.wait_for("files.completeUploadExternal")
    [file] = slack.fake.uploads()
    assert expected[0].file is not None
    assert (file.channel, file.filename, file.content) == (dm("U0WANG0001"), f"clearing-{CYCLE}.md", expected[0].file[1])


@sqlite_only
def test_status_names_the_owners_still_missing(slack: Slack) -> None:
    slack.say("U0ZHANG001", "对账差错3笔")
    status, ack, took = slack.command("U0WANG0001", "status")
    assert status == 200 and took < 3
    lines = ack["text"].split("\n")
    assert lines[0] == f"{TEAM_TITLE} {CYCLE}  开始 10-14 10:00  截止 10-17 18:00"
    assert "✅ 清分对账 — 张伟 (已提交)" in lines
    assert lines[-1] == "仍未提交：李雷、陈静、刘洋、赵敏、孙浩、王芳、马丽"


@sqlite_only
def test_remind_dms_each_missing_owner_and_tells_the_lead(slack: Slack) -> None:
    for owner in ("li", "chen", "liu", "zhao", "sun", "ma"):
        slack.app.service.skip(owner)
    status, ack, _ = slack.command("U0WANG0001", "remind")
    assert status == 200
    assert ack["text"] == to_slack(t("zh", "reminded", n=2, names="张伟、王芳"))
    slack.fake.wait_for("chat.postMessage", count=2)
    assert {p["channel"] for p in slack.fake.posted()} == {"U0ZHANG001", "U0WANG0001"}  # to the user: their DM


@sqlite_only
def test_show_gives_the_draft_and_skip_skips(slack: Slack) -> None:
    slack.say("U0ZHANG001", "对账差错3笔")
    _, ack, _ = slack.command("U0ZHANG001", "show")
    assert ack["text"] == to_slack(t("zh", "draft_head", cycle=CYCLE) + "\n【清分对账】\n对账差错3笔")
    _, ack, _ = slack.command("U0CHEN0001", "skip")
    assert ack["text"] == to_slack(t("zh", "skipped", cycle=CYCLE, sections="风控引擎"))
    status = slack.app.service.status(slack.app.service.team("clearing"))
    assert {s.key: s.state for s in status.sections}["risk"] == "skipped"


@sqlite_only
def test_unknown_words_get_help(slack: Slack) -> None:
    _, ack, _ = slack.command("U0ZHANG001", "dance")
    assert ack["text"] == to_slack(t("zh", "unknown_command", word="dance") + t("zh", "help"))


@sqlite_only
def test_a_command_whose_words_say_payload_is_still_a_command(slack: Slack) -> None:
    """Bolt reads any form body containing "payload" as an interactive payload; a slash command saying it
    (an update about a payment payload, say) came to Bolt empty and was answered with an empty 200."""
    status, ack, _ = slack.command("U0ZHANG001", "payload")
    assert (status, ack["text"]) == (200, to_slack(t("zh", "unknown_command", word="payload") + t("zh", "help")))


# -- the Web API failing ---------------------------------------------------------------------------
@sqlite_only
def test_a_429_with_retry_after_is_retried_and_the_message_delivered(slack: Slack) -> None:
    slack.fake.fail("chat.postMessage", status=429, headers={"Retry-After": "1"})
    slack.say("U0ZHANG001", "对账差错3笔")
    limited, delivered = slack.fake.wait_for("chat.postMessage", count=2, timeout=10)
    assert (limited.status, delivered.status) == (429, 200)
    assert delivered.at - limited.at >= 1.0
    assert delivered.params["text"] == recorded("清分对账", "对账差错3笔")


@sqlite_only
def test_the_sender_dms_members_by_id_or_email_and_raises_send_error(slack: Slack) -> None:
    sender = slack.edge.sender
    assert sender.platform == "slack"
    assert (sender.can_reach("wang"), sender.can_reach("ma"), sender.can_reach("ghost")) == (True, True, False)
    sender.send("ma", Reply("提醒：周报将在 10-17 18:00 截止"))
    sender.send("ma", Reply("再次提醒"))
    assert [c.params["email"] for c in slack.fake.calls("users.lookupByEmail")] == ["ma@example.com"]
    assert [p["text"] for p in slack.fake.posted(dm(MA))] == ["提醒：周报将在 10-17 18:00 截止", "再次提醒"]
    with pytest.raises(SendError):
        sender.send("lost", Reply("hi"))  # an email Slack does not know
    with pytest.raises(SendError):
        sender.send("ghost", Reply("hi"))
    slack.fake.fail("chat.postMessage", status=500)
    with pytest.raises(SendError):
        sender.send("wang", Reply("hi"))


@sqlite_only
def test_the_scheduler_prompts_owners_through_slack(slack: Slack) -> None:
    from bot.tick import tick
    from bot.wiring import build_senders

    senders = build_senders(slack.app)
    assert [s.platform for s in senders] == ["slack"]
    sent = tick(slack.app.service, senders, at("2024-10-14 10:00"))
    assert {(s.due.kind, s.due.member, s.ok) for s in sent} == {
        ("prompt", m, True) for m in ("li", "zhang", "chen", "liu", "zhao", "sun", "wang", "ma")}
    channels = {p["channel"] for p in slack.fake.posted()}  # posted to the user ids: no conversations.open
    assert channels == {"U0LILEI001", "U0ZHANG001", "U0CHEN0001", "U0LIUY0001", "U0ZHAO0001", "U0SUNH0001",
                        "U0WANG0001", MA}
    assert slack.fake.calls("conversations.open") == []
    assert [c.params["email"] for c in slack.fake.calls("users.lookupByEmail")] == ["ma@example.com"]


# -- serving -------------------------------------------------------------------------------------
def test_healthz_checks_the_database(slack: Slack) -> None:
    assert http("GET", slack.url + "/healthz") == (200, '{"status":"ok","database":"ok"}')
    unreachable = Store(create_engine("sqlite:////nonexistent-dir/weekly.db"))
    broken = replace(slack.app, store=unreachable, service=WeeklyService(slack.app.team_file, unreachable))
    with running(create_web_app(broken)) as url:
        assert http("GET", url + "/healthz") == (503, '{"status":"error","database":"unreachable"}')


@sqlite_only
def test_socket_mode_runs_the_same_app_without_signatures(make_app: Callable[..., App], fake: FakeSlackApi) -> None:
    app = make_app(FixedClock(OPEN_CYCLE), slack_bot_token=TOKEN, slack_app_token="xapp-1-A0APP-1-abc",
                   slack_api_url=fake.api_url)
    edge = build_slack(app, socket_mode=True)
    event = {"type": "message", "channel": dm("U0ZHANG001"), "channel_type": "im", "user": "U0ZHANG001",
             "text": "对账差错3笔", "ts": "1728957600.000500"}
    body = {"token": "legacy", "team_id": TEAM_ID, "type": "event_callback", "event_id": "Ev0SOCKET1", "event": event}
    response = edge.bolt.dispatch(BoltRequest(body=body, mode="socket_mode"))
    assert response.status == 200
    assert fake.wait_for("chat.postMessage")[0].params["text"] == recorded("清分对账", "对账差错3笔")
    command = {"command": "/weekly", "text": "help", "user_id": "U0ZHANG001", "team_id": TEAM_ID,
               "channel_id": dm("U0ZHANG001"), "trigger_id": "t1", "response_url": fake.response_url("r1")}
    response = edge.bolt.dispatch(BoltRequest(body=command, mode="socket_mode"))
    assert (response.status, response.body) == (200, to_slack(t("zh", "help")))  # Bolt acks text alone as text


def test_socket_mode_stopped_by_sigterm_sends_the_replies_its_acks_left_first(
        team_file: Path, prepared_db: str, fake: FakeSlackApi, tmp_path: Path) -> None:
    """A real `weekly-bot socket` on Slack's Socket Mode (the fake's WebSocket): a DM acked over the socket
    whose confirmation Slack holds back (429, Retry-After: 2) is still posted, once, when SIGTERM stops it."""
    from tests.fakes.slack_socket import FakeSocketMode

    with FakeSocketMode() as socket_mode:
        fake.socket_url = socket_mode.url
        fake.fail("chat.postMessage", status=429, headers={"Retry-After": "2"})
        env = {"WEEKLY_CONFIG": str(team_file), "DATABASE_URL": prepared_db, "SLACK_BOT_TOKEN": TOKEN,
               "SLACK_APP_TOKEN": "xapp-1-A0APP-1-abc", "SLACK_API_URL": fake.api_url}
        with socket_process(env, tmp_path) as socket:
            assert socket_mode.connected.wait(30), socket.log.read_text()
            ts = f"{int(time.time())}.000100"
            event = {"type": "message", "channel": dm("U0ZHANG001"), "channel_type": "im", "user": "U0ZHANG001",
                     "text": "对账差错3笔", "ts": ts, "event_ts": ts}
            socket_mode.wait_ack(socket_mode.send_event({"token": "legacy", "team_id": TEAM_ID,
                                                         "api_app_id": "A0APP00001", "type": "event_callback",
                                                         "event_id": "Ev0SOCKSTOP", "event": event}))
            [held_back] = fake.wait_for("chat.postMessage", timeout=10)
            assert held_back.status == 429
            took = socket.stop()
    posted = fake.posted(dm("U0ZHANG001"))
    assert len(posted) == 1 and 1.0 < took < 20, (posted, took)  # once, after the 2 s Slack asked for
    socket.clean_log()


def test_serve_wires_slack_from_the_environment_and_no_scheduler_starts_none(
    team_file: Path, prepared_db: str, fake: FakeSlackApi, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import handlers.clock
    import handlers.web

    for name in ("weekly-bot", "bot", "handlers", "storage"):  # serve raises these to INFO; put them back after
        caplog.set_level(logging.INFO, logger=name)
    monkeypatch.delenv("PORT", raising=False)
    for name, value in {"SLACK_BOT_TOKEN": TOKEN, "SLACK_SIGNING_SECRET": SECRET, "SLACK_API_URL": fake.api_url}.items():
        monkeypatch.setenv(name, value)
    clocks: list[list[str]] = []
    stopped: list[bool] = []

    def fake_clock(app: App, senders: list[Any]) -> Callable[[], None]:
        clocks.append([s.platform for s in senders])
        return lambda: stopped.append(True)

    served: list[tuple[int, int]] = []

    def serve_briefly(web: Starlette, *, port: int, host: str = "0.0.0.0") -> None:
        with running(web) as url:
            health, _ = http("GET", url + "/healthz")
            body = json.dumps({"token": "legacy", "challenge": "c1", "type": "url_verification"})
            events, _ = http("POST", url + "/slack/events", body, {"Content-Type": "application/json", **sign(body)})
        served.append((port, health * 1000 + events))

    monkeypatch.setattr(handlers.clock, "start_background_clock", fake_clock)
    monkeypatch.setattr(handlers.web, "run_server", serve_briefly)
    args = ["--config", str(team_file), "--db", prepared_db]

    assert main(["serve", *args, "--port", "3999", "--no-scheduler"]) == 0
    assert (served, clocks) == ([(3999, 200200)], [])
    assert "scheduler off (--no-scheduler)" in caplog.text

    assert main(["serve", *args]) == 0
    assert (served[-1], clocks, stopped) == ((3000, 200200), [["slack"]], [True])
    assert "scheduler on" in caplog.text


@sqlite_only
def test_serve_without_a_platform_serves_the_web_view_alone_and_socket_says_what_is_missing(
    team_file: Path, prepared_db: str, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import handlers.clock
    import handlers.web

    for name in ("weekly-bot", "bot", "handlers", "storage"):  # serve raises these to INFO; put them back after
        caplog.set_level(logging.INFO, logger=name)
    served: list[tuple[int, int, int, int]] = []
    clocks: list[list[str]] = []

    def serve_briefly(web: Starlette, *, port: int, host: str = "0.0.0.0") -> None:
        with running(web) as url:
            health, _ = http("GET", url + "/healthz")
            page, _ = http("GET", url + "/web/")
            body = json.dumps({"token": "legacy", "challenge": "c1", "type": "url_verification"})
            events, _ = http("POST", url + "/slack/events", body, {"Content-Type": "application/json", **sign(body)})
        served.append((port, health, page, events))

    monkeypatch.setattr(handlers.web, "run_server", serve_briefly)
    monkeypatch.setattr(handlers.clock, "start_background_clock",
                        lambda app, senders: clocks.append([s.platform for s in senders]) or (lambda: None))
    args = ["--config", str(team_file), "--db", prepared_db]
    assert main(["serve", *args, "--port", "3998"]) == 0
    assert served == [(3998, 200, 401, 404)]  # the web view asks for a session; no Slack route
    assert clocks == []  # nothing could be sent, so no scheduler
    [note] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert note.startswith("serve: no chat platform is configured, so only /healthz and the web view are served")
    assert "set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET" in note
    assert main(["socket", *args]) == 2
    assert capsys.readouterr().err.strip() == (
        "weekly-bot: error: socket: no long connection is configured: set SLACK_BOT_TOKEN and SLACK_APP_TOKEN "
        "(Slack Socket Mode), or FEISHU_APP_ID and FEISHU_APP_SECRET (the Feishu long connection)")


# -- the small pieces ------------------------------------------------------------------------------
def test_slack_markup_becomes_plain_text_and_back() -> None:
    names = {"U0WANG0001": "王芳"}.get
    assert from_slack("问 <@U0WANG0001> 和 <@U0X|x>：a &lt; b &amp;&amp; c &gt; d", names) == "问 @王芳 和 @x：a < b && c > d"
    assert from_slack("<https://example.com|example.com> <https://x.io/a|报告> <mailto:a@b.cn|a@b.cn> <!here>",
                      names) == "example.com 报告 (https://x.io/a) a@b.cn @here"
    assert to_slack("a < b & c\n> quoted") == "a &lt; b &amp; c\n> quoted"


def test_classify_reads_only_peoples_dms() -> None:
    base = {"type": "message", "channel": "D1", "channel_type": "im", "user": "U1", "text": "x", "ts": "1.1"}
    assert classify(base) is not None and classify(base).kind == "message"  # type: ignore[union-attr]
    assert classify({**base, "channel_type": "channel"}) is None
    assert classify({**base, "subtype": "channel_join"}) is None
    assert classify({**base, "subtype": "message_changed", "message": {"subtype": "tombstone", "user": "U1"}}) is None
    assert action_of("weekly_assign.2") == "assign" and action_of("weekly_publish") == "publish"


def test_blocks_split_long_text_and_keep_button_ids_unique() -> None:
    assert blocks_for(Reply("no buttons")) is None
    blocks = blocks_for(Reply("一行字\n" * 2000, buttons=(Button("A", "assign", "1:a"), Button("B", "assign", "1:b"))))
    assert blocks is not None
    sections = [b["text"]["text"] for b in blocks[:-1]]
    assert len(sections) == 3 and all(len(x) <= 3000 for x in sections)
    assert "\n".join(sections) == ("一行字\n" * 2000).strip("\n")
    assert [e["action_id"] for e in blocks[-1]["elements"]] == ["weekly_assign", "weekly_assign.2"]


def test_check_asks_slack_whether_it_accepts_the_token(team_file: Path, fake: FakeSlackApi, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    for name, value in {"SLACK_BOT_TOKEN": TOKEN, "SLACK_SIGNING_SECRET": SECRET, "SLACK_API_URL": fake.api_url}.items():
        monkeypatch.setenv(name, value)
    args = ["check", "--config", str(team_file), "--db", f"sqlite:///{tmp_path / 'c.db'}"]
    assert main(args) == 0
    assert "ok  Slack: token accepted for @weekly-bot in Fake (HTTP)" in capsys.readouterr().out
    assert [c.method for c in fake.calls("auth.test")] == ["auth.test"]
    monkeypatch.setenv("SLACK_API_URL", "http://127.0.0.1:9/api/")  # nothing listens there
    assert main(args) == 1
    assert "FAIL Slack: cannot reach http://127.0.0.1:9/api/" in capsys.readouterr().out


# -- a locked database ------------------------------------------------------------------------------
@sqlite_only
def test_a_locked_database_fails_fast_and_loses_nothing(slack: Slack) -> None:
    import sqlite3

    slack.say("U0ZHANG001", "对账差错3笔")  # the cycle is stored: the next DM only has to write its answer
    db = slack.app.store.engine.url.database
    assert db
    blocker = sqlite3.connect(db, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        event = {"type": "message", "channel": dm("U0ZHANG001"), "channel_type": "im", "user": "U0ZHANG001",
                 "text": "自动对账覆盖率97.1%", "ts": "1728957600.990001", "event_ts": "1728957600.990001"}
        body = slack.event_body(event, "EvLOCKED01")
        started = time.monotonic()
        status, _ = slack.post(body, "application/json")
        took = time.monotonic() - started
        assert status == 500 and took < 3.0, (status, took)  # not stored: Slack will deliver it again
        started = time.monotonic()
        health = http("GET", slack.url + "/healthz")
        assert health[0] in (200, 503) and time.monotonic() - started < 1.0
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    status, _ = slack.post(body, "application/json", headers={"X-Slack-Retry-Num": "1",
                                                              "X-Slack-Retry-Reason": "http_error"})
    assert status == 200
    assert [u.text for u in slack.updates()] == ["对账差错3笔", "自动对账覆盖率97.1%"]


@sqlite_only
def test_commands_that_write_nothing_are_answered_while_another_process_holds_the_write_lock(slack: Slack) -> None:
    import sqlite3

    slack.say("U0ZHANG001", "对账差错3笔")
    db = slack.app.store.engine.url.database
    assert db
    blocker = sqlite3.connect(db, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another process holds the write lock (Slack does not retry a command)
    try:
        status, ack, took = slack.command("U0ZHANG001", "help")
        assert (status, ack["text"]) == (200, to_slack(t("zh", "help"))) and took < 1.0, (status, took)
        status, ack, took = slack.command("U0WANG0001", "status")  # reads (WAL: no lock needed), writes nothing
        assert status == 200 and took < 1.0, (status, took)
        assert "✅ 清分对账 — 张伟 (已提交)" in ack["text"].split("\n"), ack["text"]
        # beside DMs that wait for the lock, and fail, commands are still answered in Slack's time
        from concurrent.futures import ThreadPoolExecutor

        event = {"type": "message", "channel": dm("U0ZHANG001"), "channel_type": "im", "user": "U0ZHANG001",
                 "text": "自动对账覆盖率97.1%", "ts": "1728957600.990002", "event_ts": "1728957600.990002"}
        with ThreadPoolExecutor(4) as pool:
            dms = [pool.submit(slack.post, slack.event_body(event | {"ts": f"1728957600.99001{i}"}, f"EvLOCK{i}"),
                               "application/json") for i in range(2)]
            helps = [pool.submit(slack.command, "U0ZHANG001", "help") for _ in range(2)]
            assert [f.result()[0] for f in dms] == [500, 500]
            answered = [f.result() for f in helps]
        assert [(a[0], a[1]["text"]) for a in answered] == [(200, to_slack(t("zh", "help")))] * 2
        assert max(a[2] for a in answered) < 3.0, answered
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()


def test_four_processes_start_together_on_a_fresh_sqlite_file(tmp_path: Path) -> None:
    import subprocess
    import sys

    from .conftest import EXAMPLES

    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "WEEKLY_CONFIG": str(EXAMPLES / "team.yaml"),
           "DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.db'}"}
    procs = [subprocess.Popen([sys.executable, "-m", "bot", "cycles", "--from", "2024-W40", "--to", "2024-W41"],
                              env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(4)]
    results = [(p.wait(timeout=120), p.stderr.read() if p.stderr else "") for p in procs]
    assert results == [(0, "")] * 4


# -- forged, malformed and huge requests (spec §9) -------------------------------------------------
def _raw_post(url: str, headers: dict[str, str], body: bytes) -> int:
    """POST bytes as they are (urllib would refuse invalid text); the status, or 0 if the server hung up."""
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=15)
    try:
        conn.request("POST", parts.path, body=body, headers=headers)
        return conn.getresponse().status
    except (ConnectionError, http.client.HTTPException):
        return 0
    finally:
        conn.close()


def _signed_raw(body: bytes) -> dict[str, str]:
    ts = str(int(time.time()))
    digest = hmac.new(SECRET.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


def urlencode_bytes(payload: dict[str, Any]) -> bytes:
    from urllib.parse import quote

    return quote(json.dumps(payload)).encode()


MALFORMED = [
    b'{"type": "event_callback", "event": {"type": "mess',  # truncated
    b"\xff\xfe not utf-8 at all",
    b"[" * 200_000 + b"]" * 200_000,  # deep
    b'{"type": "event_callback", "event": null}',
    b'{"type": "event_callback", "event": {"type": "message", "channel_type": "im", "user": 7, "text": ["x"]}}',
    b'{"type": "event_callback", "event": {"type": "message", "channel_type": "im", "user": "U0ZHANG001", '
    b'"text": {"a": 1}, "ts": "1.1", "channel": "D1"}}',
    b"[1, 2, 3]",
    b'{"type": "event_callback", "authorizations": [{"team_id": "T1", "enterprise": 5}], '
    b'"event": {"type": "message"}}',
]
FORMS = [
    b"payload=%7Bgarbage",
    b"payload=" + urlencode_bytes({"type": "block_actions", "user": {"id": "U0WANG0001"}, "actions": []}),
    b"payload=" + urlencode_bytes({"type": "block_actions", "user": "U0WANG0001", "actions": [{}]}),
    # found by hypothesis: Bolt's context building raised TypeError on a user that is neither id nor object
    b"payload=" + urlencode_bytes({"type": "block_actions", "user": False, "actions": [{}]}),
    b"payload=" + urlencode_bytes({"type": "message_action", "message": {"user": True}}),
    b"payload=" + urlencode_bytes({"type": "view_submission", "response_urls": [7]}),
    b"payload=" + urlencode_bytes({"type": "block_actions", "user": {"id": "U0WANG0001"}, "actions": [{"v": 1}]}),
    b"nothing=here",
]


@sqlite_only
def test_forged_and_malformed_requests_get_4xx_and_change_nothing(slack: Slack, caplog: pytest.LogCaptureFixture
                                                                  ) -> None:
    caplog.set_level(logging.WARNING)
    url = slack.url + "/slack/events"
    statuses = []
    for body in MALFORMED:
        statuses.append(_raw_post(url, {"Content-Type": "application/json"}, body))  # unsigned
        statuses.append(_raw_post(url, {"Content-Type": "application/json", **_signed_raw(body)}, body))
    for body in FORMS:
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        statuses.append(_raw_post(url, form, body))
        statuses.append(_raw_post(url, {**form, **_signed_raw(body)}, body))
    assert statuses == [401, 400] * len(MALFORMED) + [401, 400] * len(FORMS)
    assert slack.updates() == [] and slack.fake.calls("chat.postMessage") == []
    assert not [r for r in caplog.records if r.exc_info], "no traceback in the log"


@sqlite_only
def test_a_huge_body_is_refused_unread(slack: Slack) -> None:
    import tracemalloc

    url = slack.url + "/slack/events"
    tracemalloc.start()
    try:
        declared = _raw_post(url, {"Content-Type": "application/json", "Content-Length": str(10 * 1024 * 1024)},
                             b"[" + b"1," * 100)  # says 10 MB: refused on its word
        chunk = b"1," * 32 * 1024

        def stream():  # type: ignore[no-untyped-def]
            yield b"["
            for _ in range(160):  # 10 MB, never held whole by anyone
                yield chunk

        streamed = _raw_post(url, {"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
                             stream())  # type: ignore[arg-type]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert declared == 413 and streamed in (413, 0)
    assert peak < 4 * 1024 * 1024, peak  # the server read at most its 1 MiB cap
    assert slack.updates() == []


# -- a sender killed mid fan-out ------------------------------------------------------------------
def test_a_dead_senders_claims_are_retaken_within_two_minutes_and_never_sent_twice(slack: Slack) -> None:
    from bot.due import Due
    from bot.tick import tick
    from bot.wiring import build_senders

    opens = at("2024-10-14 10:00")
    senders = build_senders(slack.app)
    service = slack.app.service
    prompt = tick(service, senders, opens - timedelta(minutes=1))  # nothing yet: W42 opens at 10:00
    assert prompt == []
    # A tick process died at 10:00 in its fan-out: it had claimed 李雷's and 张伟's prompts; Slack took
    # 李雷's (with its key in the message metadata) and the process died before marking it sent; it died
    # before sending 张伟's.
    li = Due("clearing", CYCLE, "li", "prompt", "", ("settlement", "o1_business"))
    zhang = Due("clearing", CYCLE, "zhang", "prompt", "", ("reconciliation",))
    assert service.claim_message(li, at=opens) and service.claim_message(zhang, at=opens)
    senders[0].send("li", Reply("李雷你好，……", key=li.key))
    # the tick a minute later sends everyone else, and leaves the two claims to their (perhaps live) sender
    sent = tick(service, senders, opens + timedelta(minutes=1))
    assert {s.due.member for s in sent} == {"chen", "liu", "zhao", "sun", "wang", "ma"}
    # two minutes after: the claims are stale; 李雷's is found in his DM, 张伟's is sent now
    sent = tick(service, senders, opens + timedelta(minutes=2))
    assert [(s.due.member, s.ok) for s in sent] == [("zhang", True)]
    assert len(slack.texts("U0LILEI001")) == 1 and len(slack.texts("U0ZHANG001")) == 1
    assert {o.member_key: o.status for o in service.outgoing("clearing", CYCLE)}["li"] == "sent"
    assert tick(service, senders, opens + timedelta(minutes=3)) == []
    # every prompt carried its key, and only DMs with a key are looked up
    assert all(p["metadata"]["event_payload"]["key"].endswith("|prompt|")
               for p in slack.fake.posted() if p.get("metadata"))
    assert sorted(c.params["channel"] for c in slack.fake.calls("conversations.history")) == [
        dm("U0LILEI001"), dm("U0ZHANG001")]  # asked in parallel: in either order


def test_a_live_senders_claim_is_kept_fresh() -> None:
    from bot.tick import HEARTBEAT, STALE_CLAIM

    assert HEARTBEAT * 3 < STALE_CLAIM <= timedelta(minutes=1)


@sqlite_only
def test_web_gives_a_lead_a_sign_in_link_by_dm_and_a_non_lead_a_clear_no(slack: Slack) -> None:
    status, ack, _ = slack.command("U0WANG0001", "web")
    settle()
    assert status == 200
    (posted,) = slack.texts("U0WANG0001")
    assert posted.startswith("网页视图的登录链接（10 分钟内有效，只能使用一次）：\nhttp://localhost:3000/web/signin?token=")
    link = posted.split("\n")[1].strip("<>")
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())  # keeps the session cookie
    with browser.open(slack.url + link.removeprefix("http://localhost:3000"), timeout=15) as home:
        assert (home.status, urlsplit(home.url).path) == (200, "/web/")  # signed in, redirected home
    status, ack, _ = slack.command("U0ZHANG001", "web")
    settle()
    assert (status, ack["text"]) == (200, to_slack(t("zh", "web_not_lead")))
    assert slack.texts("U0ZHANG001") == []


def hang_up_mid_body(url: str) -> list[logging.LogRecord]:
    """Send the head of a POST and half its body, then hang up; what the server logged meanwhile."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    keep = Keep(level=logging.DEBUG)
    loggers = [logging.getLogger(name) for name in ("uvicorn.error", "handlers", "bot", "")]
    for each in loggers:
        each.addHandler(keep)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout=5) as s:
            s.sendall(f"POST {parts.path} HTTP/1.1\r\nHost: {parts.hostname}\r\nContent-Type: application/json\r\n"
                      "Content-Length: 4000\r\n\r\n".encode() + b'{"token": "' + b"x" * 100)
            time.sleep(0.3)  # the server is reading the body
        settle()
    finally:
        for each in loggers:
            each.removeHandler(keep)
    return seen


@sqlite_only
def test_a_client_hanging_up_mid_body_leaves_no_traceback(slack: Slack) -> None:
    """Spec §9: no traceback at the default log level, whatever a client does."""
    seen = hang_up_mid_body(slack.url + "/slack/events")
    assert [r.getMessage() for r in seen if r.exc_info or r.levelno >= logging.ERROR] == []
    assert slack.updates() == []


# -- group commit: a burst of DMs stored in a few transactions, a failing one alone ----------------
def _dm_body(slack: Slack, text: str, ts: str, event_id: str | None = None) -> str:
    return slack.event_body({"type": "message", "channel": dm("U0ZHANG001"), "channel_type": "im",
                             "user": "U0ZHANG001", "text": text, "ts": ts, "event_ts": ts}, event_id)


def _burst(slack: Slack, texts: list[str], *, hold_db_s: float = 0.0, also: dict[int, str] | None = None) -> list[int]:
    """Send one DM per text at once (threads), and the bodies `also` at their places among them, optionally
    while another connection holds the database for `hold_db_s` (so the requests queue up and are applied
    as one group); their statuses."""
    from concurrent.futures import ThreadPoolExecutor

    bodies = [_dm_body(slack, text, f"1728957700.{n:06d}") for n, text in enumerate(texts)]
    for place, body in sorted((also or {}).items()):
        bodies.insert(place, body)
    with holding_database(slack.app.store.engine, hold_db_s) if hold_db_s else nullcontext(), \
            ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(lambda b: slack.post(b, "application/json")[0], bodies))


@sqlite_only
def test_a_burst_of_dms_is_stored_and_confirmed_once_each(slack: Slack) -> None:
    texts = [f"第{n}项：清算对账完成{n}笔。" for n in range(24)]
    assert _burst(slack, texts, hold_db_s=0.4) == [200] * 24
    settle()
    assert sorted(u.text for u in slack.updates()) == sorted(texts)
    confirmations = slack.texts("U0ZHANG001")
    assert len(confirmations) == 24
    assert sorted(confirmations) == sorted(recorded("清分对账", text) for text in texts)


def test_a_redelivery_inside_a_burst_is_ignored_and_the_rest_is_stored_once(
    slack: Slack, caplog: pytest.LogCaptureFixture,
) -> None:
    """A group stores its DMs together (PostgreSQL: in one round trip, each taken to be new); a redelivery of
    an event stored before, arriving in that group, rolls it back and each DM is then applied alone: every
    request answered 200, every answer stored and confirmed once, the redelivery ignored, no error logged."""
    caplog.set_level(logging.DEBUG, logger="handlers.edge")
    earlier = _dm_body(slack, "第0项：早先的一条。", "1728957600.000001", event_id="EvEARLIER01")
    assert slack.post(earlier, "application/json")[0] == 200
    texts = [f"第{n}项：备付金对账{n}笔。" for n in range(1, 13)]
    assert _burst(slack, texts, hold_db_s=0.4, also={6: earlier}) == [200] * 13
    slack.fake.wait_for("chat.postMessage", count=13)  # the earlier one's and the burst's confirmations
    settle()
    assert sorted(u.text for u in slack.updates()) == sorted(["第0项：早先的一条。", *texts])
    assert sorted(slack.texts("U0ZHANG001")) == sorted(recorded("清分对账", x) for x in ["第0项：早先的一条。", *texts])
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    if slack.app.store.engine.dialect.name == "postgresql":  # (SQLite finds the redelivery as it stores it)
        assert any("was rolled back (BatchMiss)" in r.getMessage() for r in caplog.records)


@sqlite_only
def test_a_dm_that_cannot_be_stored_fails_alone_and_its_group_is_stored(slack: Slack) -> None:
    from sqlalchemy import text as sql

    with slack.app.store.engine.begin() as conn:  # the database itself refuses this one message
        conn.execute(sql("CREATE TRIGGER refuse BEFORE INSERT ON updates WHEN NEW.text LIKE '%POISON%' "
                         "BEGIN SELECT RAISE(ABORT, 'refused'); END"))
    texts = [f"第{n}项：头寸预测上线{n}个产品。" for n in range(12)]
    texts.insert(5, "POISON 这一条存不进去")
    statuses = _burst(slack, texts, hold_db_s=0.4)
    assert statuses == [500 if "POISON" in x else 200 for x in texts]
    settle()
    good = [x for x in texts if "POISON" not in x]
    assert sorted(u.text for u in slack.updates()) == sorted(good)
    assert sorted(slack.texts("U0ZHANG001")) == sorted(recorded("清分对账", x) for x in good)


@sqlite_only
def test_a_confirmation_waits_for_the_requests_in_flight_but_not_past_a_second(slack: Slack) -> None:
    """Acks first (issue 13): work after an ack waits while requests are being served, at most AFTER_WAIT_S."""
    import socket

    from handlers.edge import AFTER_WAIT_S

    host, port = urlsplit(slack.url).hostname, urlsplit(slack.url).port
    stalled = socket.create_connection((host, port))  # its headers sent, its body never: a request in flight
    stalled.sendall(b"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    b"Content-Length: 100\r\n\r\n")
    try:
        time.sleep(0.2)
        started = time.monotonic()
        slack.say("U0ZHANG001", "对账差错3笔")
        slack.fake.wait_for("chat.postMessage", count=1)
        waited = time.monotonic() - started
    finally:
        stalled.close()
    assert AFTER_WAIT_S * 0.9 <= waited < AFTER_WAIT_S + 1.5
    assert slack.texts("U0ZHANG001") == [recorded("清分对账", "对账差错3笔")]
