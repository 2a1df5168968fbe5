"""The lead's review on the platforms (issue 11): Slack's modal (views.open, view_submission) and Feishu's
card form drive the same edit; Publish writes a Slack canvas and a Feishu 云文档 once, then in place."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import yaml

from bot.chat import ChatBot
from bot.wiring import App
from handlers.feishu.app import build_feishu
from handlers.slack.app import build_slack
from handlers.web import create_web_app
from tests.conftest import CYCLE, EXAMPLES, OPEN_CYCLE, FixedClock, sqlite_only
from tests.fakes.feishu_api import FakeFeishuApi
from tests.fakes.slack_api import TEAM_ID, FakeSlackApi
from tests.serving import CurrentApp
from tests.test_feishu import PUBLISH_CHAT, Feishu, envelope, feishu_settings, ou
from tests.test_feishu import dm as feishu_dm
from tests.test_slack import SECRET, TOKEN, Slack

pytestmark = sqlite_only
OWNER_TEXT = "对账差错3笔，均已处理。计划下周完成差错自动归因。"


@pytest.fixture
def team_file(tmp_path: Path) -> Path:
    """examples/team.yaml publishing to a channel, a Feishu chat, a 云文档 and a canvas."""
    data = yaml.safe_load((EXAMPLES / "team.yaml").read_text(encoding="utf-8"))
    for key, member in data["members"].items():
        member["feishu"] = ou(key)
    data["teams"][0]["publish"] = {"slack": "C0WEEKLY01", "feishu": PUBLISH_CHAT, "feishu_doc": True,
                                   "slack_canvas": True}
    path = tmp_path / "team.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture
def both(make_app: Callable[..., App], server: tuple[CurrentApp, str]) -> Iterator[tuple[Slack, Feishu]]:
    """One app on both platforms (each with its fake API), served over real HTTP."""
    with FakeSlackApi() as slack_api, FakeFeishuApi() as feishu_api:
        app = make_app(FixedClock(OPEN_CYCLE), slack_bot_token=TOKEN, slack_signing_secret=SECRET,
                       slack_api_url=slack_api.api_url, **feishu_settings(feishu_api))
        slack_edge, feishu_edge = build_slack(app), build_feishu(app)
        current, url = server
        current.web = create_web_app(app, [slack_edge, feishu_edge])
        yield Slack(app, slack_edge, slack_api, url), Feishu(app, feishu_edge, feishu_api, url)
        current.web = None
        slack_edge.finish(5.0)  # as serve does on stopping
        feishu_edge.finish(5.0)


def submit(slack: Slack, user: str, view: dict[str, Any], values: dict[str, str]) -> tuple[int, str]:
    payload = {"type": "view_submission", "user": {"id": user}, "team": {"id": TEAM_ID}, "api_app_id": "A0APP00001",
               "token": "legacy", "trigger_id": "4.5.6",
               "view": {"id": "V0VIEW000001", "type": "modal", "callback_id": view["callback_id"],
                        "private_metadata": view["private_metadata"],
                        "state": {"values": {k: {"text": {"type": "plain_text_input", "value": v}}
                                             for k, v in values.items()}}}}
    return slack.post(urlencode({"payload": json.dumps(payload, ensure_ascii=False)}),
                      "application/x-www-form-urlencoded")


def json_report(app: App) -> dict[str, Any]:
    return app.service.report(app.service.team("clearing"), CYCLE).to_json()


def test_slack_edit_opens_a_prefilled_modal_and_its_submission_is_the_leads_revision(
        both: tuple[Slack, Feishu]) -> None:
    slack, _ = both
    slack.say("U0ZHANG001", OWNER_TEXT)
    slack.fake.wait_for("chat.postMessage")
    assert slack.press("U0ZHANG001", "weekly_edit", f"clearing:{CYCLE}") == 200  # not a lead: nothing opens
    slack.fake.wait_for("respond")
    assert slack.fake.calls("views.open") == []

    assert slack.press("U0WANG0001", "weekly_edit", f"clearing:{CYCLE}") == 200
    [opened] = slack.fake.wait_for("views.open")
    view = json.loads(opened.params["view"]) if isinstance(opened.params["view"], str) else opened.params["view"]
    assert opened.params["trigger_id"] == "1.2.3" and view["callback_id"] == "weekly_form_edit_summary"
    inputs = {b["block_id"]: b["element"] for b in view["blocks"]}
    assert list(inputs) == ["reflections", "next_week"]
    assert all(e["type"] == "plain_text_input" and e["multiline"] for e in inputs.values())
    assert inputs["next_week"]["initial_value"] == "清分对账：完成差错自动归因。（来源：清分对账）"

    status, body = submit(slack, "U0WANG0001", view, {"reflections": " ", "next_week": ""})
    assert status == 200 and json.loads(body)["response_action"] == "errors"
    assert json_report(slack.app)["summary_source"] == "offline"  # the empty form stored nothing

    status, body = submit(slack, "U0WANG0001", view, {
        "reflections": "1. 差错当天清零（来源：清分对账）",
        "next_week": "1. 差错自动归因上线（来源：清分对账、结算通道）\n2. 招商银行直连准备（来源：结算通道）"})
    assert (status, body) == (200, "")
    data = json_report(slack.app)
    assert (data["summary_source"], data["summary_state"], data["edited"]["by"]) == ("edited", "edited", "wang")
    assert data["next_week"] == [{"text": "差错自动归因上线", "sources": ["reconciliation", "settlement"]},
                                 {"text": "招商银行直连准备", "sources": ["settlement"]}]
    [answer] = slack.fake.wait_for("respond", where=lambda c: "差错自动归因上线" in c.params.get("text", ""))
    assert "1. 差错自动归因上线（来源：清分对账、结算通道）" in answer.params["text"]  # the new preview

    status, _ = submit(slack, "U0ZHANG001", view, {"reflections": "篡改（来源：清分对账）", "next_week": ""})
    assert status == 200
    assert json_report(slack.app)["reflections"] == [{"text": "差错当天清零", "sources": ["reconciliation"]}]


def test_feishu_edit_is_a_card_form_and_its_callback_stores_the_revision(both: tuple[Slack, Feishu]) -> None:
    _, feishu = both
    feishu.say(ou("zhang"), OWNER_TEXT)
    feishu.fake.wait_messages(1)
    answer = feishu.press(ou("wang"), "edit", f"clearing:{CYCLE}", chat_id=feishu_dm(ou("wang")))
    card = answer["card"]["data"]
    assert card["schema"] == "2.0"
    [form] = [e for e in card["body"]["elements"] if e["tag"] == "form"]
    inputs = {e["name"]: e for e in form["elements"] if e["tag"] == "input"}
    assert inputs["next_week"]["default_value"] == "清分对账：完成差错自动归因。（来源：清分对账）"
    [button] = [e for e in form["elements"] if e["tag"] == "button"]
    assert button["form_action_type"] == "submit"
    value = button["behaviors"][0]["value"]

    def callback(open_id: str, fields: dict[str, str]) -> None:
        event = {"operator": {"open_id": open_id}, "token": "c-fake",
                 "action": {"tag": "button", "value": value, "form_value": fields, "name": "submit"},
                 "host": "im_message", "context": {"open_message_id": "om_card000002",
                                                   "open_chat_id": feishu_dm(open_id)}}
        status, _ = feishu.post(envelope("card.action.trigger", event, event_id=feishu.next_id("ev")))
        assert status == 200

    callback(ou("zhang"), {"reflections": "篡改（来源：清分对账）", "next_week": ""})  # not a lead
    callback(ou("wang"), {"reflections": "差错当天清零（来源：清分对账）", "next_week": "差错自动归因上线（来源：清分对账）"})
    feishu.fake.wait_messages(2, receive_id=feishu_dm(ou("wang")))
    data = json_report(feishu.app)
    assert (data["summary_source"], data["edited"]["by"]) == ("edited", "wang")
    assert data["reflections"] == [{"text": "差错当天清零", "sources": ["reconciliation"]}]


def test_publish_writes_the_canvas_and_the_document_once_then_updates_them_in_place(
        both: tuple[Slack, Feishu]) -> None:
    slack, feishu = both
    app = slack.app
    team = app.service.team("clearing")
    slack.say("U0ZHANG001", OWNER_TEXT)
    slack.fake.wait_for("chat.postMessage")

    def publish_button() -> str:
        return ChatBot(app.service).report_replies(app.service.report(team, draft_unless_reviewed=True), "wang")[-1] \
            .buttons[2].value

    first = publish_button()
    for n in range(2):  # pressed twice: posted once
        assert slack.press("U0WANG0001", "weekly_publish", first) == 200
        slack.fake.wait_for("respond", count=n + 1)
    assert len(slack.fake.calls("canvases.create")) == 1
    assert [u.channel for u in slack.fake.uploads()] == ["C0WEEKLY01"]
    slack.fake.clear()
    assert [c.method for c in feishu.fake.calls() if c.method == "docx.create"] == ["docx.create"]
    [doc] = list(feishu.fake.documents)
    assert "1. 清分对账：完成差错自动归因。（来源：清分对账）" in feishu.fake.document_text(doc)
    canvas_id = app.store.document(cycle_id=app.store.find_cycle(team_key="clearing", label=CYCLE).id,  # type: ignore[union-attr]
                                   target="slack_canvas")
    assert canvas_id is not None and canvas_id[0].startswith("F0CANVAS")
    assert [m.receive_id for m in feishu.fake.messages(PUBLISH_CHAT)] == [PUBLISH_CHAT, PUBLISH_CHAT]  # text + file

    app.service.edit_summary(team, CYCLE, "wang", "差错当天清零（来源：清分对账）", "差错自动归因上线（来源：清分对账）")
    second = publish_button()
    assert second != first
    assert slack.press("U0WANG0001", "weekly_publish", second) == 200
    slack.fake.wait_for("respond")
    assert slack.fake.calls("canvases.create") == []
    [edit] = slack.fake.calls("canvases.edit")
    assert edit.params["canvas_id"] == canvas_id[0]
    assert [c.method for c in feishu.fake.calls() if c.method == "docx.create"] == ["docx.create"]  # still one
    assert list(feishu.fake.documents) == [doc]
    text = feishu.fake.document_text(doc)
    assert "1. 差错自动归因上线（来源：清分对账）" in text and "1. 清分对账：完成差错自动归因。（来源：清分对账）" not in text


def test_cli_publish_posts_the_last_preview_once(both: tuple[Slack, Feishu], team_file: Path, prepared_db: str,
                                                  capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.cli import main

    slack, feishu = both
    slack.say("U0ZHANG001", OWNER_TEXT)
    slack.fake.wait_for("chat.postMessage")
    ChatBot(slack.app.service).report_replies(slack.app.service.report(slack.app.service.team("clearing")), "wang")
    for name, value in {"SLACK_BOT_TOKEN": TOKEN, "SLACK_API_URL": slack.fake.api_url,
                        **{k.upper(): v for k, v in feishu_settings(feishu.fake).items()}}.items():
        monkeypatch.setenv(name, value)
    argv = ["publish", "--config", str(team_file), "--db", prepared_db, "--cycle", CYCLE]
    assert main(argv) == 0
    assert capsys.readouterr().out.splitlines() == [
        "published to slack:C0WEEKLY01", f"published to feishu:{PUBLISH_CHAT}", "published to feishu_doc",
        "published to slack_canvas", f"document: https://feishu.cn/docx/{next(iter(feishu.fake.documents))}"]
    assert main(argv) == 0
    assert capsys.readouterr().out.splitlines()[0] == "already published to slack:C0WEEKLY01: not posted again"
    assert [u.channel for u in slack.fake.uploads()] == ["C0WEEKLY01"]
