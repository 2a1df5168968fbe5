"""The conversation, platform-neutral: chat messages, `/weekly` commands and button presses in,
replies out. Slack, Feishu and the console each translate their events into these calls.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from datetime import date, datetime

from bot.config import Team
from bot.due import Due
from bot.errors import AlreadyHandled, UserError, report_error
from bot.i18n import STATUS_TIME, Lang, bracket, join, join_days, t
from bot.model import SummaryItem
from bot.platform import Button, Form, FormField, Incoming, Outcome, Platform, Reply, chunks
from bot.records import Snapshot
from bot.render import WORDS, with_sources
from bot.service import NeedsSection, Recorded, Report, WeeklyService, preview
from bot.summarize import untraceable
from bot.tick import compose
from bot.weblinks import WebSignIn

logger = logging.getLogger(__name__)

LEAD_COMMANDS = ("summary", "status", "remind", "edit", "publish")
CHAT_PREVIEW_CHARS = 3000  # one preview message at most; a longer preview goes in several


_COMMAND = re.compile(r"^\s*[/／]([A-Za-z][\w-]*)(?:\s+(.*))?$", re.S)


def command_text(text: str) -> str | None:
    """The one rule for what is a command, on every platform: a message starting with `/word`.

    `/weekly status 2024-W40` gives "status 2024-W40"; `/status 2024-W40` gives the same (the
    `/weekly` may be left out in a DM); any other `/word` gives "word …", which the command handler
    answers with help. None for a message that is not a command: an update to store.
    """
    m = _COMMAND.match(text or "")
    if not m:
        return None
    name, rest = m.group(1), (m.group(2) or "").strip()
    if name.lower() == "weekly":
        return rest
    return f"{name} {rest}".strip()


class ChatBot:
    """Turns what people say into use-case calls; never lets an exception reach the chat."""

    def __init__(self, service: WeeklyService, platforms: Callable[[], Sequence[Platform]] | None = None) -> None:
        self.service = service
        self.platforms = platforms or (lambda: ())  # where Publish posts (channels, documents)

    # -- who is speaking ---------------------------------------------------------------------
    def member(self, platform: str, user_id: str) -> str | None:
        return self.service.member_by(platform, user_id)

    def lang(self, member: str | None = None) -> Lang:
        teams = [t for t, _ in self.service.owned_sections(member)] if member else []
        leads = [t for t in self.service.team_file.teams if member and member in t.leads]
        mine = teams or leads
        return self.service.lang(mine[0]) if mine else self.service.team_file.language

    def _guard(self, member: str | None, fn: Callable[[], list[Reply]], *, strict: bool = False) -> list[Reply]:
        """A UserError becomes its message; anything else an apology, or (strict) the caller's to handle,
        so a platform edge can have the platform deliver the event again instead of losing it."""
        try:
            return fn()
        except UserError as e:
            return [Reply(self._user_error(member, e))]
        except AlreadyHandled:
            raise
        except Exception as e:
            if strict:
                raise
            report_error("handling a chat event", e, logger)
            return [Reply(t(self.lang(member), "error"))]

    def _user_error(self, member: str | None, e: UserError) -> str:
        return e.render(self.lang(member))

    # -- one door for every platform ---------------------------------------------------------
    def handle(self, event: Incoming, *, strict: bool = False) -> Outcome:
        """What a person did on a platform, whichever: a DM (new, edited, deleted), a command, a button, a
        form. With `strict`, a failure to store raises (the edge has the platform deliver it again)."""
        try:
            return self._handle(event, strict=strict)
        except AlreadyHandled:
            logger.info("%s: %s was delivered again: answered and ignored", event.platform, event.event_id)
            return Outcome()

    def _handle(self, event: Incoming, *, strict: bool) -> Outcome:
        platform, user, eid, ts = event.platform, event.user_id, event.event_id, event.ts
        if event.kind == "delete":
            return Outcome(self.on_delete(platform, user, event.message_id or "", strict=strict, event_id=eid, ts=ts))
        if event.kind == "edit":
            return Outcome(self.on_edit(platform, user, event.message_id or "", event.text, strict=strict,
                                        event_id=eid, ts=ts))
        words = {"command": event.text, "message": command_text(event.text)}.get(event.kind)
        assigning = event.kind == "action" and event.action == "assign"  # marked with its change, below
        if (event.kind in ("command", "action", "form") or words is not None) and not assigning:
            self.service.mark_event(platform, eid)  # stores nothing else: marked first, run once
        if event.kind in ("action", "form"):
            return self.on_action(platform, user, event.action, event.value, dict(event.fields),
                                  event_id=eid if assigning else None, strict=strict)
        if words is not None:  # typed as a message: slow work still waits for the platform's answer
            return self.on_command(platform, user, words)
        return Outcome(self.on_message(platform, user, event.text, event.message_id, strict=strict, event_id=eid,
                                       ts=ts))

    # -- messages ----------------------------------------------------------------------------
    def on_message(self, platform: str, user_id: str, text: str, message_id: str | None, *,
                   strict: bool = False, event_id: str | None = None, ts: float | None = None) -> list[Reply]:
        """A chat message: an update to store (or a `/weekly` command typed as a message)."""
        member = self.member(platform, user_id)
        if member is None:
            return [Reply(t(self.service.team_file.language, "unknown_member"))]
        words = command_text(text or "")
        if words is not None:
            outcome = self.on_command(platform, user_id, words)
            return outcome.replies + (self._guard(member, outcome.later) if outcome.later else [])
        return self._guard(member, lambda: self._record(member, platform, text, message_id, event_id, ts),
                           strict=strict)

    def _record(self, member: str, platform: str, text: str, message_id: str | None, event_id: str | None = None,
                ts: float | None = None) -> list[Reply]:
        result = self.service.record(member, text, platform=platform, message_id=message_id, event_id=event_id,
                                     changed_ts=ts)
        lang = self.lang(member)
        if isinstance(result, NeedsSection):
            buttons = tuple(Button(f"{s.title}", "assign", f"{result.update.id}:{s.key}") for _, s in result.choices)
            return [Reply(t(lang, "choose_section"), buttons=buttons)]
        return [self._confirm(lang, result)]

    def _confirm(self, lang: Lang, r: Recorded) -> Reply:
        key = "recorded_late" if r.update.late else "recorded"
        return Reply(t(lang, key, section=r.section.title, cycle=r.cycle, preview=preview(r.update.text)))

    def on_edit(self, platform: str, user_id: str, message_id: str, text: str, *,
                strict: bool = False, event_id: str | None = None, ts: float | None = None) -> list[Reply]:
        member = self.member(platform, user_id)
        if member is None:
            return []

        def run() -> list[Reply]:
            if not (text or "").strip():
                return self._delete(member, platform, message_id, event_id, ts)
            updated = self.service.edit(member, platform=platform, message_id=message_id, text=text,
                                        event_id=event_id, changed_ts=ts)
            if updated is None:
                if command_text(text) is not None:
                    self.service.mark_event(platform, event_id)
                    return []  # an edited command is not an update, and commands are not re-run
                # an edit of one we never stored
                return self._record(member, platform, text, message_id, event_id, ts)
            return [Reply(t(self.lang(member), "edited", section=self._title(updated.section_key, self.lang(member)),
                            preview=preview(updated.text)))]

        return self._guard(member, run, strict=strict)

    def on_delete(self, platform: str, user_id: str, message_id: str, *, strict: bool = False,
                  event_id: str | None = None, ts: float | None = None) -> list[Reply]:
        member = self.member(platform, user_id)
        if member is None:
            return []
        return self._guard(member, lambda: self._delete(member, platform, message_id, event_id, ts), strict=strict)

    def _delete(self, member: str, platform: str, message_id: str, event_id: str | None = None,
                ts: float | None = None) -> list[Reply]:
        deleted = self.service.delete(member, platform=platform, message_id=message_id, event_id=event_id,
                                      changed_ts=ts)
        if deleted is None:
            self.service.mark_event(platform, event_id)
            return []
        return [Reply(t(self.lang(member), "deleted", section=self._title(deleted.section_key, self.lang(member))))]

    def _title(self, key: str | None, lang: Lang = "zh") -> str:
        for team in self.service.team_file.teams:
            sec = team.section(key or "")
            if sec:
                return sec.title
        if key is None:  # an update whose owner has not picked its section yet
            return t(lang, "no_section_yet")
        return key

    # -- commands ----------------------------------------------------------------------------
    def on_command(self, platform: str, user_id: str, text: str) -> Outcome:
        """`/weekly <sub> [args]`; lead commands are refused to others, unknown words get help."""
        head, _, body = text.strip().partition("\n")
        if head.split()[:1] and head.split()[0].lower() == "edit":
            return self._edit_command(platform, user_id, head.split()[1:], body)
        return self._command(platform, user_id, text)

    def _command(self, platform: str, user_id: str, text: str) -> Outcome:
        """`/weekly <sub> [args]`; lead commands are refused to others, unknown words get help."""
        member = self.member(platform, user_id)
        lang = self.lang(member)
        if member is None:
            return Outcome([Reply(t(lang, "unknown_member"))])
        words = text.split()
        sub = words[0].lower() if words else "help"
        args = words[1:]
        if sub == "web":  # leads only; the link goes to the lead's DM, never into a group
            return Outcome(self._guard(member, lambda: [
                Reply(t(lang, "web_link", url=WebSignIn(self.service).issue(member)), to=member)]))
        if sub in LEAD_COMMANDS:
            try:
                team, label = self._team_and_cycle(member, args)
            except UserError as e:
                return Outcome([Reply(self._user_error(member, e))])
            if member not in team.leads:
                return Outcome([Reply(t(lang, "not_lead", team=team.title, cmd=sub))])
            if sub == "publish" and label is None:  # what the lead last saw, if it is of this cycle's time
                label = self.service.previewed_cycle(team, member)
            try:  # a wrong cycle is said at once, not after "compiling…"
                cycle_label = self.service.resolve_cycle(team, label).label
            except UserError as e:
                if label is None:
                    return Outcome([Reply(self._user_error(member, e))])
                example = self._guard_label(team) or "2024-W40"
                return Outcome([Reply(t(lang, "bad_cycle", label=label, team=team.title, example=example))])
            if sub == "summary":
                return Outcome(
                    [Reply(t(lang, "summary_wait", cycle=cycle_label))],
                    later=lambda: self._guard(member, lambda: self._summary(team, label, member)),
                )
            if sub == "publish":
                return Outcome(later=lambda: self._guard(member, lambda: self._publish_latest(member, team, label,
                                                                                             lang)))
            if sub == "status":
                return Outcome(self._guard(member, lambda: [Reply(self.status_text(team, label))]))
            return Outcome(self._guard(member, lambda: self._remind(team, lang)))
        if sub == "show":
            return Outcome(self._guard(member, lambda: self._show(member, lang)))
        if sub == "skip":
            return Outcome(self._guard(member, lambda: self._skip(member, lang)))
        if sub == "away":
            return Outcome(self._guard(member, lambda: self._away(member, lang, args)))
        if sub == "help":
            return Outcome([Reply(t(lang, "help"))])
        return Outcome([Reply(t(lang, "unknown_command", word=sub) + t(lang, "help"))])

    def _guard_label(self, team: Team) -> str | None:
        try:
            return self.service.current_cycle(team).label
        except UserError:
            return None

    def _team_and_cycle(self, member: str, args: list[str]) -> tuple[Team, str | None]:
        teams = self.service.team_file.teams
        team: Team | None = None
        label: str | None = None
        for word in args:
            match = next((x for x in teams if x.key == word), None)
            if match:
                team = match
            elif re.fullmatch(r"\d{4}-[Ww]\d{2}(&(\d{4}-)?[Ww]\d{2})?", word):
                label = word
            else:
                raise UserError("bad_arg", word=word)
        if team is None:
            led = [x for x in teams if member in x.leads]
            team = led[0] if led else teams[0]
        return team, label

    def status_text(self, team: Team, label: str | None) -> str:
        status = self.service.status(team, label)
        lang = self.service.lang(team)
        names = self.service.team_file.members
        tz = self.service.team_file.tz(team)
        marks = {"submitted": "✅", "missing": "⏳", "skipped": "➖", "away": "🌴"}
        when = STATUS_TIME[lang]
        lines = [t(lang, "status_head", team=team.title, cycle=status.cycle.label,
                   opens=status.cycle.opens_at.astimezone(tz).strftime(when),
                   deadline=status.cycle.deadline.astimezone(tz).strftime(when))]
        for s in status.sections:
            owners = join(lang, [
                t(lang, "status_owner_away", name=names[o].name) if o in status.away and s.state != "away"
                else names[o].name for o in s.owners]) if s.owners else "-"
            state = t(lang, f"status_{s.state}") + t(lang, "status_late") * s.late
            lines.append(f"{marks[s.state]} {s.title} — {owners} ({state})")
        missing = [names[o].name for o in status.missing_owners]
        if missing:
            lines.append(t(lang, "status_still_missing", names=join(lang, missing)))
        return "\n".join(lines)

    def _summary(self, team: Team, label: str | None, member: str | None = None, *, fresh: bool = False) -> list[Reply]:
        report = self.service.report(team, label, summarize=True if fresh else None, draft_unless_reviewed=True)
        return self.report_replies(report, member)

    def report_replies(self, report: Report, member: str | None = None) -> list[Reply]:
        """The lead's preview: the two closing sections in full (each item's sources, ⚠ on a number none of
        them has), then the whole report as a file, with Edit, Regenerate and Publish; a long preview comes in
        several messages rather than cut. The report is kept as a snapshot: Publish posts exactly it."""
        lang = self.service.lang(report.team)
        snap = self.service.snapshot(report, member)
        lines = [t(lang, "preview_head", team=report.team.title, cycle=report.cycle, state=self._state(report, lang))]
        lines += self._closing_lines(report, lang)
        rev = report.revision
        if rev is not None and rev.source != "edited" and report.summary is not None:
            older = self.service.store.current_summary(cycle_id=snap.cycle_id, sources=("edited",))
            if older is not None:
                lines += ["", t(lang, "preview_older_edit", name=self._name(older.author), at=self._at(older.created_at,
                                                                                                  report.team))]
        if rev is not None and rev.source == "edited" and any(
                u.updated_at > rev.created_at for u in self.service.store.updates(cycle_id=snap.cycle_id,
                                                                                  include_deleted=True)):
            lines += ["", t(lang, "preview_changed_since_edit")]
        if report.summary and report.summary.note:
            lines += ["", "> " + report.summary.note]
        lines += ["", t(lang, "preview_tail", lines=len(report.markdown.splitlines()))]
        value = f"{report.team.key}:{report.cycle}"
        buttons = (Button(t(lang, "btn_edit"), "edit", value), Button(t(lang, "btn_regenerate"), "regenerate", value),
                   Button(t(lang, "btn_publish"), "publish", f"snap:{snap.id}"))
        parts = chunks("\n".join(lines), CHAT_PREVIEW_CHARS)
        out = [Reply(p) for p in parts[:-1]]
        out.append(Reply(parts[-1], buttons=buttons, file=(f"{report.team.key}-{report.cycle}.md", report.markdown)))
        return out

    def _state(self, report: Report, lang: Lang) -> str:
        rev, summary = report.revision, report.summary
        if summary is None:
            return "-"
        if summary.source == "edited" and rev is not None:
            text = t(lang, "state_edited", name=self._name(rev.author), at=self._at(rev.created_at, report.team))
        elif summary.source == "imported":
            text = t(lang, "state_imported")
        else:
            text = t(lang, "state_draft_llm" if summary.source == "llm" else "state_draft_offline")
        return text + (t(lang, "state_published") if report.published else "")

    def _closing_lines(self, report: Report, lang: Lang) -> list[str]:
        words = WORDS[lang]
        sections = {s.key: s for s in report.sections}
        titles = {s.key: s.title for s in report.sections}
        out: list[str] = []
        for head, items in ((f"## {words['reflections']}", report.summary.reflections if report.summary else []),
                            (f"# {words['next_week']}", report.summary.next_week if report.summary else [])):
            out += ["", head]
            if not items:
                out.append(words["none"])
            for n, item in enumerate(items, 1):
                out.append(f"{n}. {with_sources(item.text, item.sources, titles, lang)}")
                why = untraceable(item.text, item.sources, sections) if item.sources else None
                if why and why.startswith("number "):
                    numbers = why.removeprefix("number ").removesuffix(" not in its sources")
                    out.append("    " + t(lang, "preview_flag", numbers=numbers))
        return out


    def _name(self, member: str | None) -> str:
        m = self.service.team_file.members.get(member or "")
        return m.name if m else (member or "?")

    def _at(self, when: datetime, team: Team) -> str:
        return f"{when.astimezone(self.service.team_file.tz(team)):%m-%d %H:%M}"

    # -- the lead's edit ---------------------------------------------------------------------
    def edit_form(self, team: Team, label: str | None, lang: Lang) -> Form:
        """The closing sections as a form, prefilled one item per line ending in its sources."""
        report = self.service.report(team, label)
        titles = {s.key: s.title for s in report.sections}

        def text(items: Sequence[SummaryItem]) -> str:
            return "\n".join(with_sources(i.text, i.sources, titles, lang) for i in items)

        words = WORDS[lang]
        summary = report.summary
        return Form(
            title=t(lang, "form_title"), action="edit_summary", value=f"{team.key}:{report.cycle}",
            fields=(FormField("reflections", words["reflections"], text(summary.reflections) if summary else ""),
                    FormField("next_week", words["next_week"], text(summary.next_week) if summary else "")),
            submit=t(lang, "form_submit"),
        )

    def edit_form_reply(self, team: Team, label: str | None, lang: Lang) -> Reply:
        """The form with a line naming its cycle: what Edit and `/weekly edit` answer alike."""
        form = self.edit_form(team, label, lang)
        return Reply(t(lang, "edit_intro", cycle=form.value.split(":", 1)[1]), form=form)

    def _edit_command(self, platform: str, user_id: str, args: list[str], body: str) -> Outcome:
        """`/weekly edit`: the form (a platform opens it; the console shows it as text); `/weekly edit` and
        then the two sections under their headings: stored as the lead's revision."""
        member = self.member(platform, user_id)
        lang = self.lang(member)
        if member is None:
            return Outcome([Reply(t(lang, "unknown_member"))])
        try:
            team, label = self._team_and_cycle(member, args)
        except UserError as e:
            return Outcome([Reply(self._user_error(member, e))])
        if member not in team.leads:
            return Outcome([Reply(t(lang, "not_lead", team=team.title, cmd="edit"))])
        label = label or self.service.previewed_cycle(team, member)  # the report the lead last saw, if recent
        if not body.strip():
            # compiling may draft the closing sections (an LLM call): never before the platform's answer
            return Outcome(later=lambda: self._guard(member, lambda: [self.edit_form_reply(team, label, lang)]))
        reflections, next_week = two_parts(body)
        return Outcome(later=lambda: self._guard(member, lambda: self._save_edit(member, team, label, reflections,
                                                                                   next_week, lang)))

    def _save_edit(self, member: str, team: Team, label: str | None, reflections: str, next_week: str,
                   lang: Lang) -> list[Reply]:
        saved: list[Report] = []
        replies = self._store_edit(member, team, label, reflections, next_week, lang, saved)
        return [*replies, *self.report_replies(saved[0], member)]

    def _store_edit(self, member: str, team: Team, label: str | None, reflections: str, next_week: str,
                    lang: Lang, saved: list[Report]) -> list[Reply]:
        """Store the lead's closing sections as a revision; the compiled report goes into `saved`."""
        if not (reflections.strip() or next_week.strip()):
            raise UserError("form_empty")
        saved.append(self.service.edit_summary(team, label, member, reflections, next_week))
        return [Reply(t(lang, "edit_saved"))]

    def _remind(self, team: Team, lang: Lang) -> list[Reply]:
        status = self.service.status(team)
        missing = status.missing_owners
        if not missing:
            return [Reply(t(lang, "nobody_to_remind"))]
        names = self.service.team_file.members
        out = []
        for owner in missing:  # in the scheduled reminder's words
            keys = tuple(x.key for x in status.sections if x.state == "missing" and owner in x.owners)
            due = Due(team.key, status.cycle.label, owner, "reminder", "", keys)
            out.append(Reply(compose(self.service, team, status.cycle, due), to=owner))
        out.append(Reply(t(lang, "reminded", n=len(missing), names=join(lang, [names[o].name for o in missing]))))
        return out

    def _show(self, member: str, lang: Lang) -> list[Reply]:
        drafts = self.service.draft(member)
        if not drafts:
            raise UserError("not_owner")
        out = []
        for _team, cycle, parts in drafts:
            if not parts:
                out.append(Reply(t(lang, "draft_empty", cycle=cycle.label)))
                continue
            body = "\n".join(bracket(lang, title) + f"\n{text}" for title, text in parts)
            out.append(Reply(t(lang, "draft_head", cycle=cycle.label) + "\n" + body))
        return out

    def _skip(self, member: str, lang: Lang) -> list[Reply]:
        return [
            Reply(t(lang, "skipped", cycle=cycle.label, sections=join(lang, [s.title for s in secs])) if secs
                  else t(lang, "skipped_nothing", cycle=cycle.label))
            for _team, cycle, secs in self.service.skip(member)
        ]

    def _away(self, member: str, lang: Lang, args: list[str]) -> list[Reply]:
        """`away FROM [TO]` stores days off, `away off` forgets the coming ones, `away` lists them."""
        tz = self.service.team_file.tz(self.service.member_team(member))
        today = self.service.now().astimezone(tz).date()
        if not args:
            ranges = [(a, b, src) for a, b, src in self.service.away_ranges(member) if b >= today]
            if not ranges:
                return [Reply(t(lang, "away_none"))]
            return [Reply(t(lang, "away_list", days=join_days(lang, [_days(a, b) for a, b, _ in ranges])))]
        if args[0].lower() in ("off", "cancel", "取消") and len(args) == 1:
            n = self.service.clear_away(member)
            kept = [(a, b) for a, b, src in self.service.away_ranges(member) if src == "file" and b >= today]
            text = t(lang, "away_off", n=n)
            if kept:
                text += t(lang, "away_file_kept", days=join_days(lang, [_days(a, b) for a, b in kept]))
            return [Reply(text)]
        if len(args) > 2:
            raise UserError("away_usage")
        first = _parse_day(args[0], today)
        last = _parse_day(args[1], today) if len(args) == 2 else first
        if first is None or last is None:
            raise UserError("away_usage")
        wrapped = last.replace(year=last.year + 1) if last < first and len(args[1]) <= 5 else last
        if (wrapped - first).days < 62:  # `away 12-30 01-03`: over the new year
            last = wrapped
        cycles = list(dict.fromkeys(c.label for _t, c in self.service.set_away(member, first, last)))
        text = t(lang, "away_set", days=_days(first, last))
        if cycles:
            shown = join(lang, cycles[:4]) + ("…" if len(cycles) > 4 else "")
            text += t(lang, "away_cycles", cycles=shown)
        return [Reply(text)]

    # -- buttons -----------------------------------------------------------------------------
    def on_action(self, platform: str, user_id: str, action: str, value: str,
                  fields: dict[str, str] | None = None, *, event_id: str | None = None,
                  strict: bool = False) -> Outcome:
        member = self.member(platform, user_id)
        lang = self.lang(member)
        if member is None:
            return Outcome([Reply(t(lang, "unknown_member"))])
        if action == "assign":
            update_id, _, section_key = value.partition(":")

            def assign() -> list[Reply]:
                if not update_id.isdigit():
                    raise UserError("button_stale")
                return [self._confirm(lang, self.service.assign(member, int(update_id), section_key,
                                                                platform=platform, event_id=event_id))]

            return Outcome(self._guard(member, assign, strict=strict))
        if action == "publish":
            return Outcome(self._guard(member, lambda: self._publish(member, value, lang)))
        if action in ("edit", "regenerate", "summary", "edit_summary"):
            team_key, _, label = value.partition(":")
            try:
                team = self.service.team(team_key)
            except UserError:
                return Outcome([Reply(t(lang, "button_stale"))])
            if member not in team.leads:
                return Outcome([Reply(t(lang, "not_lead", team=team.title, cmd="edit" if "edit" in action else "summary"))])
            if action == "edit":
                return Outcome(self._guard(member, lambda: [self.edit_form_reply(team, label or None, lang)]))
            if action == "edit_summary":  # stored before the answer; the new preview comes after it
                got = fields or {}
                saved: list[Report] = []
                replies = self._guard(member, lambda: self._store_edit(
                    member, team, label or None, got.get("reflections", ""), got.get("next_week", ""), lang, saved))
                return Outcome(replies, later=(lambda: self._guard(member, lambda: self.report_replies(
                    saved[0], member))) if saved else None)
            fresh = action == "regenerate"
            return Outcome([Reply(t(lang, "summary_wait", cycle=label))],
                           later=lambda: self._guard(member, lambda: self._summary(team, label or None, member,
                                                                                   fresh=fresh)))
        return Outcome([Reply(t(lang, "help"))])

    def _publish(self, member: str, value: str, lang: Lang) -> list[Reply]:
        """Publish the snapshot the lead's button was made for: exactly what they saw, once."""
        kind, _, ref = value.partition(":")
        snap = self.service.get_snapshot(int(ref)) if kind == "snap" and ref.isdigit() else None
        home = self.service.snapshot_cycle(snap) if snap is not None else None
        if snap is None or home is None:
            return [Reply(t(lang, "publish_stale_button"))]
        return self._publish_snapshot(member, home[0], snap, lang)

    def _publish_latest(self, member: str, team: Team, label: str | None, lang: Lang) -> list[Reply]:
        snap = self.service.latest_snapshot(team, label)
        if snap is None:
            return [Reply(t(lang, "no_snapshot", cycle=self.service.resolve_cycle(team, label).label))]
        return self._publish_snapshot(member, team, snap, lang)

    def _publish_snapshot(self, member: str, team: Team, snap: Snapshot, lang: Lang) -> list[Reply]:
        from bot.publish import publish, targets

        if member not in team.leads:
            return [Reply(t(lang, "not_lead", team=team.title, cmd="publish"))]
        if not targets(team):
            return [Reply(t(lang, "no_publish"))]
        result = publish(self.service, team, snap, member, self.platforms())
        out: list[Reply] = []
        if result.done:
            out.append(Reply(t(lang, "published", targets=names(result.done + result.links, lang))))
        if result.already and not result.done:
            out.append(Reply(t(lang, "already_published", targets=names(result.already, lang))))
        if result.failed:
            out.append(Reply(t(lang, "publish_failed", targets=names(result.failed, lang))))
        if result.unreachable:
            out.append(Reply(t(lang, "publish_unreachable", targets=names(result.unreachable, lang))))
        if result.changed and result.done:
            out.append(Reply(t(lang, "publish_changed"),
                             buttons=(Button(t(lang, "btn_preview_again"), "summary", f"{team.key}:{result.cycle}"),)))
        return out


