"""Signing leads in to the web view without passwords: `/weekly web` hands out a link that works once,
for ten minutes; only a hash of its token is kept, so the database alone opens nothing."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from bot.config import Team
from bot.errors import UserError
from bot.service import WeeklyService

LINK_TTL = timedelta(minutes=10)
SIGN_IN_PATH = "/web/signin"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


class WebSignIn:
    """Issue and redeem sign-in links; say which teams a signed-in member may see."""

    def __init__(self, service: WeeklyService) -> None:
        self.service = service

    def led_teams(self, member: str | None) -> list[Team]:
        """The teams `member` leads, in the team file's order (the web view shows only these)."""
        return [t for t in self.service.team_file.teams if member is not None and member in t.leads]

    def issue(self, member: str) -> str:
        """A fresh single-use link for a lead; a UserError for anyone else."""
        if not self.led_teams(member):
            raise UserError("web_not_lead")
        token = secrets.token_urlsafe(32)
        now = self.service.now()
        self.service.store.put_web_link(token_hash=token_hash(token), member_key=member, at=now,
                                        expires_at=now + LINK_TTL)
        return f"{self.service.public_url}{SIGN_IN_PATH}?token={token}"

    def redeem(self, token: str) -> str | None:
        """The member a link was made for, once; None when it is unknown, used already or expired."""
        if not token or len(token) > 200:
            return None
        member = self.service.store.take_web_link(token_hash=token_hash(token), at=self.service.now())
        return member if self.led_teams(member) else None

    def session_secret(self, configured: str | None) -> str:
        """WEEKLY_WEB_SECRET when set; else a secret made once and kept in the database for every process."""
        if configured:
            return configured
        return self.service.store.web_secret(name="session", candidate=secrets.token_urlsafe(48),
                                             at=self.service.now())
