"""The use-cases on SQLite and PostgreSQL: answers, skips, status, import → report, JSON shapes."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.errors import UserError
from bot.service import NeedsSection, Recorded
from bot.wiring import App

from .conftest import EXAMPLES, FixedClock, at

W40 = EXAMPLES / "report-2024-W40.md"
W39 = EXAMPLES / "report-2024-W39.md"


def owner_lines(markdown: str) -> list[str]:
    """The owners' lines of a report: everything but the title, Created and the closing sections."""
    body = re.split(r"^#{1,2} (?:收获与反思|下周工作及目标)", markdown, flags=re.M)[0]
    return [ln for ln in body.splitlines() if ln.strip() and not ln.startswith(("# ", "Created:"))]


def test_import_then_report_loses_no_owner_line(make_app: Callable[..., App]) -> None:
    app = make_app()
    team = app.service.team(None)
    result = app.service.import_reports([str(W39), str(W40)], team=team)
    assert result.cycles == ["2024-W39", "2024-W40"]
    assert result.warnings == []
    report = app.service.report(team, "2024-W40", summarize=False)
    original = W40.read_text(encoding="utf-8")
    assert report.markdown.startswith("# 2024-W40\n\nCreated: 2024年10月10日 18:05\n")  # as imported
    assert owner_lines(report.markdown) == owner_lines(original)
    assert report.summary_source == "none"
    assert "## 收获与反思" not in report.markdown
    assert report.markdown == original.split("\n## 收获与反思")[0].rstrip("\n") + "\n"


def test_imported_report_keeps_its_closing_sections_as_history(make_app: Callable[..., App]) -> None:
    app = make_app()
    team = app.service.team(None)
    app.service.import_reports([str(W40)], team=team)
    report = app.service.report(team, "2024-W40")
    assert report.summary_source == "imported"
    assert [i.sources for i in report.summary.next_week] == [  # type: ignore[union-attr]
        ("settlement",), ("risk",), ("incidents",), ("o1_business",)]
    cycle = app.service.timeline(team).by_label("2024-W41")
    goals = app.service.previous_goals(team, cycle)
    assert goals[0].text == "招商银行直连上线准备：完成生产环境切换演练和回滚预案。"


def test_report_json_has_the_spec_shape_and_team_file_order(make_app: Callable[..., App]) -> None:
    app = make_app()
    team = app.service.team(None)
    app.service.import_reports([str(W40)], team=team)
    data = app.service.report(team, "2024-W40", summarize=True).to_json()
    assert list(data) == ["team", "cycle", "title", "sections", "reflections", "next_week", "summary_source",
                          "summary_state", "edited",
                          "markdown"]
    assert (data["team"], data["cycle"], data["title"], data["summary_source"]) == (
        "clearing", "2024-W40", "支付清算中心周报", "offline")
    assert [s["key"] for s in data["sections"]] == [s.key for s in team.sections]
    assert set(data["sections"][0]) == {"key", "title", "state", "content"}
    assert data["sections"][0]["content"].startswith("1. 通道数据：\n    - 本周处理交易3120笔")
    assert data["reflections"] and data["next_week"]
    keys = {s.key for s in team.sections}
    for item in data["reflections"] + data["next_week"]:
        assert set(item) == {"text", "sources"} and item["sources"] and set(item["sources"]) <= keys
    assert "## 收获与反思" in data["markdown"] and "# 下周工作及目标" in data["markdown"]
    json.dumps(data, ensure_ascii=False)


