"""Expected failures: their message is what the user sees, on the CLI or in chat."""


class UserError(Exception):
    """A problem the user can fix; `str(err)` is one clear line, never a traceback."""


class ConfigError(UserError):
    """The team file or the environment is wrong; the message names file, key path and problem."""
