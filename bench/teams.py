"""The invented teams the benchmarks run on: one section per owner, weekly, in Shanghai time."""

from __future__ import annotations

from collections.abc import Callable


def team_yaml(owners: int, *, key: str = "bench", title: str = "基准周报", name: str = "成员{i}",
              slack: Callable[[int], str] | None = None, holidays: str | None = None) -> str:
    """A team file: members m0…m{owners-1} (m0 leads), section s{i} owned by m{i}; `slack(i)` gives member i a
    Slack id; `holidays: CN` when asked for (none by default, so every week has its cycle)."""
    def member(i: int) -> str:
        extra = f", slack: {slack(i)}" if slack else ""
        return f"  m{i}: {{name: {name.format(i=i)}{extra}}}"

    people = "\n".join(member(i) for i in range(owners))
    secs = "\n".join(f"      - {{key: s{i}, title: 部分{i}, owners: [m{i}]}}" for i in range(owners))
    extra = f", holidays: {holidays}" if holidays else ""
    return f"""timezone: Asia/Shanghai
language: zh
members:
{people}
teams:
  - key: {key}
    title: {title}
    leads: [m0]
    schedule: {{open: mon 10:00, deadline: thu 18:00{extra}}}
    sections:
{secs}
"""
