"""The development commands of ``hub``: ``kafka``, ``mailbox``, ``simulate``, ``bench``,
``chaos`` and ``demo``.

They come with this package (``involvement-hub-devtools``), not with the hub: the hub's
command line finds them through the ``involvement_hub.commands`` entry point and never
imports this package by name, so a production install has none of them and none of their
dependencies (aiosmtpd for the mailbox, the synthetic population, the benchmark).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
from pathlib import Path

from involvement_hub.cli.main import EXIT_OK, EXIT_PARTIAL, AddCommand, say
from involvement_hub.settings import Settings

_say = say


def _kafka(args: argparse.Namespace, settings: Settings) -> int:
    from involvement_hub_devtools.localkafka import LocalKafka

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


def _mailbox(args: argparse.Namespace, settings: Settings) -> int:
    import signal
    import threading

    from involvement_hub_devtools.mailbox import Mailbox

    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    with Mailbox(settings.mailbox_dir, port=settings.mailbox_port, discard=args.discard):
        _say(f"mailbox listening on 127.0.0.1:{settings.mailbox_port} (plain SMTP)")
        where = "discarded (counted only)" if args.discard else f"kept in {settings.mailbox_dir}/"
        _say(f"messages are {where}; Ctrl-C to stop")
        with contextlib.suppress(KeyboardInterrupt):
            done.wait()
    return EXIT_OK


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    from involvement_hub_devtools.demo import run_demo

    return run_demo(
        settings, keep_running=args.keep_running, progress=_say, population=args.population
    )


def _simulate(args: argparse.Namespace, settings: Settings) -> int:
    from involvement_hub.config import load_config

    from involvement_hub_devtools.simulate import run_simulation

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
        first=args.first,
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
    from involvement_hub_devtools.bench.run import BenchOptions, run_bench, table

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
    from involvement_hub_devtools.chaos.run import options_for, run_chaos, table

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


def register(add: AddCommand) -> None:
    """Add the development commands to the ``hub`` parser."""
    kafka = add("kafka", _kafka, "start, stop or check the local development Kafka broker")
    kafka.add_argument("action", choices=("start", "stop", "status"))
    # The local broker and mailbox use none of the hub's files: an operator mending a broken
    # policy can still stop the broker.
    kafka.set_defaults(uses_config=False)
    mailbox = add("mailbox", _mailbox, "run the local SMTP mailbox that keeps messages as files")
    mailbox.set_defaults(uses_config=False)
    mailbox.add_argument(
        "--discard", action="store_true", help="accept and discard (a benchmark sink)"
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
        "--first",
        type=int,
        default=0,
        metavar="N",
        help="number the families (and their identifiers) from N, so populations published "
        "to one broker share no one (hub demo picks one at random)",
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
