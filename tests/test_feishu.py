"""Feishu end to end: encrypted, signed HTTP requests into the real lark-oapi dispatcher served by uvicorn on
127.0.0.1, with Feishu's open API played by tests/fakes/feishu_api.py (FEISHU_DOMAIN points the SDK at it);
assertions on what the fake received and what the database holds."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from Crypto.Cipher import AES
from starlette.applications import Starlette

from bot.chat import Button, ChatBot, Reply
from bot.cli import main
from bot.i18n import t
from bot.notify import SendError
from bot.service import preview
from bot.tick import tick
from bot.wiring import App, build_senders
from handlers.feishu.app import (
    FeishuEdge,
    Refused,
    RequestGate,
    build_feishu,
    card_for,
    classify,
    long_connection_client,
    message_text,
)
from handlers.web import create_web_app
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
from tests.fakes.feishu_api import APP_ID, APP_SECRET, BOT_OPEN_ID, FakeFeishuApi
from tests.fakes.slack_api import FakeSlackApi
from tests.serving import CurrentApp, http, running, socket_process

ENCRYPT_KEY = "Fk3vT9qLfake-encrypt-key-2024"
VERIFICATION_TOKEN = "vtFAKE0verification0token01"
SLOW_SUMMARY_S = 3.5  # stands for a 10-second LLM call: longer than Feishu's 3 s, short enough for CI
GROUP = "oc_group0000000000000000000000001"
PUBLISH_CHAT = "oc_weekly000000000000000000000001"
ZHOU = "ou_zhou0000000000000000000000000001"  # in the team file by email only: found through the contact API

# Storage-facing tests run on every database conftest offers (PostgreSQL too, when configured); the
# rest, the slow ones among them, on SQLite only, keeping this file well under 30 s either way.


def ou(member: str) -> str:
    """The open_id the test team file gives a member."""
    return f"ou_{member:0<30}"


def dm(open_id: str) -> str:
    """The chat id of the bot's DM with a user."""
    return "oc_dm_" + open_id.removeprefix("ou_")


@pytest.fixture
def team_file(tmp_path: Path) -> Path:
    """examples/team.yaml with feishu ids, plus 马丽 (a feishu id only), 周婷 (email only), 幽灵 and 无踪."""
    data = yaml.safe_load((EXAMPLES / "team.yaml").read_text(encoding="utf-8"))
    for key, member in data["members"].items():
        member["feishu"] = ou(key)
    data["members"]["ma"] = {"name": "马丽", "feishu": ou("ma")}
    data["members"]["zhou"] = {"name": "周婷", "email": "zhou@example.com"}
    data["members"]["ghost"] = {"name": "幽灵"}
    data["members"]["lost"] = {"name": "无踪", "email": "lost@example.com"}
    data["teams"][0]["publish"] = {"slack": "C0WEEKLY01", "feishu": PUBLISH_CHAT}
    data["teams"][0]["sections"].append({"key": "ops", "title": "运维", "owners": ["ma", "zhou"]})
    path = tmp_path / "team.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


# -- Feishu's side of the wire, by the book ----------------------------------------------------
def encrypt(plain: str, key: str = ENCRYPT_KEY) -> str:
    """AES-256-CBC with sha256(key) as the key, a random IV in front, PKCS#7 padding, base64."""
    data = plain.encode()
    pad = 16 - len(data) % 16
    iv = os.urandom(16)
    cipher = AES.new(hashlib.sha256(key.encode()).digest(), AES.MODE_CBC, iv)
    return base64.b64encode(iv + cipher.encrypt(data + bytes([pad]) * pad)).decode()


def sign(body: str, *, key: str = ENCRYPT_KEY, timestamp: int | None = None, nonce: str = "n0nce42") -> dict[str, str]:
    """X-Lark-Signature: sha256(timestamp + nonce + encrypt key + body), hex."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hashlib.sha256((ts + nonce + key).encode() + body.encode()).hexdigest()
    return {"X-Lark-Request-Timestamp": ts, "X-Lark-Request-Nonce": nonce, "X-Lark-Signature": digest}







def envelope(event_type: str, event: dict[str, Any], *, event_id: str, token: str = VERIFICATION_TOKEN) -> dict[str, Any]:
    return {"schema": "2.0", "header": {"event_id": event_id, "token": token, "create_time": "1728957600000",
                                        "event_type": event_type, "tenant_key": "tenant_fake", "app_id": APP_ID},
            "event": event}


def bot_mention(key: str = "@_user_1") -> dict[str, Any]:
    return {"key": key, "id": {"open_id": BOT_OPEN_ID, "union_id": "on_bot"}, "name": "weekly-bot",
            "tenant_key": "tenant_fake"}


def message_event(open_id: str, text: str, *, message_id: str, chat_id: str | None = None, chat_type: str = "p2p",
                  sender_type: str = "user", mentions: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "sender": {"sender_id": {"open_id": open_id, "union_id": "on_" + open_id[3:]}, "sender_type": sender_type,
                   "tenant_key": "tenant_fake"},
        "message": {"message_id": message_id, "create_time": "1728957600000", "chat_id": chat_id or dm(open_id),
                    "chat_type": chat_type, "message_type": "text", "content": json.dumps({"text": text}),
                    "mentions": mentions or []},
    }


@dataclass
class Feishu:
    """The served app, the fake open API, and ways to talk to the app as Feishu does."""

    app: App
    edge: FeishuEdge
    fake: FakeFeishuApi
    url: str
    _n: int = 0

    def next_id(self, prefix: str) -> str:
        self._n += 1
        return f"{prefix}{self._n:06d}"

    def post(self, plain: dict[str, Any], *, key: str = ENCRYPT_KEY,
             signed: Callable[[str], dict[str, str]] | None = None) -> tuple[int, str]:
        """The event encrypted with `key` and signed (by `signed`, else correctly)."""
        body = json.dumps({"encrypt": encrypt(json.dumps(plain, ensure_ascii=False), key)})
        return self.post_body(body, signed(body) if signed else sign(body))

    def post_body(self, body: str, headers: dict[str, str]) -> tuple[int, str]:
        return http("POST", self.url + "/feishu/events", body, {"Content-Type": "application/json", **headers})

    def say(self, open_id: str, text: str, *, message_id: str | None = None, event_id: str | None = None,
            **extra: Any) -> str:
        """A message from `open_id` (a DM unless told otherwise); returns its message_id."""
        message_id = message_id or self.next_id("om_user")
        event = message_event(open_id, text, message_id=message_id, **extra)
        status, _ = self.post(envelope("im.message.receive_v1", event, event_id=event_id or self.next_id("ev")))
        assert status == 200
        return message_id

    def press(self, open_id: str, action: str, value: str, *, chat_id: str) -> dict[str, Any]:
        """A card button press (card.action.trigger); returns the callback's answer."""
        event = {"operator": {"open_id": open_id, "tenant_key": "tenant_fake"}, "token": "c-fake",
                 "action": {"tag": "button", "value": {"action": action, "value": value}}, "host": "im_message",
                 "context": {"open_message_id": "om_card000001", "open_chat_id": chat_id}}
        status, answer = self.post(envelope("card.action.trigger", event, event_id=self.next_id("ev")))
        assert status == 200
        return dict(json.loads(answer))

    def texts(self, chat_id: str) -> list[str]:
        return [m.text for m in self.fake.messages(chat_id)]

    def updates(self) -> list[Any]:
        cycle = self.app.store.find_cycle(team_key="clearing", label=CYCLE)
        return self.app.store.updates(cycle_id=cycle.id) if cycle else []








