"""Publishing: the report exactly as a lead reviewed it (a snapshot), once per snapshot and target, to the
team's `publish:` targets — channels, a Feishu 云文档, a Slack canvas — through the platforms' ports."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from bot.config import Team
from bot.errors import report_error
from bot.platform import Platform, Reply
from bot.records import Snapshot
from bot.service import WeeklyService

logger = logging.getLogger(__name__)


@runtime_checkable
class DocumentWriter(Protocol):
    """A platform that keeps a document per cycle (Feishu docx, Slack canvases)."""

    def write_document(self, title: str, markdown: str, existing: str | None) -> tuple[str, str | None]:
        """Create the document (existing None) or replace its content; returns (its id, its URL or None)."""
        ...


@dataclass(frozen=True)
class Target:
    name: str  # "slack:C…", "feishu:oc_…", "feishu_doc", "slack_canvas"
    platform: str
    channel: str | None = None  # None for a document


def targets(team: Team) -> list[Target]:
    p = team.publish
    out = [Target(f"slack:{p.slack}", "slack", p.slack)] if p.slack else []
    out += [Target(f"feishu:{p.feishu}", "feishu", p.feishu)] if p.feishu else []
    out += [Target("feishu_doc", "feishu")] if p.feishu_doc else []
    out += [Target("slack_canvas", "slack")] if p.slack_canvas else []
    return out


@dataclass
class Published:
    done: list[str] = field(default_factory=list)  # targets posted now
    already: list[str] = field(default_factory=list)  # targets this snapshot was posted to before
    failed: list[str] = field(default_factory=list)
    unreachable: list[str] = field(default_factory=list)  # no configured platform for the target
    links: list[str] = field(default_factory=list)  # documents' URLs
    changed: bool = False  # the owners' text changed since the lead's preview
    cycle: str = ""  # the snapshot's cycle


def publish(service: WeeklyService, team: Team, snapshot: Snapshot, member: str | None,
            platforms: Sequence[Platform]) -> Published:
    """Post `snapshot` to every target once; a target that failed is tried again on the next press."""
    home = service.snapshot_cycle(snapshot)
    if home is None:
        raise LookupError(f"snapshot {snapshot.id} of an unknown cycle")
    result = Published(cycle=home[1])
    report = service.report(team, home[1])
    result.changed = report.digest != snapshot.digest
    by_name = {p.platform: p for p in platforms}
    title = f"{team.title} {report.cycle}"
    for target in targets(team):
        platform = by_name.get(target.platform) or by_name.get("console")
        if platform is None or (target.channel is None and not isinstance(platform, DocumentWriter)):
            result.unreachable.append(target.name)
            continue
        key = f"publish:{snapshot.id}:{target.name}"
        if not service.claim_publish(key, team=team, cycle=report.cycle, member=member or "", target=target.name):
            result.already.append(target.name)
            continue
        try:
            if target.channel is not None:
                platform.publish(target.channel, Reply(title, file=(f"{team.key}-{report.cycle}.md", snapshot.markdown)))
            else:
                assert isinstance(platform, DocumentWriter)
                existing = service.store.document(cycle_id=snapshot.cycle_id, target=target.name)
                doc_id, url = platform.write_document(title, snapshot.markdown, existing[0] if existing else None)
                service.store.put_document(cycle_id=snapshot.cycle_id, target=target.name, external_id=doc_id,
                                           url=url, at=service.now())
                if url:
                    result.links.append(url)
        except Exception as e:
            report_error(f"publishing {title} to {target.name}", e, logger)
            service.finish_message(key, ok=False, at=service.now(), error=str(e)[:200])
            result.failed.append(target.name)
            continue
        service.finish_message(key, ok=True, at=service.now())
        result.done.append(target.name)
    if result.done:
        service.store.mark_published(snapshot_id=snapshot.id, at=service.now())
    return result