def test_unknown_title_becomes_an_extra_section_with_a_warning(make_app: Callable[..., App], tmp_path: Path) -> None:
    app = make_app()
    team = app.service.team(None)
    text = W40.read_text(encoding="utf-8").replace("- 【其他】", "- 【团队建设】")
    path = tmp_path / "w40.md"
    path.write_text(text, encoding="utf-8")
    result = app.service.import_reports([str(path)], team=team)
    assert result.warnings == [f"{path}: section 【团队建设】 is not in the team file: kept as an extra section"]
    report = app.service.report(team, "2024-W40", summarize=False)
    assert report.sections[-1].title == "团队建设"
    assert report.sections[-1].content == "1. 10月12日（周六）调休上班，值班表已更新。\n2. 新同事2人入职，分别加入风控与网关小组。"
    assert [s.state for s in report.sections if s.key == "other"] == ["missing"]
    assert owner_lines(report.markdown)[-3:] == ["- 【团队建设】", "    1. 10月12日（周六）调休上班，值班表已更新。",
                                                 "    2. 新同事2人入职，分别加入风控与网关小组。"]


def test_reimporting_the_same_report_does_not_double(make_app: Callable[..., App]) -> None:
    app = make_app()
    team = app.service.team(None)
    app.service.import_reports([str(W40)], team=team)
    app.service.import_reports([str(W40)], team=team)
    report = app.service.report(team, "2024-W40", summarize=False)
    assert owner_lines(report.markdown) == owner_lines(W40.read_text(encoding="utf-8"))


def test_the_progress_callback_hears_of_every_report_once_it_is_written(make_app: Callable[..., App]) -> None:
    app = make_app()
    team = app.service.team(None)
    heard: list[tuple[int, int, str, list[str]]] = []

    def progress(done: int, total: int, cycle: str) -> None:
        heard.append((done, total, cycle, sorted(app.store.cycle_labels(team_key="clearing"))))

    app.service.import_reports([str(W39), str(W40)], team=team, progress=progress)
    assert heard == [(1, 2, "2024-W39", ["2024-W39"]), (2, 2, "2024-W40", ["2024-W39", "2024-W40"])]


def test_reimporting_a_changed_report_revises_only_what_changed(make_app: Callable[..., App],
                                                                tmp_path: Path) -> None:
    app = make_app()
    team = app.service.team(None)
    original = W40.read_text(encoding="utf-8").replace("- 【其他】", "- 【团队建设】")
    path = tmp_path / "w40.md"
    path.write_text(original, encoding="utf-8")
    app.service.import_reports([str(path)], team=team)
    path.write_text(original.replace("对账差错下降至3笔", "对账差错下降至4笔"), encoding="utf-8")
    again = app.service.import_reports([str(path)], team=team)
    assert (again.cycles, again.sections) == (["2024-W40"], 8)
    cycle = app.store.find_cycle(team_key="clearing", label="2024-W40")
    assert cycle is not None and cycle.imported and cycle.created_text == "2024年10月10日 18:05"
    updates = {u.section_key: u for u in app.store.updates(cycle_id=cycle.id)}
    assert len(updates) == 8 and {u.member_key for u in updates.values()} == {"(import)"}
    recon = updates["reconciliation"]
    assert recon.text.startswith("1. 对账差错下降至4笔（上周7笔）")
    assert [(r.number, r.action, r.text[:12]) for r in app.store.revisions(update_id=recon.id)] == [
        (1, "create", "1. 对账差错下降至3笔"), (2, "edit", "1. 对账差错下降至4笔")]
    assert [r.action for r in app.store.revisions(update_id=updates["settlement"].id)] == ["create"]
    report = app.service.report(team, "2024-W40")
    assert [s.title for s in report.sections].count("团队建设") == 1  # the extra section, not doubled
    assert report.summary_source == "imported"
    assert len(app.store.summary_revisions(cycle_id=cycle.id)) == 1


def test_a_section_written_twice_in_one_report_keeps_the_later_text_as_an_edit(
        make_app: Callable[..., App], tmp_path: Path) -> None:
    app = make_app()
    team = app.service.team(None)
    path = tmp_path / "w40.md"
    path.write_text("# 2024-W40\n\n- 【清分对账】\n    1. 初稿。\n- 【支付网关】\n    1. 可用性99.99%。\n"
                    "- 【清分对账】\n    1. 终稿。\n", encoding="utf-8")
    result = app.service.import_reports([str(path)], team=team)
    assert result.sections == 3
    cycle = app.store.find_cycle(team_key="clearing", label="2024-W40")
    assert cycle is not None
    updates = {u.section_key: u for u in app.store.updates(cycle_id=cycle.id)}
    assert sorted(updates) == ["gateway", "reconciliation"]
    assert [(r.action, r.text) for r in app.store.revisions(update_id=updates["reconciliation"].id)] == [
        ("create", "1. 初稿。"), ("edit", "1. 终稿。")]


