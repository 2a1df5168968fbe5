"""The chat platforms weekly-bot knows. A new platform is a folder under `handlers/` whose `plugin`
module has a `PLUGIN` (bot.platform.PlatformPlugin), plus its line in BUILTIN."""

from __future__ import annotations

import importlib

from bot.config import Settings
from bot.platform import PlatformPlugin

BUILTIN: dict[str, str] = {
    "slack": "handlers.slack.plugin",
    "feishu": "handlers.feishu.plugin",
}
_registered: dict[str, PlatformPlugin] = {}


def register(plugin: PlatformPlugin) -> None:
    """Add a platform at run time (a test's, or a deployment's own)."""
    _registered[plugin.name] = plugin


def unregister(name: str) -> None:
    _registered.pop(name, None)


def plugins() -> list[PlatformPlugin]:
    """Every known platform, built-in ones first; their SDKs load only when a platform is used."""
    out = [importlib.import_module(path).PLUGIN for path in BUILTIN.values()]
    return out + [p for name, p in _registered.items() if name not in BUILTIN]


def configured(settings: Settings) -> list[PlatformPlugin]:
    """The platforms some of whose credentials are set."""
    return [p for p in plugins() if p.configured(settings)]