def names(targets: Sequence[str], lang: Lang) -> str:
    """Publish targets for people: `slack:C…` as `#C…`, documents by name or URL."""
    return join(lang, ["#" + x.split(":", 1)[1] if ":" in x else x for x in targets])


_HEADS = re.compile(r"^\s*#{1,3}\s*(收获与反思|lessons and reflections|下周工作及目标|next week's work and goals)\s*$",
                    re.I | re.M)


def two_parts(body: str) -> tuple[str, str]:
    """The text under the 收获与反思 heading and under the 下周工作及目标 heading."""
    parts = {"r": "", "n": ""}
    marks = list(_HEADS.finditer(body))
    for i, m in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(body)
        which = "r" if m.group(1).lower() in ("收获与反思", "lessons and reflections") else "n"
        parts[which] = body[m.end():end].strip()
    return parts["r"], parts["n"]


def _parse_day(word: str, today: date) -> date | None:
    """`2024-10-01`, `10-01` or `10/01` (this year) as a day; None when it is none of these."""
    m = re.fullmatch(r"(?:(\d{4})-)?(\d{1,2})[-/](\d{1,2})", word.strip())
    if not m:
        return None
    try:
        return date(int(m.group(1) or today.year), int(m.group(2)), int(m.group(3)))
    except ValueError:
        return None


def _days(first: date, last: date) -> str:
    return f"{first:%Y-%m-%d}" if first == last else f"{first:%Y-%m-%d}..{last:%Y-%m-%d}"
