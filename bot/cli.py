"""The `weekly-bot` command line (spec §4): one clear line on stderr and exit ≠ 0 on any error."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from bot.errors import ConfigError, UserError

if TYPE_CHECKING:
    from bot.platform import Platform as Sender
    from bot.wiring import App

logger = logging.getLogger("weekly-bot")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="the team file (default: $WEEKLY_CONFIG or ./team.yaml)")
    p.add_argument("--db", help="SQLAlchemy database URL (default: $DATABASE_URL or sqlite:///weekly.db)")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line (spec §4), with `--help` for the rest."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"weekly-bot: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="weekly-bot", description="Runs a department's weekly report in chat.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("demo", help="a whole cycle offline, narrated, in a temporary SQLite database")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory and print its path")

    p = sub.add_parser("chat", help="talk to the bot in the terminal as any member")
    _common(p)
    p.add_argument("--as", dest="member", help="member key to speak as (default: the first lead)")

    p = sub.add_parser("tick", help="send everything due at an instant once (prompts, reminders, escalations)")
    _common(p)
    p.add_argument("--at", help="ISO-8601 instant (default: now); without an offset, the team file's time zone")

    p = sub.add_parser("clock", help="the scheduler alone: a tick every minute")
    _common(p)

    p = sub.add_parser("status", help="who has answered")
    _common(p)
    p.add_argument("--team")
    p.add_argument("--cycle")
    p.add_argument("--format", choices=["text", "json"], default="text")

    p = sub.add_parser("publish", help="publish the cycle's reviewed report to the team's publish targets")
    _common(p)
    p.add_argument("--team")
    p.add_argument("--cycle")

    p = sub.add_parser("report", help="the compiled report")
    _common(p)
    p.add_argument("--team")
    p.add_argument("--cycle")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--summarize", dest="summarize", action="store_true", default=None,
                   help="draft the closing sections (LLM if configured, else offline)")
    g.add_argument("--no-summarize", dest="summarize", action="store_false")
    p.add_argument("--format", choices=["markdown", "json"], default="markdown")
    p.add_argument("-o", "--output", help="write to this file instead of stdout")
    p.add_argument("--force", action="store_true",
                   help="with -o: write even through a symbolic link, or over the team file or the database")

    p = sub.add_parser("cycles", help="the team's cycles: past (stored), open and upcoming")
    _common(p)
    p.add_argument("--team")
    p.add_argument("--from", dest="lo", metavar="CYCLE", help="from this cycle or week (default: the first stored)")
    p.add_argument("--to", dest="hi", metavar="CYCLE", help="to this cycle or week (default: eight weeks ahead)")
    p.add_argument("--format", choices=["text", "json"], default="text")

    p = sub.add_parser("import", help="load past reports (Markdown) as history")
    _common(p)
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--team")
    p.add_argument("--cycle")

    p = sub.add_parser("check", help="validate the team file, the database and the platforms' credentials")
    _common(p)

    p = sub.add_parser("serve", help="HTTP: POST /slack/events, POST /feishu/events and GET /healthz, "
                                         "plus the scheduler")
    _common(p)
    p.add_argument("--port", type=_port, help="the port to listen on (default: $PORT or 3000)")
    p.add_argument("--no-scheduler", action="store_true",
                   help="start no scheduler (run `weekly-bot clock` in one process instead)")

    p = sub.add_parser("socket", help="Slack Socket Mode (SLACK_APP_TOKEN) and/or the Feishu long connection "
                                          "(FEISHU_APP_ID), plus the scheduler")
    _common(p)
    p.add_argument("--no-scheduler", action="store_true", help="start no scheduler")

    p = sub.add_parser("db", help="database maintenance")
    _common(p)
    p.add_argument("action", choices=["upgrade"])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.DEBUG if os.environ.get("WEEKLY_DEBUG") else logging.WARNING,
        format="weekly-bot: %(message)s",
    )
    if not os.environ.get("WEEKLY_DEBUG"):
        # slack_sdk logs each failed request at ERROR, then raises: we say it once, as a UserError
        logging.getLogger("slack_sdk").setLevel(logging.CRITICAL)
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    try:
        return int(COMMANDS[args.command](args) or 0)
    except UserError as e:
        print(f"weekly-bot: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except Exception as e:  # never a traceback on the terminal; WEEKLY_DEBUG=1 shows it in the log
        logger.debug("internal error", exc_info=True)
        print(f"weekly-bot: internal error: {type(e).__name__}: {e} (WEEKLY_DEBUG=1 shows details)", file=sys.stderr)
        return 1


def _app(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from bot.wiring import build_app

    return build_app(config=args.config, db=args.db)


def _port(text: str) -> int:
    """A TCP port to listen on, 1 to 65535."""
    if not text.strip().isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (1 to 65535)")
    return int(text)


def _kept_files(app, args: argparse.Namespace) -> list[str]:  # type: ignore[no-untyped-def]
    """The files weekly-bot lives on, which `-o` must not overwrite by mistake."""
    config = args.config or app.settings.weekly_config
    db = app.store.engine.url.database if app.store.engine.url.get_backend_name() == "sqlite" else None
    return [config] + ([db, f"{db}-wal", f"{db}-shm"] if db else [])


def _check_output(output: str | None, *, protect: Sequence[str] = (), force: bool = False) -> None:
    """Refuse an `-o` that cannot or must not be written, before any work (a draft, an LLM call) is done."""
    if output is None:
        return
    target = Path(output)
    if not output.strip():
        raise ConfigError("-o: the file name is empty")
    if target.is_dir():
        raise ConfigError(f"{output}: is a directory; name a file (like {target / 'report.md'})")
    if not target.parent.is_dir():
        raise ConfigError(f"{output}: no such directory {str(target.parent)!r}")
    if not force:
        if target.is_symlink():
            raise ConfigError(f"{output}: is a symbolic link; not written (pass --force to write through it)")
        for kept in protect:
            if kept and target.exists() and Path(kept).exists() and target.resolve() == Path(kept).resolve():
                raise ConfigError(f"{output}: is {kept}, which weekly-bot uses; not overwritten "
                                  "(pass --force if that is really meant)")


def _emit(text: str, output: str | None, *, protect: Sequence[str] = (), force: bool = False) -> None:
    _check_output(output, protect=protect, force=force)
    if output:
        target = Path(output)
        try:
            target.write_text(text, encoding="utf-8")
        except OSError as e:
            raise ConfigError(f"{output}: cannot write ({e.strerror})") from None
        print(f"wrote {output}", file=sys.stderr)
    else:
        sys.stdout.write(text)


def cmd_status(args: argparse.Namespace) -> int:
    app = _app(args)
    team = app.service.team(args.team)
    if args.format == "json":
        status = app.service.status(team, args.cycle)
        _emit(json.dumps(status.to_json(), ensure_ascii=False, indent=2) + "\n", None)
    else:
        from bot.chat import ChatBot

        _emit(ChatBot(app.service).status_text(team, args.cycle) + "\n", None)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    app = _app(args)
    _check_output(args.output, protect=_kept_files(app, args), force=args.force)
    team = app.service.team(args.team)
    report = app.service.report(team, args.cycle, summarize=args.summarize)
    s = report.summary
    if s is not None:
        if s.note:
            print(f"weekly-bot: {s.note}", file=sys.stderr)
        if s.source == "llm" or s.calls:
            print(f"weekly-bot: summary {s.source}: {s.tokens_in} tokens in, {s.tokens_out} out, "
                  f"{s.latency_ms} ms, {s.calls} call(s); "
                  f"{len(s.reflections) + len(s.next_week) if s.source == 'llm' else 0} LLM item(s) kept, "
                  f"{len(s.dropped)} dropped", file=sys.stderr)
            for d in s.dropped:
                print(f"weekly-bot:   dropped {d.get('part', 'carried goal')}: {str(d.get('text', ''))[:60]!r} — "
                      f"{d.get('reason')}", file=sys.stderr)
    if args.format == "json":
        text = json.dumps(report.to_json(), ensure_ascii=False, indent=2) + "\n"
    else:
        text = report.markdown
    _emit(text, args.output, protect=_kept_files(app, args), force=args.force)
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    """The snapshot a lead last previewed (else the report as `report` shows it), once per target."""
    from bot.publish import publish, targets

    app = _app(args)
    team = app.service.team(args.team)
    if not targets(team):
        raise ConfigError(f"team {team.key} has no publish targets in the team file (publish:)")
    senders = _senders(app)  # before compiling anything: without a platform nothing could be delivered
    snap = app.service.latest_snapshot(team, args.cycle)
    if snap is None:
        report = app.service.report(team, args.cycle)
        print(f"weekly-bot: {report.cycle} was never previewed in chat: publishing the report as "
              f"`weekly-bot report` shows it", file=sys.stderr)
        snap = app.service.snapshot(report, None)
    result = publish(app.service, team, snap, None, senders)
    for name in result.done:
        print(f"published to {name}")
    for name in result.already:
        print(f"already published to {name}: not posted again")
    for url in result.links:
        print(f"document: {url}")
    if result.changed:
        print("weekly-bot: owners changed their text since this report was previewed; what was published is the "
              "previewed version", file=sys.stderr)
    for name in result.failed + result.unreachable:
        print(f"weekly-bot: error: publishing to {name} failed", file=sys.stderr)
    return 1 if result.failed or result.unreachable else 0


def cmd_cycles(args: argparse.Namespace) -> int:
    app = _app(args)
    team = app.service.team(args.team)
    cycles = app.service.cycles(team, args.lo, args.hi)
    now = app.service.now()
    tz = app.team_file.tz(team)
    if args.format == "json":
        data = {"team": team.key, "cycles": [
            {"label": c.label, "weeks": list(c.week_labels), "opens_at": c.opens_at.isoformat(),
             "deadline": c.deadline.isoformat(), "state": c.state(now)} for c in cycles]}
        _emit(json.dumps(data, ensure_ascii=False, indent=2) + "\n", None)
        return 0
    lines = [f"{team.key}: {team.title} ({len(cycles)} cycles)"]
    for c in cycles:
        lines.append(f"{c.label:<18} opens {c.opens_at.astimezone(tz):%a %Y-%m-%d %H:%M}  "
                     f"due {c.deadline.astimezone(tz):%a %Y-%m-%d %H:%M}  {c.state(now)}")
    _emit("\n".join(lines) + "\n", None)
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    app = _app(args)
    team = app.service.team(args.team)
    from tqdm import tqdm

    # a bar on a terminal only (disable=None: off when stderr is not a TTY, so pipes and logs stay clean)
    with tqdm(total=len(args.files), desc="importing", unit="report", file=sys.stderr, disable=None,
              dynamic_ncols=True) as bar:

        def progress(done: int, total: int, cycle: str) -> None:
            bar.set_postfix_str(cycle, refresh=False)
            bar.update(done - bar.n)

        result = app.service.import_reports(args.files, team=team, label=args.cycle, progress=progress)
    for w in result.warnings:
        print(f"weekly-bot: warning: {w}", file=sys.stderr)
    print(f"imported {len(result.cycles)} report(s) into {team.key}: {', '.join(result.cycles)} "
          f"({result.sections} sections)")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from bot.config import load_settings, load_team_file
    from storage.db import current_revision, ensure_schema, head_revision, make_engine, safe_url

    settings = load_settings()
    path = args.config or settings.weekly_config
    tf = load_team_file(path)
    sections = sum(len(t.sections) for t in tf.teams)
    print(f"ok  {path}: {len(tf.teams)} team(s), {sections} section(s), {len(tf.members)} member(s)")
    engine = make_engine(args.db or settings.database_url)
    ensure_schema(engine)
    print(f"ok  database {safe_url(engine)} at migration {current_revision(engine)} (head {head_revision(engine)})")
    from handlers.checks import check_platforms

    failures = 0
    for ok, line in check_platforms(settings):
        print(("ok  " if ok else "FAIL ") + line)
        failures += not ok
    return 1 if failures else 0


def cmd_db(args: argparse.Namespace) -> int:
    from bot.config import load_settings
    from storage.db import make_engine, safe_url, upgrade

    settings = load_settings()
    engine = make_engine(args.db or settings.database_url, lock_wait_ms=60_000)  # migrations may take a while
    try:
        before, after = upgrade(engine)
    except Exception as e:
        raise ConfigError(f"database {safe_url(engine)}: upgrade failed: {str(e).splitlines()[0]}") from None
    print(f"database {safe_url(engine)}: {before or 'empty'} → {after}")
    return 0


def cmd_chat(args: argparse.Namespace) -> int:
    from bot.chat import ChatBot
    from handlers.console import ConsoleChat

    app = _app(args)
    members = app.team_file.members
    member = args.member or next((lead for t in app.team_file.teams for lead in t.leads), next(iter(members)))
    if member not in members:
        raise ConfigError(f"no member {member!r} in the team file (members: {', '.join(members)})")
    chat = ConsoleChat(ChatBot(app.service), sys.stdout, member)
    print(f"Talking to weekly-bot as {members[member].name} ({member}). /weekly help for commands, "
          "/as KEY to switch, Ctrl-D to quit.")
    for line in sys.stdin:
        if line.strip():
            chat.handle(line.rstrip("\n"))
    chat.finish()
    return 0


NO_PLATFORM = "no chat platform is configured (set SLACK_BOT_TOKEN, or FEISHU_APP_ID and FEISHU_APP_SECRET)"


def _senders(app):  # type: ignore[no-untyped-def]
    from bot.wiring import build_senders

    senders = build_senders(app)
    if not senders:
        raise ConfigError(f"{NO_PLATFORM}: nothing could be delivered")
    return senders


def _instant(text: str | None, tz_name: str):  # type: ignore[no-untyped-def]
    from datetime import datetime
    from zoneinfo import ZoneInfo

    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"--at {text!r} is not an ISO-8601 time (like 2024-10-14T10:00+08:00)") from None
    return value if value.tzinfo else value.replace(tzinfo=ZoneInfo(tz_name))


def cmd_tick(args: argparse.Namespace) -> int:
    from bot.tick import pending, tick
    from bot.wiring import build_senders

    app = _app(args)
    when = _instant(args.at, app.team_file.timezone)
    senders = build_senders(app)
    if not senders:
        due = pending(app.service, when or app.service.now())
        if not due:
            print("nothing due")
            return 0
        raise ConfigError(f"{len(due)} message(s) due but {NO_PLATFORM}")
    sent = tick(app.service, senders, when)
    for s in sent:
        state = "sent" if s.ok else f"FAILED ({s.error}); will retry"
        offset = f" {s.due.offset}" if s.due.offset else ""
        print(f"{s.due.kind}{offset} {s.due.team} {s.due.cycle} → {s.due.member} via {s.platform}: {state}")
    if not sent:
        print("nothing due")
    return 1 if any(not s.ok for s in sent) else 0


def cmd_clock(args: argparse.Namespace) -> int:
    from handlers.clock import run_clock

    logging.getLogger("bot").setLevel(logging.INFO)
    app = _app(args)
    run_clock(app, _senders(app))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from bot.wiring.demo import run_demo

    return run_demo(sys.stdout, keep=args.keep)


def _log_info() -> None:
    """Long-running commands say what they do at INFO; libraries stay at WARNING (WEEKLY_DEBUG=1: DEBUG)."""
    if not os.environ.get("WEEKLY_DEBUG"):
        for name in ("weekly-bot", "bot", "handlers", "storage"):
            logging.getLogger(name).setLevel(logging.INFO)


def _start_clock(app: App, senders: Sequence[Sender], *, enabled: bool) -> Callable[[], None]:
    """The background scheduler unless turned off; returns its stop function."""
    if not enabled:
        logger.info("scheduler off (--no-scheduler): run `weekly-bot clock` in one process")
        return lambda: None
    from handlers.clock import start_background_clock

    logger.info("scheduler on: prompts, reminders and deadline notices are sent from this process")
    return start_background_clock(app, senders)


def cmd_serve(args: argparse.Namespace) -> int:
    from handlers.web import create_web_app, no_platform_note, run_server, web_edges

    _log_info()
    app = _app(args)
    edges = web_edges(app)
    if not edges:  # a lead trying the web view on a laptop (`weekly-bot chat`, then /weekly web)
        logger.warning("%s", no_platform_note(app.settings))
    if args.port is not None and not app.settings.weekly_public_url:  # sign-in links name the port served
        app.service.public_url = f"http://localhost:{args.port}"
    web = create_web_app(app, edges)
    stop = (_start_clock(app, [e.sender for e in edges], enabled=not args.no_scheduler) if edges
            else (lambda: None))  # nothing could be sent
    try:
        run_server(web, port=args.port if args.port is not None else app.settings.port)
    finally:
        stop()
    return 0


def _logging_failure(run: Callable[[], None]) -> None:
    """A connection run in a thread: its failure is one log line, not a traceback."""
    try:
        run()
    except Exception as e:
        logger.error("%s stopped: %s: %s", threading.current_thread().name, type(e).__name__, e)


def cmd_socket(args: argparse.Namespace) -> int:
    """Every configured long-lived connection (Slack Socket Mode, the Feishu long connection); the last runs
    in the foreground, the others in threads."""
    from handlers import registry
    from handlers.edge import FINISH_S

    _log_info()
    app = _app(args)
    connections = [(plugin.name, conn) for plugin in registry.configured(app.settings)
                   if (conn := plugin.connection(app)) is not None]
    if not connections:
        raise ConfigError("socket: no long connection is configured: set SLACK_BOT_TOKEN and SLACK_APP_TOKEN "
                        "(Slack Socket Mode), or FEISHU_APP_ID and FEISHU_APP_SECRET (the Feishu long connection)")
    stop = _start_clock(app, [conn.sender for _, conn in connections], enabled=not args.no_scheduler)
    # SIGTERM (a deploy, a scale-down) stops it as Ctrl-C does: then the work the acks left is finished
    main_thread = threading.current_thread() is threading.main_thread()  # (only it may set a handler)
    previous = signal.signal(signal.SIGTERM, _interrupt) if main_thread else None
    try:
        for name, conn in connections[:-1]:
            threading.Thread(target=_logging_failure, args=(conn.run,), name=f"{name}-connection",
                             daemon=True).start()
        connections[-1][1].run()
    except KeyboardInterrupt:
        logger.info("socket: stopping")
    finally:
        stop()
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
        for _, conn in connections:
            conn.finish(FINISH_S)
    return 0


def _interrupt(signum: int, frame: object) -> NoReturn:
    raise KeyboardInterrupt


COMMANDS = {
    "tick": cmd_tick,
    "clock": cmd_clock,
    "status": cmd_status,
    "report": cmd_report,
    "publish": cmd_publish,
    "cycles": cmd_cycles,
    "import": cmd_import,
    "check": cmd_check,
    "db": cmd_db,
    "chat": cmd_chat,
    "demo": cmd_demo,
    "serve": cmd_serve,
    "socket": cmd_socket,
}


if __name__ == "__main__":
    raise SystemExit(main())
