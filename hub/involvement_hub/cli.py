"""The ``hub`` command. Each subcommand reads the settings once and passes them on.

Exit status: 0 success; 1 the command ran but not everything succeeded (for example a
bad line in ``hub publish``); 2 a configuration or usage error, with a message naming it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from involvement_hub.errors import ConfigError, ContractError, HubError, LocalKafkaError
from involvement_hub.settings import Settings

EXIT_OK, EXIT_PARTIAL, EXIT_CONFIG = 0, 1, 2


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _kafka(args: argparse.Namespace, settings: Settings) -> int:
    from involvement_hub.localkafka import LocalKafka

    local = LocalKafka(settings, progress=_say)
    if args.action == "start":
        started = local.start()
        print(f"kafka {'started' if started else 'already running'} at {local.bootstrap}")
    elif args.action == "stop":
        stopped = local.stop()
        print("kafka stopped" if stopped else "kafka was not running")
    else:
        status = local.status()
        state = "running" if status.running else "not running"
        answer = "answering" if status.answering else "not answering"
        print(f"kafka {state}, {answer} at {status.bootstrap} (pid {status.pid}, {status.home})")
        return EXIT_OK if status.answering else EXIT_PARTIAL
    return EXIT_OK


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    from involvement_hub.streaming.worker import run_worker

    run_worker(settings)
    return EXIT_OK


def _publish(args: argparse.Namespace, settings: Settings) -> int:
    from involvement_hub.config import load_config
    from involvement_hub.publish import prepare_file, publish_prepared

    path: Path = args.file
    if not path.is_file():
        _say(f"hub publish: no such file: {path}")
        return EXIT_CONFIG
    registry = load_config(settings).registry
    items = prepare_file(path, registry, settings.agencies)
    report = asyncio.run(publish_prepared(items, settings, progress=_say))
    print(f"published {report.sent} events; {len(report.errors)} lines not sent")
    return EXIT_OK if report.ok else EXIT_PARTIAL


def _mailbox(args: argparse.Namespace, settings: Settings) -> int:
    import signal
    import threading

    from involvement_hub.mailbox import Mailbox

    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    with Mailbox(settings.mailbox_dir, port=settings.mailbox_port, discard=args.discard):
        _say(f"mailbox listening on 127.0.0.1:{settings.mailbox_port} (plain SMTP)")
        where = "discarded (counted only)" if args.discard else f"kept in {settings.mailbox_dir}/"
        _say(f"messages are {where}; Ctrl-C to stop")
        with contextlib.suppress(KeyboardInterrupt):
            done.wait()
    return EXIT_OK


def _topics(args: argparse.Namespace, settings: Settings) -> int:
    from involvement_hub.kafka_admin import ensure_topics

    created = asyncio.run(ensure_topics(settings, replication_factor=settings.replication_factor))
    print("\n".join(created) if created else "all topics exist")
    return EXIT_OK


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    from involvement_hub.demo import run_demo

    return run_demo(
        settings, keep_running=args.keep_running, progress=_say, population=args.population
    )


def _check(args: argparse.Namespace, settings: Settings) -> int:
    from involvement_hub.config import load_config

    config = load_config(settings)
    kinds = len(config.policy.kinds)
    print(
        f"ok: {len(config.registry.all())} schemas, policy {config.policy.version} "
        f"({kinds} kinds), {len(config.rules.rules)} subscription rules"
    )
    return EXIT_OK


def _team(args: argparse.Namespace, settings: Settings) -> int:
    from involvement_hub.queries import team_view
    from involvement_hub.reports import team_report

    view = asyncio.run(team_view(settings, args.identifier))
    print(team_report(view, show_sensitive=args.include_sensitive))
    return EXIT_OK


def _audit(args: argparse.Namespace, settings: Settings) -> int:
    from involvement_hub.queries import disclosures, former_ids, identity_log, person_for
    from involvement_hub.reports import audit_report

    async def gather() -> list[Any]:
        records = list(await disclosures(settings))
        if args.person:
            ids = former_ids(await person_for(settings, args.person), await identity_log(settings))
            records = [r for r in records if r.person_id in ids or r.about_person_id in ids]
        if args.practitioner:
            records = [r for r in records if r.recipient_id == args.practitioner]
        if args.since:
            records = [r for r in records if r.decided_at.date() >= args.since]
        return records

    if not (args.person or args.practitioner):
        _say("hub audit: give --person scheme:value or --practitioner agency/practitioner_id")
        return EXIT_CONFIG
    print(audit_report(asyncio.run(gather())))
    return EXIT_OK


def _identity(args: argparse.Namespace, settings: Settings) -> int:
    from involvement_hub.queries import identity_log, open_candidates
    from involvement_hub.reports import candidates_report

    candidates = open_candidates(asyncio.run(identity_log(settings)))
    if args.action == "candidates":
        print(candidates_report(candidates))
        return EXIT_OK
    if not args.candidate or not args.steward or not args.reason:
        _say(f"hub identity {args.action}: give CANDIDATE_ID, --steward and --reason")
        return EXIT_CONFIG
    if args.candidate not in {c.candidate.candidate_id for c in candidates}:
        _say(f"hub identity {args.action}: {args.candidate} is not an open candidate")
        return EXIT_PARTIAL
    from involvement_hub.stewardship import send_decision

    asyncio.run(
        send_decision(
            settings,
            args.candidate,
            confirm=args.action == "confirm",
            steward=args.steward,
            reason=args.reason,
        )
    )
    print(f"{args.action} of {args.candidate} recorded; the resolver applies it in order")
    return EXIT_OK


def _delivery(args: argparse.Namespace, settings: Settings) -> int:
    from involvement_hub.queries import delivery_history
    from involvement_hub.reports import delivery_report

    history = asyncio.run(delivery_history(settings, args.alert_id))
    print(delivery_report(args.alert_id, history))
    return EXIT_OK if history else EXIT_PARTIAL


_RECIPIENT = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}/[A-Za-z0-9._-]{1,64}$")


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
    if not args.practitioner or not _RECIPIENT.match(args.practitioner):
        _say("hub preferences: give the practitioner as agency/practitioner_id")
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


def _simulate(args: argparse.Namespace, settings: Settings) -> int:
    from involvement_hub.config import load_config
    from involvement_hub.simulate import run_simulation

    run_simulation(
        settings,
        load_config(settings).registry,
        families=args.families,
        events=args.events,
        seed=args.seed,
        setup=not args.no_setup,
        rate=args.rate,
        out=args.out,
        progress=_say,
        start=args.start,
    )
    return EXIT_OK


def _utc_datetime(text: str) -> dt.datetime:
    """An ISO date and time; without an offset, UTC."""
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO date and time: {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _bench(args: argparse.Namespace, settings: Settings) -> int:
    from involvement_hub.bench import BenchOptions, run_bench, table

    options = BenchOptions(
        families=args.families,
        events=args.events,
        delivery_alerts=args.alerts,
        latency_rate=args.rate,
        latency_seconds=args.seconds,
        seed=args.seed,
        out=args.out,
        skip=frozenset(s for s in args.skip.split(",") if s),
        state_persons=args.state_persons,
        failover_persons=args.failover_persons,
    )
    results = run_bench(settings, options, progress=_say)
    print(table(results))
    return EXIT_OK


def _chaos(args: argparse.Namespace, settings: Settings) -> int:
    from involvement_hub.chaos import options_for, run_chaos, table

    faults = tuple(f for f in args.faults.split(",") if f) if args.faults else None
    options = options_for(
        "long" if args.long else "short",
        families=args.families,
        seed=args.seed,
        faults=faults,
        json_path=args.json,
        port_base=args.port_base,
        parallel=args.parallel,
    )
    rows = run_chaos(settings, options, progress=_say)
    print(table(rows))
    return EXIT_OK if all(r.met for r in rows) else EXIT_PARTIAL


def _quarantine(args: argparse.Namespace, settings: Settings) -> int:
    from involvement_hub import quarantine
    from involvement_hub.topics import TopicNames

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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hub",
        description="The involvement notification hub. Configure with HUB_* variables (README).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(
        name: str, handler: Callable[[argparse.Namespace, Settings], int], text: str
    ) -> argparse.ArgumentParser:
        command = sub.add_parser(name, help=text, description=text)
        command.set_defaults(handler=handler)
        return command

    kafka = add("kafka", _kafka, "start, stop or check the local development Kafka broker")
    kafka.add_argument("action", choices=("start", "stop", "status"))
    add("worker", _worker, "run a hub worker (consumes agency topics, routes and delivers alerts)")
    publish = add("publish", _publish, "publish JSON Lines records to their agencies' topics")
    publish.add_argument(
        "file", type=Path, help='a .jsonl file: one record per line with a "schema" key'
    )
    mailbox = add("mailbox", _mailbox, "run the local SMTP mailbox that keeps messages as files")
    mailbox.add_argument(
        "--discard", action="store_true", help="accept and discard (a benchmark sink)"
    )
    add("topics", _topics, "create any missing hub topics")
    add("check", _check, "validate the schemas, governance policy and subscription rules")
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
    identity = add("identity", _identity, "probable identity matches for data stewards")
    identity.add_argument("action", choices=("candidates", "confirm", "reject"))
    identity.add_argument("candidate", nargs="?", help="the candidate id (confirm, reject)")
    identity.add_argument("--steward", help="who decides (recorded in the identity log)")
    identity.add_argument("--reason", help="why (recorded in the identity log)")
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
    sim = add("simulate", _simulate, "publish (or write) a synthetic population's events")
    sim.add_argument(
        "--families", type=int, default=1000, help="families in the population (default 1000)"
    )
    sim.add_argument(
        "--events", type=int, default=10_000, help="life and involvement events after setup"
    )
    sim.add_argument(
        "--seed", type=int, default=1, help="the same seed gives the same population and events"
    )
    sim.add_argument(
        "--start",
        type=_utc_datetime,
        metavar="YYYY-MM-DDTHH:MM[:SS][+HH:MM]",
        help="time of the first record (default: now); with --seed, the output is identical",
    )
    sim.add_argument(
        "--no-setup",
        action="store_true",
        help="skip the setup records (parents, open involvements)",
    )
    sim.add_argument(
        "--rate", type=float, default=0.0, help="events per second (default: as fast as possible)"
    )
    sim.add_argument("--out", type=Path, help="write JSON Lines here instead of publishing")
    bench = add(
        "bench", _bench, "measure the hub against raw baselines (prints a table, writes JSON)"
    )
    bench.add_argument(
        "--families", type=int, default=2000, help="population size (about 3.6 persons each)"
    )
    bench.add_argument(
        "--events", type=int, default=20_000, help="events after the population's setup records"
    )
    bench.add_argument(
        "--alerts", type=int, default=3000, help="alerts for the delivery comparison"
    )
    bench.add_argument(
        "--rate", type=float, default=1000.0, help="offered load for the latency run, events/s"
    )
    bench.add_argument("--seconds", type=float, default=20.0, help="length of the latency run")
    bench.add_argument("--seed", type=int, default=1)
    bench.add_argument("--out", type=Path, help="where to write the JSON results")
    bench.add_argument(
        "--skip",
        default="",
        help="comma-separated: ingest, latency, restart, delivery, state, failover",
    )
    bench.add_argument(
        "--state-persons",
        type=int,
        default=20_000,
        help="persons in the large-state run (1000000 for the full measure)",
    )
    bench.add_argument(
        "--failover-persons",
        type=int,
        default=20_000,
        help="persons in the failover run: two workers, the one routing killed with kill -9 "
        "(1000000 for the full measure: about 50 minutes)",
    )
    chaos = add(
        "chaos",
        _chaos,
        "the fault harness: a seeded population, a fault-free reference, then each fault; "
        "prints missing, duplicate and extra emails per fault (exit 0: every target met)",
    )
    length = chaos.add_mutually_exclusive_group()
    length.add_argument("--short", action="store_true", help="the CI run (default): minutes")
    length.add_argument("--long", action="store_true", help="every fault, 200 families: an hour")
    chaos.add_argument("--families", type=int, help="population size (short 20, long 200)")
    chaos.add_argument("--seed", type=int, help="seed of the population and the fault moments")
    chaos.add_argument(
        "--faults",
        metavar="A,B,C",
        help="only these: kill9, sigterm, broker, smtp-down, smtp-550, hostile, replay",
    )
    chaos.add_argument("--json", type=Path, help="also write the results here as JSON")
    chaos.add_argument(
        "--port-base",
        type=int,
        help="metrics and SMTP ports from here, two per scenario (default: free ports)",
    )
    chaos.add_argument("--parallel", type=int, help="scenarios run side by side")
    demo = add("demo", _demo, "run the hub end to end on a local broker with a demo agency")
    demo.add_argument("--keep-running", action="store_true", help="keep everything up until Ctrl-C")
    demo.add_argument(
        "--population",
        type=int,
        default=20,
        metavar="FAMILIES",
        help="after the story, a synthetic population of this many families (0: none)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        return int(args.handler(args, settings))
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
