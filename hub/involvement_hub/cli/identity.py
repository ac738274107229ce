"""``hub identity``: probable identity matches for data stewards.

``candidates`` lists the open ones a page at a time, filtered, each with the evidence for
and against (names, dates of birth and postcodes: this is for data stewards); ``confirm``
and ``reject`` send a decision to the resolver, which applies it in order.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
from collections.abc import Callable
from typing import Any

from involvement_hub.cli.main import EXIT_CONFIG, EXIT_OK, EXIT_PARTIAL, AddCommand, say
from involvement_hub.settings import Settings

_say = say


def _identity(args: argparse.Namespace, settings: Settings) -> int:
    from involvement_hub.cli.queries import identity_log, open_candidates

    if args.action == "candidates":
        return _candidates(args, settings)
    candidates = open_candidates(asyncio.run(identity_log(settings)))
    if not args.candidate or not args.steward or not args.reason:
        _say(f"hub identity {args.action}: give CANDIDATE_ID, --steward and --reason")
        return EXIT_CONFIG
    if args.candidate not in {c.candidate.candidate_id for c in candidates}:
        _say(f"hub identity {args.action}: {args.candidate} is not an open candidate")
        return EXIT_PARTIAL
    from involvement_hub.cli.stewardship import send_decision

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


def _candidates(args: argparse.Namespace, settings: Settings) -> int:
    from involvement_hub.cli.queries import (
        CandidateFilter,
        open_candidate_views,
        person_for,
        select_candidates,
    )
    from involvement_hub.cli.reports import candidates_report

    if args.candidate:
        _say("hub identity candidates: takes no CANDIDATE_ID (filter with --person, --since)")
        return EXIT_CONFIG

    async def gather() -> tuple[CandidateFilter, list[Any]]:
        person = await person_for(settings, args.person) if args.person else None
        wanted = CandidateFilter(args.since, args.min_agreeing, person, args.limit, args.offset)
        return wanted, await open_candidate_views(settings)

    wanted, views = asyncio.run(gather())
    page, passing = select_candidates(views, wanted)
    print(candidates_report(page, passing, len(views), wanted))
    return EXIT_OK


def _count(least: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if value < least:
            raise argparse.ArgumentTypeError(f"at least {least}: {value}")
        return value

    return parse


def register(add: AddCommand) -> None:
    identity = add("identity", _identity, "probable identity matches for data stewards")
    identity.add_argument("action", choices=("candidates", "confirm", "reject"))
    identity.add_argument("candidate", nargs="?", help="the candidate id (confirm, reject)")
    identity.add_argument("--steward", help="who decides (recorded in the identity log)")
    identity.add_argument("--reason", help="why (recorded in the identity log)")
    identity.add_argument(
        "--since",
        type=dt.date.fromisoformat,
        metavar="YYYY-MM-DD",
        help="candidates: raised on or after",
    )
    identity.add_argument(
        "--person", metavar="SCHEME:VALUE", help="candidates: only those about this person"
    )
    identity.add_argument(
        "--min-agreeing",
        type=_count(0),
        default=0,
        metavar="N",
        help="candidates: at least N of date of birth, given name, family name, postcode agree",
    )
    identity.add_argument(
        "--limit", type=_count(1), default=20, metavar="N", help="candidates: a page of N (20)"
    )
    identity.add_argument(
        "--offset", type=_count(0), default=0, metavar="M", help="candidates: skip the first M"
    )
