"""Feishu / Lark in the platform registry: configured by FEISHU_* variables; lark-oapi loads only when used."""

from __future__ import annotations

from bot.config import Settings
from bot.platform import Connection, Context, Platform, WebEdge


class FeishuPlugin:
    name = "feishu"

    def configured(self, settings: Settings) -> bool:
        return bool(settings.feishu_app_id or settings.feishu_app_secret)

    def sender(self, ctx: Context) -> Platform | None:
        if not (ctx.settings.feishu_app_id and ctx.settings.feishu_app_secret):
            return None
        from handlers.feishu.app import FeishuSender

        return FeishuSender.from_app(ctx)

    def web_edge(self, ctx: Context) -> WebEdge | None:
        if not self.configured(ctx.settings):
            return None
        from handlers.feishu.app import build_feishu

        return build_feishu(ctx)

    def connection(self, ctx: Context) -> Connection | None:
        if not self.configured(ctx.settings):
            return None
        from handlers.feishu.app import build_feishu, run_long_connection

        edge = build_feishu(ctx, long_connection=True)
        return Connection(edge.sender, lambda: run_long_connection(edge), edge.finish)

    def check(self, settings: Settings) -> list[tuple[bool, str]]:
        if not self.configured(settings):
            return [(True, "Feishu: off (no FEISHU_APP_ID)")]
        if not (settings.feishu_app_id and settings.feishu_app_secret):
            missing = "FEISHU_APP_SECRET" if settings.feishu_app_id else "FEISHU_APP_ID"
            return [(False, f"Feishu: {missing} is not set")]
        from handlers.feishu.app import check_credentials

        return [check_credentials(settings)]


PLUGIN = FeishuPlugin()
