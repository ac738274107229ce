"""Plain-text renderings of query results for the command line."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping

from involvement_hub.cli.queries import CandidateFilter, CandidateView, TeamView
from involvement_hub.core.audit import DisclosureRecord, delivery_state
from involvement_hub.core.matching import Comparison
from involvement_hub.core.messages import DeliveryOutcome
from involvement_hub.core.routing import Outcome
from involvement_hub.core.team import TeamMember


def _when(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _member_line(m: TeamMember, show_sensitive: bool) -> str:
    if not m.shareable and not show_sensitive:
        hidden = f"{m.service.category.value}: sensitive, not shared without consent"
        return f"  - [{hidden}; --include-sensitive shows it]"
    status = "active" if m.current else f"ended {m.ended_on} ({m.end_reason or 'no reason given'})"
    lead = " LEAD" if m.is_lead else ""
    p = m.practitioner
    reach = " / ".join(
        x
        for x in (
            p.email,
            p.phone,
            f"out of hours {p.out_of_hours_phone}" if p.out_of_hours_phone else None,
        )
        if x
    )
    consent = ""
    if m.service.sensitive:
        consent = (
            " [sensitive: "
            + ("consent recorded" if m.consent_to_share else "safeguarding override")
            + "]"
        )
    service = f"{m.service.name} ({m.service.category.value}, {m.service.level.value})"
    return (
        f"  - {service}{lead}{consent}\n"
        f"      {p.name}, {p.role}{', ' + p.team if p.team else ''} - {reach}\n"
        f"      {m.agency_id} case {m.record_ref}; since {m.started_on}; {status}"
    )


def team_report(view: TeamView, show_sensitive: bool = False) -> str:
    state = view.person
    lines = [f"Person {state.person_id}"]
    lines.append(
        "Team around this person:" if state.team.members else "No service works with this person."
    )
    lines += [_member_line(m, show_sensitive) for m in state.team.members]
    if state.household is not None:
        lines.append(f"Household: UPRN {state.household.uprn or 'unknown (left)'}")
    links = state.links()
    if links:
        lines.append("Family and household:")
        for other, kinds in sorted(links.items()):
            names = ", ".join(sorted(k.value.lower().replace("_", " ") for k in kinds))
            other_state = view.family.get(other)
            leads = list(other_state.team.leads()) if other_state else []
            who = ", ".join(f"{m.practitioner.name} ({m.agency_id})" for m in leads)
            lines.append(
                f"  - this person is {names} of {other}" + (f"; lead: {who}" if who else "")
            )
    subscriptions = [s for s in state.subscriptions if s.active]
    if subscriptions:
        lines.append("Explicit subscriptions:")
        for s in subscriptions:
            wanted = ", ".join(s.kinds) if s.kinds else "all allowed kinds"
            lines.append(
                f"  - {s.practitioner.name} ({s.recipient_id}): {wanted}; reason: {s.reason}"
            )
    return "\n".join(lines)


def audit_report(
    records: Iterable[DisclosureRecord], states: Mapping[str, DeliveryOutcome] | None = None
) -> str:
    """Each decision once (a replay may record it again), oldest first, with its alert id
    and what became of the alert (``hub.delivery``'s latest word on it)."""
    unique: dict[tuple[object, ...], DisclosureRecord] = {}
    for r in sorted(records, key=lambda r: r.decided_at):
        unique.setdefault((r.event_key, r.recipient_id, r.alert_id, r.outcome, r.kind), r)
    rows = list(unique.values())
    if not rows:
        return "No disclosure decisions recorded."
    known = states or {}
    lines = [f"{len(rows)} decisions (oldest first):"]
    for r in rows:
        what = "SEND" if r.outcome is Outcome.SEND else f"SUPPRESSED ({r.suppression})"
        alert = f"alert {r.alert_id}: " if r.alert_id else ""
        lines.append(
            f"{_when(r.decided_at)}  {what:<40} {r.kind:<24} to {r.recipient_id} "
            f"(case {r.case_ref})\n"
            f"    {alert}{delivery_state(r, known)}\n"
            f"    event {r.event_key}; {r.role} by rule {r.rule_id}; link {r.link}; "
            f"policy {r.policy_version}; lawful basis {r.lawful_basis}; content {r.content_level}; "
            f"person {r.person_id}"
            + (f" about {r.about_person_id}" if r.about_person_id != r.person_id else "")
            + (f"\n    copy of alert {r.copy_of}" if r.copy_of else "")
            + (f"\n    carries alerts {', '.join(r.includes)}" if r.includes else "")
            + (f"\n    why: {r.why}" if r.why else "")
        )
    return "\n".join(lines)


_FIELD_NAMES = {
    "date_of_birth": "date of birth",
    "given_name": "given name",
    "family_name": "family name",
    "postcode": "postcode",
    "nhs_number": "NHS number",
}
_VERDICT = {True: "agrees", False: "DIFFERS", None: "unknown"}


def _comparison_line(c: Comparison) -> str:
    a = ", ".join(c.a) or "-"
    b = ", ".join(c.b) or "-"
    return f"      {_FIELD_NAMES.get(c.field, c.field):<14} {_VERDICT[c.agrees]:<8} {a}  |  {b}"


def candidates_report(
    page: list[CandidateView], passing: int, total: int, wanted: CandidateFilter
) -> str:
    """One page of open candidates, each with the evidence for and against: what each side
    holds of every field the matching rule weighs, and its verdict."""
    if not total:
        return "No open probable matches."
    head = f"{total} open probable matches"
    if passing != total:
        head += f", {passing} of them pass the filters"
    if not page:
        return f"{head}; none from number {wanted.offset + 1}."
    first, last = wanted.offset + 1, wanted.offset + len(page)
    lines = [f"{head}; {first}-{last}, oldest first:"]
    for view in page:
        record = view.record
        tally = f"{view.agreeing} agree, {view.conflicting} differ"
        now = "; NOW ONE PERSON (a shared identifier linked them)" if view.one_person else ""
        lines.append("")
        lines.append(f"{record.candidate.candidate_id}  raised {_when(record.at)}: {tally}{now}")
        lines.append(f"    A {view.person_a}: {', '.join(view.keys_a)}")
        lines.append(f"    B {view.person_b}: {', '.join(view.keys_b)}")
        lines.extend(_comparison_line(c) for c in view.comparisons)
    lines.append("")
    if last < passing:
        lines.append(f"More: --offset {last} (--limit {wanted.limit} a page).")
    lines.append("Confirm with `hub identity confirm ID --steward NAME --reason TEXT`, or reject.")
    return "\n".join(lines)


def delivery_report(alert_id: str, history: list[DeliveryOutcome]) -> str:
    if not history:
        return f"No delivery recorded for {alert_id} (is the id right, and the worker running?)"
    lines = [f"Delivery of {alert_id}:"]
    for o in history:
        about = "" if o.alert_id == alert_id else f" [{o.alert_id}]"
        extra = "; ".join(
            x
            for x in (
                f"attempt {o.attempts}" if o.attempts else "",
                f"via {o.via}" if o.via else "",
                o.detail,
            )
            if x
        )
        lines.append(
            f"{_when(o.at)}  {o.status:<10} to {o.recipient_id}{about}"
            + (f"  ({extra})" if extra else "")
        )
    return "\n".join(lines)