@pytest.fixture
def fake() -> Iterator[FakeFeishuApi]:
    with FakeFeishuApi(users={"zhou@example.com": ZHOU}) as api:
        yield api


def feishu_settings(fake: FakeFeishuApi) -> dict[str, str]:
    return {"feishu_app_id": APP_ID, "feishu_app_secret": APP_SECRET, "feishu_encrypt_key": ENCRYPT_KEY,
            "feishu_verification_token": VERIFICATION_TOKEN, "feishu_domain": fake.domain}


@pytest.fixture
def feishu(make_app: Callable[..., App], fake: FakeFeishuApi, server: tuple[CurrentApp, str]) -> Iterator[Feishu]:
    """Each test its own database, fake open API and edge, served over real HTTP."""
    app = make_app(FixedClock(OPEN_CYCLE), **feishu_settings(fake))
    edge = build_feishu(app)
    current, url = server
    current.web = create_web_app(app, [edge])
    yield Feishu(app, edge, fake, url)
    current.web = None
    edge.finish(5.0)  # as serve does on stopping: the replies the acks left, sent while the fake still listens


def recorded(section: str, text: str) -> str:
    return t("zh", "recorded", section=section, cycle=CYCLE, preview=preview(text))


# -- the request checks --------------------------------------------------------------------------
@sqlite_only
def test_an_encrypted_url_verification_is_answered_with_its_challenge(feishu: Feishu) -> None:
    challenge = {"challenge": "1b6aef1a-401f-406a-be41-f48911eabcef", "token": VERIFICATION_TOKEN,
                 "type": "url_verification"}
    body = json.dumps({"encrypt": encrypt(json.dumps(challenge))})
    status, answer = feishu.post_body(body, {})  # Feishu does not sign the challenge
    assert (status, json.loads(answer)) == (200, {"challenge": "1b6aef1a-401f-406a-be41-f48911eabcef"})
    wrong = {**challenge, "token": "not-the-token"}
    assert feishu.post_body(json.dumps({"encrypt": encrypt(json.dumps(wrong))}), {})[0] == 401


def _garbage(body: str) -> str:
    return json.dumps({"encrypt": base64.b64encode(b"0123456789abcdef" * 3).decode()})


