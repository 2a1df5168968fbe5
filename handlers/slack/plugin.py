"""Slack in the platform registry: configured by SLACK_* variables; Bolt loads only when it is used."""

from __future__ import annotations

from bot.config import Settings
from bot.platform import Connection, Context, Platform, WebEdge


class SlackPlugin:
    name = "slack"

    def configured(self, settings: Settings) -> bool:
        return bool(settings.slack_bot_token or settings.slack_signing_secret or settings.slack_app_token)

    def sender(self, ctx: Context) -> Platform | None:
        if not ctx.settings.slack_bot_token:
            return None
        from handlers.slack.app import SlackSender

        return SlackSender.from_app(ctx)

    def web_edge(self, ctx: Context) -> WebEdge | None:
        s = ctx.settings
        if not (s.slack_bot_token or s.slack_signing_secret):
            return None
        from handlers.slack.app import build_slack

        return build_slack(ctx)

    def connection(self, ctx: Context) -> Connection | None:
        s = ctx.settings
        if not s.slack_app_token:
            return None
        from handlers.slack.app import build_slack, run_socket_mode

        edge = build_slack(ctx, socket_mode=True)
        return Connection(edge.sender, lambda: run_socket_mode(edge, s.slack_app_token or ""), edge.finish)

    def check(self, settings: Settings) -> list[tuple[bool, str]]:
        if not self.configured(settings):
            return [(True, "Slack: off (no SLACK_BOT_TOKEN)")]
        if not settings.slack_bot_token:
            return [(False, "Slack: SLACK_BOT_TOKEN is not set")]
        if not settings.slack_bot_token.startswith("xoxb-"):
            return [(False, "Slack: SLACK_BOT_TOKEN should start with xoxb-")]
        if not (settings.slack_signing_secret or settings.slack_app_token):
            return [(False, "Slack: set SLACK_SIGNING_SECRET (HTTP) or SLACK_APP_TOKEN (Socket Mode)")]
        if settings.slack_app_token and not settings.slack_app_token.startswith("xapp-"):
            return [(False, "Slack: SLACK_APP_TOKEN should start with xapp-")]
        from handlers.slack.app import check_credentials

        return [check_credentials(settings)]


PLUGIN = SlackPlugin()
