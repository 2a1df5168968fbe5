"""Expected failures: what the user sees, on the CLI or in chat, as one clear line.

A `UserError` carries a message key and its parameters; `bot/i18n.py` words it in the team's
language (`render`), English by default (`str`). A `ConfigError` is the operator's: the team file,
the environment, the database, a platform's credentials. Its text is written out in English at the
point of failure and only ever reaches the terminal or the log.
"""

from __future__ import annotations

import logging

from bot.i18n import Lang, t


class UserError(Exception):
    """A problem the user can fix, by message key; never a traceback."""

    def __init__(self, message_key: str, /, **params: object) -> None:
        super().__init__(message_key)
        self.key = message_key
        self.params = params

    def render(self, lang: Lang) -> str:
        """The message in `lang`; parameters that are UserErrors themselves are worded in `lang` too."""
        params = {k: v.render(lang) if isinstance(v, UserError) else v for k, v in self.params.items()}
        return t(lang, self.key, **params)

    def __str__(self) -> str:
        return self.render("en")


class AlreadyHandled(Exception):
    """A platform delivered an event again that was already applied: answered and ignored."""


class BatchMiss(Exception):
    """A group of events' answers, stored together on the guess that each was new, met one that was not (a
    redelivery): its transaction is rolled back, to be run again, each event checked as it is stored."""


class ConfigError(UserError):
    """The operator's problem (team file, environment, database, credentials): English text as written."""

    def __init__(self, message: str) -> None:
        super().__init__("config", message=message)
        self.message = message

    def render(self, lang: Lang) -> str:
        return self.message


_log = logging.getLogger("bot")


def report_error(what: str, error: BaseException, log: logging.Logger | None = None) -> None:
    """The one sink for unexpected failures: one line at ERROR naming what failed and why; the traceback
    only when debugging (WEEKLY_DEBUG=1 sets DEBUG). The caller answers with a short apology."""
    lines = str(error).strip().splitlines()
    why = f"{type(error).__name__}: {lines[0][:300]}" if lines else type(error).__name__
    target = log or _log
    target.error("%s failed (%s)", what, why)
    target.debug("%s: the traceback", what, exc_info=error)
