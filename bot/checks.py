"""`weekly-bot check` for the platforms: which are configured and whether their credentials look whole."""

from __future__ import annotations

from bot.config import Settings


def _slack_auth(settings: Settings) -> tuple[bool, str]:
    """Ask Slack (auth.test) whether it accepts the bot token."""
    from slack_sdk.errors import SlackApiError, SlackClientError

    from handlers.slack import describe, make_client

    mode = "Socket Mode" if settings.slack_app_token else "HTTP"
    try:
        who = make_client(settings).auth_test()
    except SlackApiError as e:
        return False, f"Slack: the bot token was refused ({e.response.get('error', 'error')})"
    except (SlackClientError, OSError) as e:
        return False, f"Slack: cannot reach {settings.slack_api_url} ({describe(e)})"
    return True, f"Slack: token accepted for @{who.get('user')} in {who.get('team')} ({mode})"


def _feishu(settings: Settings) -> tuple[bool, str]:
    """Feishu's line: off, a missing half of the app credentials, or whether Feishu issues a tenant_access_token."""
    if not (settings.feishu_app_id or settings.feishu_app_secret):
        return True, "Feishu: off (no FEISHU_APP_ID)"
    if not (settings.feishu_app_id and settings.feishu_app_secret):
        return False, f"Feishu: {'FEISHU_APP_SECRET' if settings.feishu_app_id else 'FEISHU_APP_ID'} is not set"
    from handlers.feishu import check_credentials

    return check_credentials(settings)


def _llm(settings: Settings) -> tuple[bool, str]:
    """Ask the OpenAI-compatible server for its models: reachable, and does it take the key?"""
    import openai

    base = settings.openai_base_url or "https://api.openai.com/v1"
    client = openai.OpenAI(api_key=settings.openai_api_key or "unused", base_url=settings.openai_base_url,
                           timeout=min(settings.weekly_llm_timeout, 10.0), max_retries=0)
    try:
        client.models.list()
    except openai.AuthenticationError:
        return False, f"LLM: {base} refused the key (OPENAI_API_KEY)"
    except openai.APIStatusError as e:  # some compatible servers have no /models: reachable is enough
        return True, f"LLM: {base} answers (HTTP {e.status_code} for /models); model {settings.weekly_llm_model}"
    except openai.APIConnectionError as e:
        return False, f"LLM: cannot reach {base} ({type(e).__name__}); reports fall back to offline summaries"
    return True, f"LLM: {base} answers; model {settings.weekly_llm_model}"


def check_platforms(settings: Settings) -> list[tuple[bool, str]]:
    """(ok, line) per configured platform; a platform with no credentials at all is simply off."""
    out: list[tuple[bool, str]] = []
    if settings.slack_bot_token or settings.slack_signing_secret or settings.slack_app_token:
        if not settings.slack_bot_token:
            out.append((False, "Slack: SLACK_BOT_TOKEN is not set"))
        elif not settings.slack_bot_token.startswith("xoxb-"):
            out.append((False, "Slack: SLACK_BOT_TOKEN should start with xoxb-"))
        elif not (settings.slack_signing_secret or settings.slack_app_token):
            out.append((False, "Slack: set SLACK_SIGNING_SECRET (HTTP) or SLACK_APP_TOKEN (Socket Mode)"))
        elif settings.slack_app_token and not settings.slack_app_token.startswith("xapp-"):
            out.append((False, "Slack: SLACK_APP_TOKEN should start with xapp-"))
        else:
            out.append(_slack_auth(settings))
    else:
        out.append((True, "Slack: off (no SLACK_BOT_TOKEN)"))
    out.append(_feishu(settings))
    if settings.llm_enabled:
        out.append(_llm(settings))
    else:
        out.append((True, "LLM: off (offline summaries; set OPENAI_API_KEY or OPENAI_BASE_URL)"))
    return out
