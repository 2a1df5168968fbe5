"""Rows as the plain values the store hands back, shared by the repository and the web view's reads."""

from __future__ import annotations

from typing import Any

from bot.model import SummaryItem
from bot.records import StoredUpdate
from storage.models import UpdateRow


def stored_update(row: UpdateRow) -> StoredUpdate:
    return StoredUpdate(
        id=row.id, cycle_id=row.cycle_id, section_key=row.section_key, member_key=row.member_key,
        platform=row.platform, message_id=row.message_id, text=row.text, deleted=row.deleted,
        late=row.late, created_at=row.created_at, updated_at=row.updated_at,
    )


def summary_items(data: list[dict[str, Any]] | None) -> list[SummaryItem]:
    """Closing-section items as stored (JSON): text and the section keys they came from."""
    return [SummaryItem(text=str(d["text"]), sources=tuple(str(s) for s in d.get("sources") or ()))
            for d in data or []]