@pytest.mark.parametrize(("content", "expected"), [
    (b"", "the file is empty"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00IHDR", "a binary file, not a Markdown report"),
    (b"just some notes\nwith no sections\n", "No report section found"),
])
def test_bad_imports_change_nothing(make_app: Callable[..., App], tmp_path: Path, content: bytes,
                                    expected: str) -> None:
    app = make_app()
    team = app.service.team(None)
    bad = tmp_path / "bad.md"
    bad.write_bytes(content)
    with pytest.raises(UserError) as info:
        app.service.import_reports([str(W40), str(bad)], team=team)
    assert str(info.value).startswith(f"{bad}: ")
    assert expected in str(info.value)
    assert app.store.cycle_labels(team_key="clearing") == []


def test_import_without_a_cycle_needs_one(make_app: Callable[..., App], tmp_path: Path) -> None:
    app = make_app()
    team = app.service.team(None)
    path = tmp_path / "untitled.md"
    path.write_text(W40.read_text(encoding="utf-8").replace("# 2024-W40", "# 周报"), encoding="utf-8")
    with pytest.raises(UserError, match=r"no cycle in its title \(like '# 2024-W40'\): pass --cycle"):
        app.service.import_reports([str(path)], team=team)
    assert app.store.cycle_labels(team_key="clearing") == []
    app.service.import_reports([str(path)], team=team, label="2024-W40")
    assert app.store.cycle_labels(team_key="clearing") == ["2024-W40"]


def test_national_day_status_shows_the_shifted_times(make_app: Callable[..., App]) -> None:
    app = make_app(FixedClock(at("2024-10-09 12:00")))
    team = app.service.team(None)
    # merge_short_weeks: 3 — W40 has one workday (Mon 09-30), so W40 and W41 are one cycle
    w40 = app.service.status(team, "2024-W40").to_json()
    assert (w40["cycle"], w40["weeks"]) == ("2024-W40&W41", ["2024-W40", "2024-W41"])
    assert (w40["opens_at"], w40["deadline"]) == ("2024-10-08T10:00:00+08:00", "2024-10-10T18:00:00+08:00")
    current = app.service.status(team).to_json()
    assert (current["cycle"], current["opens_at"], current["deadline"]) == (
        "2024-W40&W41", "2024-10-08T10:00:00+08:00", "2024-10-10T18:00:00+08:00")
    assert current["sections"][0] == {"key": "settlement", "title": "结算通道", "owners": ["li"], "state": "missing"}


def test_answers_skip_and_edit(make_app: Callable[..., App]) -> None:
    clock = FixedClock(at("2024-10-15 11:00"))
    app = make_app(clock)
    svc = app.service
    team = svc.team(None)
    recorded = svc.record("zhang", "1. 对账差错2笔。", platform="slack", message_id="D1:1.1")
    assert isinstance(recorded, Recorded)
    assert (recorded.section.key, recorded.cycle, recorded.update.late) == ("reconciliation", "2024-W42", False)
    svc.record("zhang", "2. 覆盖率97%。", platform="slack", message_id="D1:1.2")
    svc.edit("zhang", platform="slack", message_id="D1:1.1", text="1. 对账差错3笔。")
    svc.skip("chen")
    status = {s.key: s.state for s in svc.status(team).sections}
    assert status["reconciliation"] == "submitted"
    assert status["risk"] == "skipped"
    assert status["gateway"] == "missing"
    report = svc.report(team, summarize=False)
    assert report.sections[1].content == "1. 对账差错3笔。\n2. 覆盖率97%。"
    revisions = app.store.revisions(update_id=recorded.update.id)
    assert [(r.action, r.text) for r in revisions] == [("create", "1. 对账差错2笔。"), ("edit", "1. 对账差错3笔。")]
    clock.now = at("2024-10-18 09:00")
    late = svc.record("liu", "网关稳定。", platform="slack", message_id="D2:9.9")
    assert isinstance(late, Recorded) and late.update.late
    # a skip marks only what nobody answered: 孙浩 answered 系统指标, so only 生产事件 is skipped
    svc.record("sun", "【系统指标】可用性99.99%。", platform="slack", message_id="D3:1.1")
    [(_, _, marked)] = svc.skip("sun")
    assert [s.key for s in marked] == ["incidents"]
    assert [(s.key, s.state) for s in svc.status(team).sections if s.key in ("metrics", "incidents")] == [
        ("metrics", "submitted"), ("incidents", "skipped")]
    svc.record("zhang", "3. 补充。", platform="slack", message_id="D1:1.3")
    assert [(_t.key, _c.label, list(secs)) for _t, _c, secs in svc.skip("zhang")] == [("clearing", "2024-W42", [])]


def test_owner_of_two_sections_is_asked_or_names_one(make_app: Callable[..., App]) -> None:
    app = make_app()
    svc = app.service
    asked = svc.record("li", "跨境收款方案评审通过。", platform="console", message_id="c1")
    assert isinstance(asked, NeedsSection)
    assert [s.key for _, s in asked.choices] == ["settlement", "o1_business"]
    picked = svc.assign("li", asked.update.id, "o1_business")
    assert (picked.section.key, picked.update.text) == ("o1_business", "跨境收款方案评审通过。")
    by_title = svc.record("li", "【结算通道】\n成功率99.96%。", platform="console", message_id="c2")
    assert isinstance(by_title, Recorded) and (by_title.section.key, by_title.update.text) == (
        "settlement", "成功率99.96%。")
    by_key = svc.record("li", "settlement: 交易4680笔。", platform="console", message_id="c3")
    assert isinstance(by_key, Recorded) and (by_key.section.key, by_key.update.text) == ("settlement", "交易4680笔。")
    by_colon = svc.record("li", "O1 业务服务：商户进件自动化60%。", platform="console", message_id="c4")
    assert isinstance(by_colon, Recorded) and (by_colon.section.key, by_colon.update.text) == (
        "o1_business", "商户进件自动化60%。")
    unnamed = svc.record("li", "通道数据：交易4680笔。", platform="console", message_id="c5")  # not a title
    assert isinstance(unnamed, NeedsSection) and unnamed.update.text == "通道数据：交易4680笔。"
    alone = svc.record("zhang", "清分对账：差错2笔。", platform="console", message_id="c6")  # one section: as written
    assert isinstance(alone, Recorded) and alone.update.text == "清分对账：差错2笔。"


def test_empty_and_huge_messages_are_refused_and_store_nothing(make_app: Callable[..., App]) -> None:
    app = make_app()
    svc = app.service
    for text, why in (("   \n ", "empty"), ("长" * 20001, "too_long")):
        with pytest.raises(UserError) as err:
            svc.record("zhang", text, platform="slack", message_id="D1:2.2")
        assert err.value.key == why
    assert app.store.update_by_message(platform="slack", message_id="D1:2.2") is None


def test_before_the_first_cycle_is_a_clear_error(make_app: Callable[..., App], team_file: Path) -> None:
    team_file.write_text(team_file.read_text(encoding="utf-8").replace("weeks: 1", "weeks: 1\n      start: 2030-W10"),
                         encoding="utf-8")
    app = make_app()
    with pytest.raises(UserError, match="no cycle has opened yet"):
        app.service.status(app.service.team(None))


def test_import_refuses_a_bad_or_shared_cycle_before_reading(make_app: Callable[..., App]) -> None:
    app = make_app()
    team = app.service.team(None)
    with pytest.raises(UserError, match=r"^--cycle: 'banana' is not a cycle label"):
        app.service.import_reports([str(W40)], team=team, label="banana")
    with pytest.raises(UserError, match="^--cycle names the cycle of one report"):
        app.service.import_reports([str(W39), str(W40)], team=team, label="2024-W46")
    with pytest.raises(UserError, match=f"^{W40}: 2024-W40 is also the cycle of {W40}"):
        app.service.import_reports([str(W40), str(W40)], team=team)
    assert app.store.cycle_labels(team_key="clearing") == []


def test_out_of_range_cycles_are_refused(make_app: Callable[..., App]) -> None:
    app = make_app()
    team = app.service.team(None)
    for label in ("9999-W52", "1900-W01"):
        with pytest.raises(UserError, match="a cycle must lie between 1990 and 2200"):
            app.service.status(team, label)


def test_an_update_parked_for_an_owner_of_two_teams_moves_once_and_edits_follow(make_app: Callable[..., App],
                                                                                team_file: Path) -> None:
    import yaml

    data = yaml.safe_load(team_file.read_text(encoding="utf-8"))
    second = {"key": "ops", "title": "运维周报", "leads": ["wang"],
              "schedule": {"open": "mon 10:00", "deadline": "thu 18:00"},
              "sections": [{"key": "oncall", "title": "值班", "owners": ["zhang"]}]}
    data["teams"].append(second)
    team_file.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    app = make_app()
    svc = app.service
    parked = svc.record("zhang", "对账差错3笔", platform="slack", message_id="D1:7.7")
    assert isinstance(parked, NeedsSection)
    assert [s.key for _, s in parked.choices] == ["reconciliation", "oncall"]
    first = svc.assign("zhang", parked.update.id, "oncall")
    again = svc.assign("zhang", parked.update.id, "oncall")  # the button pressed twice
    assert (first.team.key, again.update.id, again.update.text) == ("ops", parked.update.id, "对账差错3笔")
    ops = svc.report(svc.team("ops"), summarize=False)
    clearing = svc.report(svc.team("clearing"), summarize=False)
    assert [s.content for s in ops.sections] == ["对账差错3笔"]
    assert all(s.content == "" for s in clearing.sections)
    svc.edit("zhang", platform="slack", message_id="D1:7.7", text="对账差错2笔")
    assert [s.content for s in svc.report(svc.team("ops"), summarize=False).sections] == ["对账差错2笔"]
    svc.delete("zhang", platform="slack", message_id="D1:7.7")
    assert [s.state for s in svc.report(svc.team("ops"), summarize=False).sections] == ["missing"]


def test_together_applies_its_calls_in_one_transaction_and_a_rollback_leaves_nothing_in_memory(
        make_app: Callable[..., App]) -> None:
    """Group commit (issue 13): inside `together` a call sees the ones before it; a rollback takes them all
    back, and the cycle row a call created then is not kept in memory (the next answer would cite a row
    that does not exist)."""
    from .conftest import OPEN_CYCLE

    app = make_app(FixedClock(OPEN_CYCLE))
    service = app.service
    team = service.team(None)
    label = service.current_cycle(team).label
    with pytest.raises(RuntimeError), service.together():
        first = service.record("zhang", "对账差错3笔", platform="slack", message_id="m1")
        assert isinstance(first, Recorded)
        assert service.store.update_by_message(platform="slack", message_id="m1") is not None  # seen inside
        service.record("zhang", "对账差错清零", platform="slack", message_id="m0")  # the cycle read from memory
        raise RuntimeError("the group fails")
    assert service.store.find_cycle(team_key=team.key, label=label) is None  # the cycle's row went too
    assert service.store.update_by_message(platform="slack", message_id="m1") is None
    with service.together():
        service.record("zhang", "对账差错3笔", platform="slack", message_id="m1")
        service.record("zhang", "对账差错清零", platform="slack", message_id="m2")
    stored = service.store.find_cycle(team_key=team.key, label=label)
    assert stored is not None
    assert sorted(u.text for u in service.store.updates(cycle_id=stored.id)) == ["对账差错3笔", "对账差错清零"]
