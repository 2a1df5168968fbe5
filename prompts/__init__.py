"""Versioned prompt templates (package data) and a tiny loader.

A template file is `summary_<language>.md`: a first line `version: <name>`, then the parts
`## system`, `## format` (optional), `## user` and `## merge`. The user and merge parts are
`string.Template`s (`$team`, `$cycle`, `$sections` / `$drafts`, `$last_goals`); the system part takes
no data, so the owners' text can never end up in it. The format part describes the JSON answer: it
joins the system message only when the server does not enforce the schema, so a server that does
sees no example a small model could copy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from string import Template

_VERSION = re.compile(r"\Aversion:\s*(\S+)\s*$", re.MULTILINE)
_PART = re.compile(r"^## (system|format|user|merge)[ \t]*$", re.MULTILINE)
LANGUAGES = ("zh", "en")


@dataclass(frozen=True)
class Prompt:
    """One versioned summary prompt: the fixed system text and the templates for the user message."""

    version: str
    system: str
    user_template: str
    merge_template: str
    format: str = ""  # how to write the JSON, for servers that do not enforce the schema

    def user(self, *, team: str, cycle: str, sections: str, last_goals: str) -> str:
        """The user message for one report (or one group of its sections)."""
        return Template(self.user_template).substitute(
            team=team, cycle=cycle, sections=sections, last_goals=last_goals
        )

    def merge(self, *, team: str, cycle: str, drafts: str, last_goals: str) -> str:
        """The user message that merges the items drafted per group of sections."""
        return Template(self.merge_template).substitute(
            team=team, cycle=cycle, drafts=drafts, last_goals=last_goals
        )


def parse_prompt(text: str, *, name: str = "prompt") -> Prompt:
    """Split a template file into its version and parts; a malformed file is a ValueError naming it."""
    m = _VERSION.match(text.lstrip("\ufeff"))
    if not m:
        raise ValueError(f"{name}: the first line must be 'version: <name>'")
    pieces = _PART.split(text[m.end() :])
    parts = {pieces[i]: pieces[i + 1].strip() for i in range(1, len(pieces) - 1, 2)}
    missing = [p for p in ("system", "user", "merge") if not parts.get(p)]
    if missing:
        raise ValueError(f"{name}: missing part(s): {', '.join('## ' + p for p in missing)}")
    return Prompt(m.group(1), parts["system"], parts["user"], parts["merge"], parts.get("format", ""))


@cache
def load_prompt(language: str) -> Prompt:
    """The summary prompt for `language` (zh or en), read from the installed package data."""
    if language not in LANGUAGES:
        raise ValueError(f"no summary prompt for language {language!r} (expected one of {LANGUAGES})")
    name = f"summary_{language}.md"
    text = resources.files(__name__).joinpath(name).read_text(encoding="utf-8")
    return parse_prompt(text, name=name)
