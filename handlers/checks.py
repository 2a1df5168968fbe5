"""`weekly-bot check` for the platforms and the LLM: which are configured and whether their credentials work."""

from __future__ import annotations

from bot.config import Settings
from handlers import registry


def check_platforms(settings: Settings) -> list[tuple[bool, str]]:
    """(ok, line) per registered platform (one with no credentials at all is simply off), then the LLM."""
    out = [line for plugin in registry.plugins() for line in plugin.check(settings)]
    if settings.llm_enabled:
        from handlers.llm import check_llm

        out.append(check_llm(settings))
    else:
        out.append((True, "LLM: off (offline summaries; set OPENAI_API_KEY or OPENAI_BASE_URL)"))
    return out
