"""Expected failures: what the user sees, on the CLI or in chat, as one clear line.

A `UserError` carries a message key and its parameters; `bot/i18n.py` words it in the team's
language (`render`), English by default (`str`). A `ConfigError` is the operator's: the team file,
the environment, the database, a platform's credentials. Its text is written out in English at the
point of failure and only ever reaches the terminal or the log.
"""

from __future__ import annotations

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


class ConfigError(UserError):
    """The operator's problem (team file, environment, database, credentials): English text as written."""

    def __init__(self, message: str) -> None:
        super().__init__("config", message=message)
        self.message = message

    def render(self, lang: Lang) -> str:
        return self.message