@sqlite_only
@pytest.mark.parametrize("tamper", [
    pytest.param({"signed": lambda body: sign(body, key="not-the-key")}, id="bad-signature"),
    pytest.param({"token": "not-the-token"}, id="wrong-verification-token"),
    pytest.param({"key": "not-the-key"}, id="undecryptable"),
    pytest.param({"signed": lambda body: sign(body, timestamp=int(time.time()) - 600)}, id="10-minutes-old"),
    pytest.param({"signed": lambda body: {}}, id="unsigned"),
    pytest.param({"plaintext": True}, id="not-encrypted"),
])
def test_a_request_failing_the_checks_gets_401_changes_nothing_and_is_not_logged(
    feishu: Feishu, tamper: dict[str, Any], caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    event = message_event(ou("zhang"), "secret-marker 对账差错3笔", message_id="om_refused01")
    plain = envelope("im.message.receive_v1", event, event_id="ev_refused01", token=tamper.get("token",
                                                                                             VERIFICATION_TOKEN))
    if tamper.get("plaintext"):
        body = json.dumps(plain, ensure_ascii=False)
        status, _ = feishu.post_body(body, sign(body))
    else:
        status, _ = feishu.post(plain, key=tamper.get("key", ENCRYPT_KEY), signed=tamper.get("signed"))
    settle()
    assert status == 401
    assert feishu.updates() == []
    assert feishu.fake.calls("im.message.create") == []
    assert "secret-marker" not in caplog.text
    assert "Feishu: refused a request" in caplog.text


# -- DMs -----------------------------------------------------------------------------------------
def test_a_dm_becomes_the_owners_update_and_is_confirmed(feishu: Feishu) -> None:
    text = "对账差错下降至3笔，均已处理。"
    message_id = feishu.say(ou("zhang"), text)
    # stored before the answer: the 200 above came after it
    [update] = feishu.updates()
    assert (update.member_key, update.section_key, update.text, update.message_id) == (
        "zhang", "reconciliation", text, message_id)
    [sent] = feishu.fake.wait_messages(1)
    assert (sent.receive_id_type, sent.receive_id, sent.msg_type, sent.text) == (
        "chat_id", dm(ou("zhang")), "text", recorded("清分对账", text))


def test_a_redelivery_or_the_same_message_under_a_new_event_id_is_stored_once(feishu: Feishu) -> None:
    feishu.say(ou("zhang"), "对账差错3笔", message_id="om_again0001", event_id="ev_again0001")
    feishu.say(ou("zhang"), "对账差错3笔", message_id="om_again0001", event_id="ev_again0001")
    feishu.say(ou("zhang"), "对账差错3笔", message_id="om_again0001", event_id="ev_again0002")
    feishu.fake.wait_messages(1)
    settle()
    assert [u.text for u in feishu.updates()] == ["对账差错3笔"]
    assert feishu.texts(dm(ou("zhang"))) == [recorded("清分对账", "对账差错3笔")]


def test_a_burst_with_redeliveries_in_it_stores_and_confirms_each_message_once(
    feishu: Feishu, caplog: pytest.LogCaptureFixture,
) -> None:
    """A burst of DMs applied as one group (PostgreSQL: its answers in one round trip, each taken to be new),
    with an earlier event delivered again and an earlier message under a new event id among them: the group
    is rolled back and each applied alone — every request 200, every message stored and confirmed once."""
    import logging
    from concurrent.futures import ThreadPoolExecutor

    caplog.set_level(logging.DEBUG, logger="handlers.edge")
    feishu.say(ou("zhang"), "第0项：早先的一条。", message_id="om_earlier001", event_id="ev_earlier001")
    texts = [f"第{n}项：备付金对账{n}笔。" for n in range(1, 11)]
    plains = [envelope("im.message.receive_v1", message_event(ou("zhang"), text, message_id=f"om_burst{n:04d}"),
                       event_id=f"ev_burst{n:04d}") for n, text in enumerate(texts)]
    again = envelope("im.message.receive_v1", message_event(ou("zhang"), "第0项：早先的一条。",
                                                            message_id="om_earlier001"), event_id="ev_earlier001")
    plains[4:4] = [again, {**again, "header": {**again["header"], "event_id": "ev_earlier002"}}]
    with holding_database(feishu.app.store.engine, 0.4), ThreadPoolExecutor(len(plains)) as pool:
        statuses = list(pool.map(lambda p: feishu.post(p)[0], plains))
    assert statuses == [200] * 12
    feishu.fake.wait_messages(11)
    settle()
    assert sorted(u.text for u in feishu.updates()) == sorted(["第0项：早先的一条。", *texts])
    assert sorted(feishu.texts(dm(ou("zhang")))) == sorted(recorded("清分对账", x) for x in ["第0项：早先的一条。", *texts])
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    if feishu.app.store.engine.dialect.name == "postgresql":  # (SQLite finds each redelivery as it stores it)
        assert any("was rolled back (BatchMiss)" in r.getMessage() for r in caplog.records)


@sqlite_only
def test_messages_from_bots_and_group_chatter_are_ignored(feishu: Feishu) -> None:
    feishu.say(BOT_OPEN_ID, "已记录到【清分对账】", chat_id=dm(ou("zhang")), sender_type="app")
    feishu.say("ou_otherbot000000000000000000001", "I am another bot", sender_type="app")
    feishu.say(ou("zhang"), "大家好，午饭吃什么", chat_id=GROUP, chat_type="group")  # no mention of the bot
    settle()
    assert feishu.updates() == []
    assert feishu.fake.calls("im.message.create") == []


def test_a_recalled_message_is_removed(feishu: Feishu) -> None:
    message_id = feishu.say(ou("zhang"), "对账差错3笔")
    feishu.fake.wait_messages(1)
    recall = {"message_id": message_id, "chat_id": dm(ou("zhang")), "recall_time": "1728957700000",
              "recall_type": "message_owner"}
    assert feishu.post(envelope("im.message.recalled_v1", recall, event_id="ev_recall0001"))[0] == 200
    assert feishu.updates() == []
    feishu.fake.wait_messages(2)
    assert feishu.texts(dm(ou("zhang")))[1] == t("zh", "deleted", section="清分对账")


def test_a_member_known_only_by_email_is_matched_once_and_cached(feishu: Feishu) -> None:
    feishu.say(ZHOU, "巡检正常")
    feishu.say(ZHOU, "扩容完成")
    feishu.fake.wait_messages(2)
    assert [(u.member_key, u.section_key) for u in feishu.updates()] == [("zhou", "ops"), ("zhou", "ops")]
    assert feishu.app.store.member_platform_ids(platform="feishu")["zhou"] == ZHOU
    assert len(feishu.fake.calls("contact.user.get")) == 1


def test_a_failed_lookup_answers_500_and_feishus_redelivery_stores_the_answer(feishu: Feishu) -> None:
    feishu.fake.fail("contact.user.get", status=429, code=99991400, times=10)  # rate limited: no time before the answer
    event = message_event(ZHOU, "巡检正常", message_id="om_user_failed1")
    status, _ = feishu.post(envelope("im.message.receive_v1", event, event_id="ev_failed1"))
    assert status == 500  # not stored: Feishu must deliver it again
    assert feishu.updates() == [] and feishu.fake.messages() == []
    feishu.fake.fail("contact.user.get", status=200, code=0, times=0)  # the limit is over
    status, _ = feishu.post(envelope("im.message.receive_v1", event, event_id="ev_failed1"))
    assert status == 200
    assert [(u.member_key, u.text) for u in feishu.updates()] == [("zhou", "巡检正常")]
    status, _ = feishu.post(envelope("im.message.receive_v1", event, event_id="ev_failed1"))
    assert status == 200 and len(feishu.updates()) == 1
    feishu.fake.wait_messages(1)
    settle()
    assert len(feishu.fake.messages()) == 1


# -- commands ------------------------------------------------------------------------------------
@sqlite_only
def test_status_in_a_dm_from_a_lead_lists_the_missing_owners(feishu: Feishu) -> None:
    feishu.say(ou("zhang"), "对账差错3笔")
    feishu.say(ou("wang"), "/weekly status")
    feishu.fake.wait_messages(1, receive_id=dm(ou("wang")))
    [status] = feishu.texts(dm(ou("wang")))
    lines = status.split("\n")
    assert lines[0] == f"{TEAM_TITLE} {CYCLE}  开始 10-14 10:00  截止 10-17 18:00"
    assert "✅ 清分对账 — 张伟 (已提交)" in lines
    assert lines[-1] == "仍未提交：李雷、陈静、刘洋、赵敏、孙浩、王芳、马丽、周婷"


@sqlite_only
def test_a_non_lead_asking_for_the_summary_in_a_group_is_refused(feishu: Feishu) -> None:
    feishu.say(ou("zhang"), "@_user_1 /weekly summary", chat_id=GROUP, chat_type="group", mentions=[bot_mention()])
    [answer] = feishu.fake.wait_messages(1)
    assert (answer.receive_id, answer.text) == (GROUP, t("zh", "not_lead", team=TEAM_TITLE, cmd="summary"))
    settle()
    assert len(feishu.fake.messages()) == 1 and feishu.fake.calls("im.file.create") == []


@sqlite_only
def test_a_leads_summary_is_answered_at_once_and_the_report_arrives_after_the_slow_summarizer(
    feishu: Feishu,
) -> None:
    feishu.say(ou("zhang"), "对账差错下降至3笔，均已处理。")
    feishu.fake.wait_messages(1)
    slow = SlowSummarizer(SLOW_SUMMARY_S)
    feishu.app.service.summarizer = slow
    sent = time.monotonic()
    feishu.say(ou("wang"), "@_user_1 /weekly summary", chat_id=GROUP, chat_type="group", mentions=[bot_mention()])
    assert time.monotonic() - sent < 1.5 < 3.0 < SLOW_SUMMARY_S

    wait, report, file = feishu.fake.wait_messages(3, receive_id=GROUP, timeout=SLOW_SUMMARY_S + 10)
    assert (wait.msg_type, wait.text) == ("text", t("zh", "summary_wait", cycle=CYCLE))
    assert len(slow.started) == 1 and slow.started[0] >= sent
    [report_call] = feishu.fake.calls("im.message.create")[-2:-1]
    assert report_call.at - sent >= SLOW_SUMMARY_S
    feishu.app.service.summarizer = None  # the same report again, offline and at once
    expected = ChatBot(feishu.app.service).report_replies(feishu.app.service.report(feishu.app.service.team("clearing")))
    assert expected[0].file is not None
    assert (report.msg_type, report.text) == ("interactive", expected[0].text.rstrip("\n"))
    assert report.text.startswith(f"{TEAM_TITLE} {CYCLE} 周报预览。")
    assert report.buttons == [("编辑", {"action": "edit", "value": f"clearing:{CYCLE}"}),
                              ("重新生成", {"action": "regenerate", "value": f"clearing:{CYCLE}"}),
                              ("发布", {"action": "publish", "value": expected[0].buttons[2].value})]
    assert file.msg_type == "file"
    assert feishu.fake.files[file.content["file_key"]] == expected[0].file


# -- card buttons --------------------------------------------------------------------------------
def test_an_owner_of_two_sections_gets_a_card_and_pressing_a_button_assigns(feishu: Feishu) -> None:
    feishu.say(ou("li"), "招商银行直连联调完成")
    [card] = feishu.fake.wait_messages(1)
    [update] = feishu.updates()
    assert update.section_key is None
    assert (card.msg_type, card.text) == ("interactive", t("zh", "choose_section"))
    assert card.buttons == [("结算通道", {"action": "assign", "value": f"{update.id}:settlement"}),
                            ("O1 业务服务", {"action": "assign", "value": f"{update.id}:o1_business"})]

    answer = feishu.press(ou("li"), "assign", f"{update.id}:o1_business", chat_id=dm(ou("li")))
    assert feishu.updates()[0].section_key == "o1_business"  # stored before the answer
    elements = answer["card"]["data"]["elements"]
    assert [e["text"]["content"] for e in elements] == [recorded("O1 业务服务", "招商银行直连联调完成")]
    settle()
    assert len(feishu.fake.messages()) == 1  # the confirmation replaced the card; nothing else was sent


@sqlite_only
def test_a_press_that_fails_to_store_is_redelivered_and_then_applied_once(feishu: Feishu) -> None:
    """The assignment and the press's mark are one transaction: a press that could not be stored (the database
    locked by another process) is not marked, so Feishu's redelivery applies it — and a second one is a no-op."""
    import sqlite3

    feishu.say(ou("li"), "招商银行直连联调完成")
    feishu.fake.wait_messages(1)
    [update] = feishu.updates()
    event = {"operator": {"open_id": ou("li")}, "token": "c-fake",
             "action": {"tag": "button", "value": {"action": "assign", "value": f"{update.id}:o1_business"}},
             "host": "im_message", "context": {"open_message_id": "om_card000001", "open_chat_id": dm(ou("li"))}}
    press = envelope("card.action.trigger", event, event_id="ev_press_locked")
    db = feishu.app.store.engine.url.database
    assert db
    blocker = sqlite3.connect(db, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        status, _ = feishu.post(press)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert status == 500  # not stored, not marked: Feishu delivers it again
    assert feishu.updates()[0].section_key is None
    for _ in range(2):
        status, _ = feishu.post(press)
        assert status == 200
    assert feishu.updates()[0].section_key == "o1_business"
    assert [r.action for r in feishu.app.store.revisions(update_id=update.id)].count("assign") == 1


@sqlite_only
def test_publish_sends_the_report_to_the_publish_chat(feishu: Feishu) -> None:
    feishu.say(ou("zhang"), "对账差错3笔")
    feishu.fake.wait_messages(1)
    team = feishu.app.service.team("clearing")
    [preview] = ChatBot(feishu.app.service).report_replies(feishu.app.service.report(team), "wang")
    assert feishu.press(ou("wang"), "publish", preview.buttons[2].value, chat_id=dm(ou("wang"))) == {}
    title, file = feishu.fake.wait_messages(2, receive_id=PUBLISH_CHAT)
    assert (title.receive_id_type, title.text) == ("chat_id", f"{TEAM_TITLE} {CYCLE}")
    name, content = feishu.fake.files[file.content["file_key"]]
    assert name == f"clearing-{CYCLE}.md" and content.startswith(f"# {CYCLE}\n") and "对账差错3笔" in content
    feishu.fake.wait_messages(2, receive_id=dm(ou("wang")))
    assert feishu.texts(dm(ou("wang"))) == [t("zh", "published", targets=f"#{PUBLISH_CHAT}"),
                                           t("zh", "publish_unreachable", targets="#C0WEEKLY01")]  # no Slack here


# -- sending -------------------------------------------------------------------------------------
@sqlite_only
def test_the_sender_dms_members_by_open_id_or_email_and_raises_send_error(feishu: Feishu) -> None:
    sender = feishu.edge.sender
    assert sender.platform == "feishu"
    assert [sender.can_reach(m) for m in ("wang", "ma", "zhou", "ghost")] == [True, True, True, False]
    sender.send("wang", Reply("提醒：周报将在 10-17 18:00 截止"))
    sender.send("zhou", Reply("提醒"))
    sender.send("zhou", Reply("再次提醒"))
    assert [c.params["emails"] for c in feishu.fake.calls("contact.user.batch_get_id")] == [["zhou@example.com"]]
    assert [(m.receive_id_type, m.receive_id, m.text) for m in feishu.fake.messages()] == [
        ("open_id", ou("wang"), "提醒：周报将在 10-17 18:00 截止"), ("open_id", ZHOU, "提醒"), ("open_id", ZHOU, "再次提醒")]
    with pytest.raises(SendError):
        sender.send("lost", Reply("hi"))  # an email Feishu does not know
    with pytest.raises(SendError):
        sender.send("ghost", Reply("hi"))
    feishu.fake.fail("im.message.create", status=500, code=1, times=3)
    with pytest.raises(SendError):
        sender.send("wang", Reply("hi"))


@sqlite_only
def test_a_rate_limit_is_waited_out_and_the_message_sent_once(feishu: Feishu) -> None:
    feishu.fake.fail("im.message.create", headers={"x-ogw-ratelimit-reset": "1"})
    feishu.edge.sender.send("wang", Reply("提醒", buttons=(Button("好", "noop", "1"),)))
    limited, delivered = feishu.fake.calls("im.message.create")
    assert (limited.status, delivered.status) == (429, 200)
    assert delivered.at - limited.at >= 1.0
    assert limited.params["uuid"] == delivered.params["uuid"]  # Feishu sends a uuid once


@sqlite_only
def test_tick_prompts_a_member_with_only_a_feishu_id_through_feishu(make_app: Callable[..., App],
                                                                     fake: FakeFeishuApi) -> None:
    with FakeSlackApi() as slack:
        app = make_app(FixedClock(OPEN_CYCLE), slack_bot_token="xoxb-1234-5678-test", slack_api_url=slack.api_url,
                       **feishu_settings(fake))
        senders = build_senders(app)
        assert [s.platform for s in senders] == ["slack", "feishu"]
        sent = tick(app.service, senders, at("2024-10-14 10:00"))
    by = {s.due.member: (s.platform, s.ok) for s in sent if s.due.kind == "prompt"}
    assert by["ma"] == ("feishu", True) and by["zhang"] == ("slack", True)
    # 周婷 is in the team file by email only, which Slack does not know: Feishu reaches her instead
    assert by["zhou"] == ("feishu", True)
    assert sorted(m.receive_id for m in fake.messages()) == sorted([ou("ma"), ZHOU])
    assert fake.messages()[0].text.startswith(f"马丽你好，{TEAM_TITLE} {CYCLE} 开始收集了。请回复【运维】")


# -- serve, socket, check ------------------------------------------------------------------------
def _feishu_env(monkeypatch: pytest.MonkeyPatch, fake: FakeFeishuApi) -> None:
    for name, value in feishu_settings(fake).items():
        monkeypatch.setenv(name.upper(), value)


def _recording_clock(clocks: list[list[str]]) -> Callable[[App, list[Any]], Callable[[], None]]:
    """A stand-in for the background scheduler that notes which platforms it was given."""

    def start(app: App, senders: list[Any]) -> Callable[[], None]:
        clocks.append([s.platform for s in senders])
        return lambda: None

    return start


@sqlite_only
def test_serve_with_only_feishu_configured_answers_on_feishu_events(
    team_file: Path, prepared_db: str, fake: FakeFeishuApi, monkeypatch: pytest.MonkeyPatch,
) -> None:
    import handlers.clock
    import handlers.web

    _feishu_env(monkeypatch, fake)
    clocks: list[list[str]] = []
    monkeypatch.setattr(handlers.clock, "start_background_clock", _recording_clock(clocks))
    served: list[tuple[int, str]] = []

    def serve_briefly(web: Starlette, *, port: int, host: str = "0.0.0.0") -> None:
        body = json.dumps({"encrypt": encrypt(json.dumps({"challenge": "c1", "token": VERIFICATION_TOKEN,
                                                          "type": "url_verification"}))})
        with running(web) as url:
            served.append(http("POST", url + "/feishu/events", body, {"Content-Type": "application/json"}))

    monkeypatch.setattr(handlers.web, "run_server", serve_briefly)
    assert main(["serve", "--config", str(team_file), "--db", prepared_db]) == 0
    assert (served, clocks) == ([(200, '{"challenge":"c1"}')], [["feishu"]])


@sqlite_only
def test_serve_and_socket_name_the_missing_feishu_variables(
    team_file: Path, prepared_db: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("FEISHU_APP_ID", APP_ID)
    args = ["--config", str(team_file), "--db", prepared_db]
    assert main(["serve", *args]) == 2
    assert capsys.readouterr().err.strip() == (
        "weekly-bot: error: Feishu over HTTP needs FEISHU_APP_ID, FEISHU_APP_SECRET, FEISHU_VERIFICATION_TOKEN and "
        "FEISHU_ENCRYPT_KEY: FEISHU_APP_SECRET, FEISHU_VERIFICATION_TOKEN, FEISHU_ENCRYPT_KEY are not set")
    assert main(["socket", *args]) == 2
    assert capsys.readouterr().err.strip() == (
        "weekly-bot: error: The Feishu long connection needs FEISHU_APP_ID and FEISHU_APP_SECRET: "
        "FEISHU_APP_SECRET is not set")


@sqlite_only
def test_socket_runs_the_feishu_long_connection_and_slack_socket_mode_together(
    team_file: Path, prepared_db: str, fake: FakeFeishuApi, monkeypatch: pytest.MonkeyPatch,
) -> None:
    import handlers.clock
    import handlers.feishu.app
    import handlers.slack.app

    _feishu_env(monkeypatch, fake)
    with FakeSlackApi() as slack:
        for name, value in {"SLACK_BOT_TOKEN": "xoxb-1234-5678-test", "SLACK_APP_TOKEN": "xapp-1-A0APP-1-abc",
                            "SLACK_API_URL": slack.api_url}.items():
            monkeypatch.setenv(name, value)
        ran: dict[str, str] = {}
        slack_ran = threading.Event()
        clocks: list[list[str]] = []

        def slack_socket_mode(edge: Any, token: str) -> None:
            ran["slack"] = threading.current_thread().name
            slack_ran.set()

        def feishu_long_connection(edge: Any) -> None:
            slack_ran.wait(5)
            ran["feishu"] = threading.current_thread().name

        monkeypatch.setattr(handlers.clock, "start_background_clock", _recording_clock(clocks))
        monkeypatch.setattr(handlers.slack.app, "run_socket_mode", slack_socket_mode)
        monkeypatch.setattr(handlers.feishu.app, "run_long_connection", feishu_long_connection)
        assert main(["socket", "--config", str(team_file), "--db", prepared_db]) == 0
    assert ran == {"slack": "slack-connection", "feishu": "MainThread"}
    assert clocks == [["slack", "feishu"]]


def _over_the_long_connection(make_app: Callable[..., App], fake: FakeFeishuApi, n: int) -> Any:
    """An edge built for the long connection, given zhang's DM 对账差错3笔 as lark.ws.Client hands an event
    frame's payload on (no HTTP checks); the edge."""
    app = make_app(FixedClock(OPEN_CYCLE), feishu_app_id=APP_ID, feishu_app_secret=APP_SECRET,
                   feishu_domain=fake.domain)
    edge = build_feishu(app, long_connection=True)
    event = envelope("im.message.receive_v1", message_event(ou("zhang"), "对账差错3笔", message_id=f"om_ws00000{n}"),
                     event_id=f"ev_ws00000{n}", token="")
    edge.dispatcher._do_without_validation(json.dumps(event, ensure_ascii=False).encode())
    return edge


@sqlite_only
def test_the_long_connection_dispatches_the_same_handlers_without_the_http_checks(
    make_app: Callable[..., App], fake: FakeFeishuApi,
) -> None:
    _over_the_long_connection(make_app, fake, 1)
    [sent] = fake.wait_messages(1)
    assert (sent.receive_id, sent.text) == (dm(ou("zhang")), recorded("清分对账", "对账差错3笔"))


@sqlite_only
def test_stopping_the_long_connection_sends_the_replies_its_answers_left_first(
    make_app: Callable[..., App], fake: FakeFeishuApi,
) -> None:
    fake.fail("im.message.create", headers={"x-ogw-ratelimit-reset": "1"})  # the reply waits a second
    edge = _over_the_long_connection(make_app, fake, 2)
    edge.finish(10.0)  # what `weekly-bot socket` does when it stops: no wait_messages needed after it
    assert [(m.receive_id, m.text) for m in fake.messages()] == [(dm(ou("zhang")), recorded("清分对账", "对账差错3笔"))]


def test_the_long_connection_stopped_by_sigterm_sends_the_replies_its_answers_left_first(
        team_file: Path, prepared_db: str, fake: FakeFeishuApi, tmp_path: Path) -> None:
    """A real `weekly-bot socket` on Feishu's long connection (the fake's WebSocket, reached through the
    open API's endpoint call as lark-oapi does): a DM it answered, whose reply Feishu holds back (rate
    limited, reset in 2 s), is still sent, once, when SIGTERM stops it, and the process exits 0. (Without
    the SIGTERM handler it died at once with -15; that a reply still waiting for its turn is sent too is
    shown in process above, by finish().)"""
    from tests.fakes.feishu_socket import FakeLongConnection

    with FakeLongConnection() as ws:
        fake.ws_url = ws.url
        fake.fail("im.message.create", headers={"x-ogw-ratelimit-reset": "2"})
        env = {"WEEKLY_CONFIG": str(team_file), "DATABASE_URL": prepared_db, "FEISHU_APP_ID": APP_ID,
               "FEISHU_APP_SECRET": APP_SECRET, "FEISHU_DOMAIN": fake.domain}
        with socket_process(env, tmp_path) as socket:
            assert ws.connected.wait(30), socket.log.read_text()
            frame = ws.send_event(envelope("im.message.receive_v1",
                                           message_event(ou("zhang"), "对账差错3笔", message_id="om_wsstop001"),
                                           event_id="ev_wsstop001", token=""))
            assert ws.wait_answer(frame) == 200
            [held_back] = fake.wait_for("im.message.create", timeout=10)
            assert held_back.status == 429
            took = socket.stop()
    sent = [(m.receive_id, m.text) for m in fake.messages()]  # (the process reads today's date: this week's cycle)
    assert len(sent) == 1 and 1.0 < took < 20, (sent, took)
    assert sent[0][0] == dm(ou("zhang")) and sent[0][1].startswith("已记录到【清分对账】") and "对账差错3笔" in sent[0][1]
    socket.clean_log()


@sqlite_only
def test_the_long_connection_answers_a_card_frame_with_the_callbacks_card(
    make_app: Callable[..., App], fake: FakeFeishuApi,
) -> None:
    import asyncio

    from lark_oapi.ws.pb.pbbp2_pb2 import Frame

    app = make_app(FixedClock(OPEN_CYCLE), feishu_app_id=APP_ID, feishu_app_secret=APP_SECRET,
                   feishu_domain=fake.domain)
    update = app.service.record("li", "招商银行直连联调完成", platform="feishu", message_id="om_ws000002").update
    client = long_connection_client(build_feishu(app, long_connection=True))
    press = {"operator": {"open_id": ou("li")}, "action": {"tag": "button", "value": {
        "action": "assign", "value": f"{update.id}:settlement"}}, "context": {"open_chat_id": dm(ou("li"))}}
    frame = Frame(SeqID=1, LogID=1, service=1, method=1,
                  payload=json.dumps(envelope("card.action.trigger", press, event_id="ev_ws000002", token="")).encode())
    for key, value in {"type": "card", "message_id": "m1", "sum": "1", "seq": "0", "trace_id": "t1"}.items():
        frame.headers.add(key=key, value=value)
    written: list[bytes] = []

    async def write(data: bytes) -> None:
        written.append(data)

    client._write_message = write
    loop = asyncio.new_event_loop()  # not asyncio.run: that would unset this thread's event loop
    try:
        loop.run_until_complete(client._handle_data_frame(frame))
    finally:
        loop.close()
    answer = json.loads(Frame.FromString(written[0]).payload)
    card = json.loads(base64.b64decode(answer["data"]))["card"]["data"]
    assert answer["code"] == 200
    assert [e["text"]["content"] for e in card["elements"]] == [recorded("结算通道", "招商银行直连联调完成")]
    assert app.store.get_update(update_id=update.id).section_key == "settlement"


def test_check_asks_feishu_for_a_tenant_access_token(team_file: Path, fake: FakeFeishuApi, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    _feishu_env(monkeypatch, fake)
    args = ["check", "--config", str(team_file), "--db", f"sqlite:///{tmp_path / 'c.db'}"]
    assert main(args) == 0
    assert (f"ok  Feishu: app {APP_ID} accepted (tenant_access_token issued; HTTP and long connection)"
            in capsys.readouterr().out)
    monkeypatch.setenv("FEISHU_APP_SECRET", "not-the-secret")
    assert main(args) == 1
    assert ("FAIL Feishu: the app id or secret was refused (tenant_access_token: code 10014: app secret invalid)"
            in capsys.readouterr().out)
    monkeypatch.setenv("FEISHU_DOMAIN", "http://127.0.0.1:9")  # nothing listens there
    assert main(args) == 1
    assert "FAIL Feishu: cannot reach http://127.0.0.1:9 (tenant_access_token: ConnectionError)" in capsys.readouterr().out
    assert [c.method for c in fake.calls()] == ["auth.tenant_access_token", "auth.tenant_access_token"]


# -- the small pieces ----------------------------------------------------------------------------
def test_the_gate_refuses_replays_and_accepts_feishus_own_requests() -> None:
    gate = RequestGate(encrypt_key=ENCRYPT_KEY, verification_token=VERIFICATION_TOKEN, now=lambda: 1_728_957_600.0)
    plain = envelope("im.message.receive_v1", {}, event_id="ev1")
    body = json.dumps({"encrypt": encrypt(json.dumps(plain))})
    assert gate.check(sign(body, timestamp=1_728_957_600 - 299), body.encode()) == plain
    with pytest.raises(Refused, match="away from now"):
        gate.check(sign(body, timestamp=1_728_957_600 + 301), body.encode())


def test_classify_reads_dms_and_group_commands_that_mention_the_bot() -> None:
    from lark_oapi.api.im.v1 import P2ImMessageReceiveV1

    def classified(event: dict[str, Any]) -> Any:
        data = P2ImMessageReceiveV1(envelope("im.message.receive_v1", event, event_id="ev1"))
        return classify(data.event, lambda: BOT_OPEN_ID)

    zhang = ou("zhang")
    person = {"key": "@_user_2", "id": {"open_id": ou("wang")}, "name": "王芳"}
    dm_ = classified(message_event(zhang, "和 @_user_2 对齐了方案", message_id="om1", mentions=[person]))
    assert (dm_.kind, dm_.text, dm_.group) == ("message", "和 @王芳 对齐了方案", False)
    assert classified(message_event(zhang, " /weekly  show", message_id="om2")).text == "show"
    group = classified(message_event(zhang, "@_user_1 status", message_id="om3", chat_id=GROUP, chat_type="group",
                                     mentions=[bot_mention()]))
    assert (group.kind, group.text, group.chat_id, group.group) == ("command", "status", GROUP, True)
    assert classified(message_event(zhang, "@_user_2 看一下", message_id="om4", chat_id=GROUP, chat_type="group",
                                    mentions=[person])) is None
    assert classified(message_event(zhang, "x", message_id="om5", sender_type="app")) is None


def test_rich_text_becomes_plain_lines_and_cards_carry_action_and_value() -> None:
    post = {"title": "周报", "content": [[{"tag": "text", "text": "完成 "}, {"tag": "a", "text": "方案", "href": "x"}],
                                        [{"tag": "img", "image_key": "img_1"}, {"tag": "text", "text": "第二行"}]]}
    assert message_text("post", json.dumps(post)) == "周报\n完成 方案\n第二行"
    assert message_text("image", json.dumps({"image_key": "img_1"})) == ""
    card = card_for(Reply("一行字\n" * 1000, buttons=(Button("A", "assign", "1:a"),)))
    texts = [e["text"]["content"] for e in card["elements"] if e["tag"] == "div"]
    assert len(texts) == 2 and all(len(x) <= 2000 for x in texts)
    assert card["elements"][-1]["actions"][0]["value"] == {"action": "assign", "value": "1:a"}


# -- forged, malformed and huge requests (spec §9) -------------------------------------------------
@sqlite_only
def test_malformed_signed_events_get_400_and_forged_ones_401(feishu: Feishu, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    good = message_event(ou("zhang"), "对账差错3笔", message_id="om_bad0001")
    broken_text = {**good, "message": {**good["message"], "content": 7}}
    broken_sender = {**good, "sender": "ou_x"}
    card = {"operator": {"open_id": ou("wang")}, "action": {"value": "publish"}, "context": {}}
    cases = [
        envelope("im.message.receive_v1", None, event_id="ev_bad1"),  # type: ignore[arg-type]
        {k: v for k, v in envelope("im.message.receive_v1", good, event_id="ev_bad2").items() if k != "schema"},
        envelope("im.message.receive_v1", broken_text, event_id="ev_bad3"),
        envelope("im.message.receive_v1", broken_sender, event_id="ev_bad4"),
        envelope("card.action.trigger", card, event_id="ev_bad5"),
        envelope("im.message.recalled_v1", {"message_id": ["om_1"]}, event_id="ev_bad6"),
    ]
    assert [feishu.post(plain)[0] for plain in cases] == [400] * len(cases)
    forged = [
        feishu.post(envelope("im.message.receive_v1", good, event_id="ev_f1"), signed=lambda b: {}),
        feishu.post_body("[" * 200_000 + "]" * 200_000, {}),
        feishu.post_body('{"encrypt": "!!!"', {}),
        feishu.post(envelope("im.message.receive_v1", good, event_id="ev_f2"), key="another key"),
    ]
    assert [status for status, _ in forged] == [401] * 4
    assert feishu.updates() == [] and feishu.fake.messages() == []
    assert not [r for r in caplog.records if r.exc_info], "no traceback in the log"
    from .test_slack import _raw_post

    # a body that says it is over 1 MiB is refused on its word, before a byte of it is read
    assert _raw_post(feishu.url + "/feishu/events", {"Content-Type": "application/json",
                                                     "Content-Length": str(1024 * 1024 + 1)}, b"{}") == 413


@sqlite_only
def test_a_client_hanging_up_mid_body_leaves_no_traceback(feishu: Feishu) -> None:
    from .test_slack import hang_up_mid_body

    seen = hang_up_mid_body(feishu.url + "/feishu/events")
    assert [r.getMessage() for r in seen if r.exc_info or r.levelno >= logging.ERROR] == []
    assert feishu.updates() == []


@sqlite_only
def test_a_burst_of_dms_is_stored_and_confirmed_once_each(feishu: Feishu) -> None:
    """Group commit (issue 13): DMs arriving at once, while SQLite's write lock is held elsewhere for a
    moment, are applied together; each is stored once, answered 200, and confirmed once."""
    import sqlite3
    import threading
    from concurrent.futures import ThreadPoolExecutor

    texts = [f"第{n}项：清算对账完成{n}笔。" for n in range(16)]
    plains = [envelope("im.message.receive_v1", message_event(ou("zhang"), x, message_id=f"om_burst{n:04d}"),
                       event_id=f"ev_burst{n:04d}") for n, x in enumerate(texts)]
    holder = sqlite3.connect(str(feishu.app.store.engine.url.database), isolation_level=None,
                             check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    threading.Timer(0.4, holder.rollback).start()
    with ThreadPoolExecutor(len(plains)) as pool:
        statuses = [status for status, _ in pool.map(feishu.post, plains)]
    holder.close()
    assert statuses == [200] * 16
    assert sorted(u.text for u in feishu.updates()) == sorted(texts)
    sent = feishu.fake.wait_messages(16)
    assert sorted(m.text for m in sent) == sorted(recorded("清分对账", x) for x in texts)
    settle()
    assert len(feishu.fake.messages(dm(ou("zhang")))) == 16
