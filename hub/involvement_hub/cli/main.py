"""The ``hub`` command. Each subcommand reads the settings once and passes them on.

Exit status: 0 success; 1 the command ran but not everything succeeded (for example a
bad line in ``hub publish``); 2 a configuration or usage error, with a message naming it;
141 standard output was closed by its reader (``| head``), quietly.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
import os
import re
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from involvement_hub.errors import ConfigError, ContractError, HubError, LocalKafkaError
from involvement_hub.settings import Settings

EXIT_OK, EXIT_PARTIAL, EXIT_CONFIG = 0, 1, 2


# What a plugin's ``register`` is given: add a subcommand with its handler and help text.
Handler = Callable[[argparse.Namespace, Settings], int]
AddCommand = Callable[[str, Handler, str], argparse.ArgumentParser]

# The entry point group through which other installed packages add subcommands: the
# development tools (``involvement-hub-devtools``: kafka, mailbox, simulate, bench, chaos,
# demo) register theirs there, so the runtime never imports them.
COMMANDS_GROUP = "involvement_hub.commands"
DEVELOPMENT_COMMANDS = ("kafka", "mailbox", "simulate", "bench", "chaos", "demo")


def say(text: str) -> None:
    """Progress and problems go to standard error; results go to standard output."""
    print(text, file=sys.stderr, flush=True)


_say = say


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    from involvement_hub.streaming.worker import run_worker

    run_worker(settings)
    return EXIT_OK


def _publish(args: argparse.Namespace, settings: Settings) -> int:
    from involvement_hub.cli.publish import prepare_file, publish_prepared
    from involvement_hub.config import load_config

    path: Path = args.file
    if not path.is_file():
        _say(f"hub publish: no such file: {path}")
        return EXIT_CONFIG
    registry = load_config(settings).registry
    items = prepare_file(path, registry, settings.agencies)
    # aiokafka warns on every failed reconnect; the report says once what went wrong.
    logging.getLogger("aiokafka").addHandler(logging.NullHandler())
    report = asyncio.run(publish_prepared(items, settings, progress=_say))
    print(f"published {report.sent} events; {report.not_sent} lines not sent")
    if report.stopped is not None:
        _say(
            f"hub publish: stopped at line {report.stopped.line}: {report.stopped.reason}; "
            f"{report.unsent} of the file's good lines not sent"
        )
        return EXIT_CONFIG
    return EXIT_OK if report.ok else EXIT_PARTIAL


def _topics(args: argparse.Namespace, settings: Settings) -> int:
    from involvement_hub.kafka.admin import ensure_topics

    created = asyncio.run(ensure_topics(settings, replication_factor=settings.replication_factor))
    print("\n".join(created) if created else "all topics exist")
    return EXIT_OK


def _check(args: argparse.Namespace, settings: Settings) -> int:
    from involvement_hub.config import load_config

    config = load_config(settings)
    kinds = len(config.policy.kinds)
    print(
        f"ok: {len(config.registry.all())} schemas, policy {config.policy.version} "
        f"({kinds} kinds), {len(config.rules.rules)} subscription rules"
    )
    return EXIT_OK


def _schemas(args: argparse.Namespace, settings: Settings) -> int:
    from involvement_hub.config import load_registry

    registry = load_registry(args.folder or settings.schema_dir)
    count = 0
    for name in registry.names:
        versions = registry.versions(name)
        count += len(versions)
        print(f"{name}: {', '.join(f'v{v.version}' for v in versions)}")
    print(
        f"ok: {count} schemas, {len(registry.names)} record names, "
        "every version fully compatible with the ones before it"
    )
    return EXIT_OK


def _team(args: argparse.Namespace, settings: Settings) -> int:
    from involvement_hub.cli.queries import team_view
    from involvement_hub.cli.reports import team_report

    view = asyncio.run(team_view(settings, args.identifier))
    print(team_report(view, show_sensitive=args.include_sensitive))
    return EXIT_OK


def _audit(args: argparse.Namespace, settings: Settings) -> int:
    from involvement_hub.cli.queries import (
        delivery_outcomes,
        disclosures,
        former_ids,
        identity_log,
        person_for,
    )
    from involvement_hub.cli.reports import audit_report
    from involvement_hub.core.audit import delivery_states

    async def gather() -> tuple[list[Any], dict[str, Any]]:
        records = list(await disclosures(settings))
        states = delivery_states(await delivery_outcomes(settings))
        if args.person:
            ids = former_ids(await person_for(settings, args.person), await identity_log(settings))
            records = [r for r in records if r.person_id in ids or r.about_person_id in ids]
        if args.practitioner:
            records = [r for r in records if r.recipient_id == args.practitioner]
        if args.since:
            records = [r for r in records if r.decided_at.date() >= args.since]
        return records, states

    if not (args.person or args.practitioner):
        _say("hub audit: give --person scheme:value or --practitioner agency/practitioner_id")
        return EXIT_CONFIG
    # The agency is not checked against HUB_AGENCIES: an audit may ask about a former one.
    problem = args.practitioner and practitioner_problem(args.practitioner)
    if problem:
        _say(f"hub audit: --practitioner {problem}")
        return EXIT_CONFIG
    print(audit_report(*asyncio.run(gather())))
    return EXIT_OK


def _delivery(args: argparse.Namespace, settings: Settings) -> int:
    from involvement_hub.cli.queries import delivery_history
    from involvement_hub.cli.reports import delivery_report

    history = asyncio.run(delivery_history(settings, args.alert_id))
    print(delivery_report(args.alert_id, history))
    return EXIT_OK if history else EXIT_PARTIAL


_RECIPIENT = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}/[A-Za-z0-9._-]{1,64}$")
_RECIPIENT_FORM = (
    "agency/practitioner_id, for example northshire-social-care/SW-0042 (the agency's id, "
    "a slash, then the practitioner's id in that agency: letters, digits, '.', '_', '-')"
)


def practitioner_problem(text: str, agencies: Sequence[str] | None = None) -> str | None:
    """Why ``text`` is not a practitioner as the hub names them (``agency/id``), or None.
    With ``agencies``, the agency must be one of them."""
    if not _RECIPIENT.match(text):
        return f"{text!r} is not of the form {_RECIPIENT_FORM}"
    agency = text.partition("/")[0]
    if agencies is not None and agency not in agencies:
        known = ", ".join(agencies)
        return f"{text!r}: agency {agency!r} is not one of the hub's agencies ({known})"
    return None


def _preferences(args: argparse.Namespace, settings: Settings) -> int:
    from involvement_hub.core.delivery_plan import Mode, Preference
    from involvement_hub.delivery.settings_files import load_preferences, write_preferences

    folder = settings.subscriptions_dir
    current = load_preferences(folder)
    if args.action == "list":
        if not current:
            print("No preferences set: ROUTINE alerts follow default_mode in delivery.toml.")
        for recipient, pref in sorted(current.items()):
            at = f" at {pref.at.isoformat(timespec='minutes')}" if pref.at else ""
            print(f"{recipient}: {pref.mode.value}{at}")
        return EXIT_OK
    if not args.practitioner:
        _say(f"hub preferences {args.action}: give the practitioner as {_RECIPIENT_FORM}")
        return EXIT_CONFIG
    # Clearing takes any well-formed id, so an entry left by a former agency can go.
    problem = practitioner_problem(
        args.practitioner, settings.agencies if args.action == "set" else None
    )
    if problem:
        _say(f"hub preferences {args.action}: {problem}")
        return EXIT_CONFIG
    if args.action == "clear":
        current.pop(args.practitioner, None)
    else:
        mode = Mode(args.mode)
        if mode is Mode.DAILY and args.at is None:
            _say("hub preferences: a daily digest needs --at HH:MM")
            return EXIT_CONFIG
        current[args.practitioner] = Preference(mode, args.at if mode is Mode.DAILY else None)
    path = write_preferences(folder, current)
    print(
        f"{args.practitioner}: {args.action} recorded in {path}; workers pick it up within a minute"
    )
    return EXIT_OK


def _quarantine(args: argparse.Namespace, settings: Settings) -> int:
    from involvement_hub.cli import quarantine
    from involvement_hub.kafka.topics import TopicNames

    messages, ends = asyncio.run(quarantine.read(settings, from_start=args.from_start))
    if args.action == "list":
        print(quarantine.summary(messages, TopicNames.from_settings(settings)))
        return EXIT_OK
    asyncio.run(
        quarantine.replay(
            settings, messages, ends, reason=args.reason, agency=args.agency, progress=_say
        )
    )
    return EXIT_OK


def _validate_config(settings: Settings) -> None:
    """Every command stops on an invalid policy, rules, delivery file, vocabulary or schema, even
    one that does not use them: a hub that will not start should not seem to work."""
    from involvement_hub.config import load_config

    load_config(settings)


def build_parser() -> argparse.ArgumentParser:
    return _parser_and_commands()[0]


def _parser_and_commands() -> tuple[argparse.ArgumentParser, set[str]]:
    from involvement_hub.cli import identity as identity_command

    parser = argparse.ArgumentParser(
        prog="hub",
        description="The involvement notification hub. Configure with HUB_* variables (README).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    names: set[str] = set()

    def add(name: str, handler: Handler, text: str) -> argparse.ArgumentParser:
        names.add(name)
        command = sub.add_parser(name, help=text, description=text)
        # A command that has nothing to do with the hub's configuration (the local broker)
        # sets this to False, so a broken policy file does not stop it.
        command.set_defaults(handler=handler, uses_config=True)
        return command

    add("worker", _worker, "run a hub worker (consumes agency topics, routes and delivers alerts)")
    publish = add("publish", _publish, "publish JSON Lines records to their agencies' topics")
    publish.add_argument(
        "file", type=Path, help='a .jsonl file: one record per line with a "schema" key'
    )
    add("topics", _topics, "create any missing hub topics")
    add("check", _check, "validate the schemas, governance policy and subscription rules")
    schemas = add(
        "schemas",
        _schemas,
        "check the Avro schemas: every version of a record reads, and is read by, the ones "
        "before it",
    )
    schemas.add_argument("action", choices=("check",))
    schemas.add_argument(
        "folder",
        nargs="?",
        type=Path,
        help="a folder of <name>.v<N>.avsc files (default: HUB_SCHEMA_DIR, else the shipped ones)",
    )
    # Needs neither the policy nor the rules: an agency or CI can check a folder on its own.
    schemas.set_defaults(uses_config=False)
    team = add("team", _team, "print the team around a person, their family links and household")
    team.add_argument("identifier", help="scheme:value, for example nhs_number:9990000018")
    team.add_argument(
        "--include-sensitive", action="store_true", help="also show unconsented sensitive services"
    )
    audit = add("audit", _audit, "who was told what, when and why: the disclosure audit")
    audit.add_argument(
        "--person", metavar="SCHEME:VALUE", help="decisions about this person (any former id too)"
    )
    audit.add_argument(
        "--practitioner", metavar="AGENCY/ID", help="decisions about alerts to this practitioner"
    )
    audit.add_argument(
        "--since", type=dt.date.fromisoformat, metavar="YYYY-MM-DD", help="only from this date"
    )
    identity_command.register(add)
    delivery = add("delivery", _delivery, "an alert's delivery history, by alert id")
    delivery.add_argument("alert_id", help="the alert reference at the foot of the email")
    prefs = add("preferences", _preferences, "how practitioners receive ROUTINE alerts")
    prefs.add_argument("action", choices=("list", "set", "clear"))
    prefs.add_argument("practitioner", nargs="?", help="agency/practitioner_id")
    prefs.add_argument(
        "--mode", choices=("immediate", "hourly", "daily", "working_hours"), default="immediate"
    )
    prefs.add_argument(
        "--at", type=dt.time.fromisoformat, help="for a daily digest: HH:MM (local time)"
    )
    quarantine = add(
        "quarantine", _quarantine, "list quarantined messages, or replay them after a fix"
    )
    quarantine.add_argument("action", choices=("list", "replay"))
    quarantine.add_argument("--reason", help="only messages quarantined for this reason")
    quarantine.add_argument("--agency", help="only messages from this agency's topic")
    quarantine.add_argument(
        "--from-start",
        action="store_true",
        help="include messages an earlier replay already went over",
    )
    for entry in entry_points(group=COMMANDS_GROUP):
        entry.load()(add)
    return parser, names


def main(argv: Sequence[str] | None = None) -> int:
    parser, names = _parser_and_commands()
    given = list(sys.argv[1:] if argv is None else argv)
    if given and given[0] in DEVELOPMENT_COMMANDS and given[0] not in names:
        _say(
            f"hub {given[0]}: a development command; it comes with the development tools "
            "(pip install ./devtools, or `make venv` in a checkout)"
        )
        return EXIT_CONFIG
    args = parser.parse_args(given)
    try:
        settings = Settings.from_env()
        if args.uses_config:
            _validate_config(settings)
        status = int(args.handler(args, settings))
        # Flushed here, not at exit, so a reader that has gone away is seen below.
        sys.stdout.flush()
        return status
    except BrokenPipeError:
        return _reader_gone()
    except (ConfigError, ContractError) as exc:
        _say(f"hub {args.command}: configuration problem: {exc}")
        return EXIT_CONFIG
    except LocalKafkaError as exc:
        _say(f"hub {args.command}: local Kafka: {exc}")
        return EXIT_CONFIG
    except HubError as exc:
        _say(f"hub {args.command}: {exc}")
        return EXIT_PARTIAL
    except KeyboardInterrupt:
        return 130


# What a shell reports for a command that SIGPIPE ended (128 + 13), as `seq 1 100000 | head`
# does: the output was cut short, which a script under `set -o pipefail` may want to know.
EXIT_READER_GONE = 141


def _reader_gone() -> int:
    """The reader of standard output has closed it (``hub identity candidates | head``): end
    quietly. Standard output is pointed at /dev/null so that the interpreter's own flush at
    exit does not fail again and print a traceback."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return EXIT_READER_GONE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
