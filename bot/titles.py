"""Section titles as people write them: normalised for lookup, and found inside free text.

A goal imported from a past report often names its workstream only in its words
(`好店下阶段工作沟通和落实`, `银行标准账户开户流程梳理`), with no `（来源：…）`: `sections_named`
finds the sections such a sentence is about, so last cycle's plan reaches the right owner.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

_NOISE = re.compile(r"[\s【】\[\]()（）「」《》:：,，.。、/\\\-_—·]+")
MIN_FUZZY = 0.6  # share of a title's character pairs a sentence must hold, every character being there


def norm_title(text: str) -> str:
    """A title for comparison: no brackets, spaces or punctuation; case-folded."""
    return _NOISE.sub("", text).casefold()


def _pairs(text: str) -> list[str]:
    return [text[i:i + 2] for i in range(len(text) - 1)]


def _fuzzy(title: str, text: str) -> float:
    """How much of `title` is in `text` with its words reordered (标准银行账户 ≈ 银行标准账户):
    the share of the title's character pairs found in the text, when every character is there too."""
    if len(title) < 3 or any(ch not in text for ch in title):
        return 0.0
    pairs = _pairs(title)
    return sum(p in text for p in pairs) / len(pairs)


def sections_named(text: str, sections: Sequence[tuple[str, str]]) -> tuple[str, ...]:
    """The keys of the sections (key, title) that `text` names by title, best first.

    A title written out in the text counts, and so does one whose characters the text holds in
    another order (标准银行账户 ≈ 银行标准账户); a title that is only a word of another one found
    (账户 inside 标准银行账户) is that one's, not a section of its own. One-character titles never match.
    """
    body = norm_title(text)
    if not body:
        return ()
    found: dict[str, tuple[float, int, str]] = {}
    for key, title in sections:
        nt = norm_title(title)
        if len(nt) < 2:
            continue
        score = 1.0 if nt in body else _fuzzy(nt, body)
        if score >= MIN_FUZZY:
            found[key] = (score, len(nt), nt)
    kept = [
        (score, length, key) for key, (score, length, nt) in found.items()
        if not any(nt != other and nt in other for _, _, other in found.values())
    ]
    kept.sort(key=lambda x: (-x[0], -x[1]))
    return tuple(key for _, _, key in kept)


def keyed_by_title(titles: Iterable[str], key_of_title: dict[str, str]) -> tuple[str, ...]:
    """Section keys for titles as written (`（来源：标题、…）`), in order, unknown ones left out."""
    out = [key_of_title[n] for t in titles if (n := norm_title(t)) in key_of_title]
    return tuple(dict.fromkeys(out))
