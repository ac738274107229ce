"""The fault harness's verdict, from the mail server's own record: pure, no I/O.

A run is compared with the fault-free reference of the same population by ``Message-ID``.
The hub makes it ``<alert id@mail domain>`` and the alert id is a hash of the event key, the
recipient, the recipient's case reference and the policy version (``core/routing.py``):
neither the topic prefix nor the application id enters it, so the same alert in two
scenarios of one run has the same Message-ID, and a difference is a real difference.

- **missing**: Message-IDs the reference has that the run never received;
- **duplicates**: acceptances beyond the first of one Message-ID;
- **extra**: Message-IDs the run received that the reference does not have;
- **crashes**: the worker exiting on its own, or Faust logging a crashed agent.

When the mail server refuses one recipient (550), that recipient's reference emails are
*refused*, not missing: each should come back as an escalation (a derived alert id, see
``core/outbox.escalation_alert``) to the escalation contact, counted as *escalated*.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from involvement_hub.core.delivery_plan import Contact, derived_id

NOT_ROUTED = "NOT ROUTED"


@dataclass(frozen=True, slots=True)
class Accepted:
    """One message the mail server accepted (one ``.eml`` file)."""

    message_id: str
    recipient: str


@dataclass(frozen=True)
class Observed:
    """What one scenario did: the server's record, and how the worker fared."""

    fault: str
    accepted: tuple[Accepted, ...]
    crashes: int = 0
    # Restarts that may cut a send between the server's 250 and the outbox's SENT mark:
    # each can resend at most the messages in flight, one per SMTP connection.
    disruptions: int = 0
    refused_recipient: str | None = None
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    # alert id -> its last status on hub.delivery: why an email is missing.
    outcomes: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Row:
    fault: str
    reference: int
    received: int
    missing: int
    duplicates: int
    duplicate_bound: int
    extra: int
    crashes: int
    refused: int = 0
    escalated: int = 0
    error: str | None = None
    missing_ids: tuple[str, ...] = ()
    extra_ids: tuple[str, ...] = ()
    # Missing emails by their alert's last delivery status; NOT ROUTED: no outcome at all.
    missing_by_status: dict[str, int] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def met(self) -> bool:
        return (
            self.error is None
            and self.missing == 0
            and self.extra == 0
            and self.duplicates <= self.duplicate_bound
            and self.crashes == 0
            and self.escalated == self.refused
        )

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "met": self.met}


def _alert_id(message_id: str) -> str:
    return message_id.strip("<>").partition("@")[0]


def escalation_message_id(message_id: str) -> str:
    """The Message-ID the escalation of the alert behind ``message_id`` is sent with."""
    domain = message_id.strip("<>").partition("@")[2]
    return f"<{derived_id(_alert_id(message_id), 'escalation')}@{domain}>"


def compare(reference: Sequence[Accepted], run: Observed, connections: int) -> Row:
    reference_ids = {a.message_id for a in reference}
    counts = Counter(a.message_id for a in run.accepted)
    refused: set[str] = set()
    escalations: set[str] = set()
    if run.refused_recipient is not None:
        who = run.refused_recipient.lower()
        refused = {a.message_id for a in reference if a.recipient.lower() == who}
        escalations = {escalation_message_id(m) for m in refused}
    missing = sorted(reference_ids - counts.keys() - refused)
    extra = sorted(counts.keys() - reference_ids - escalations)
    return Row(
        fault=run.fault,
        reference=len(reference_ids),
        received=len(run.accepted),
        missing=len(missing),
        duplicates=sum(n - 1 for n in counts.values()),
        duplicate_bound=connections * run.disruptions,
        extra=len(extra),
        crashes=run.crashes,
        refused=len(refused),
        escalated=len(escalations & counts.keys()),
        error=run.error,
        missing_ids=tuple(missing),
        extra_ids=tuple(extra),
        missing_by_status=dict(
            Counter(run.outcomes.get(_alert_id(m), NOT_ROUTED) for m in missing).most_common()
        ),
        details=dict(run.details),
    )


def reference_row(reference: Observed) -> Row:
    """The reference against itself: its own duplicates and crashes still count."""
    return compare(reference.accepted, reference, connections=0)


def markdown_table(rows: Sequence[Row]) -> str:
    lines = [
        "| fault | reference | received | missing | duplicates (bound) | extra | crashes "
        "| refused -> escalated | result |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        refused = f"{r.refused} -> {r.escalated}" if r.refused else "-"
        result = "ok" if r.met else "FAIL"
        if r.error:
            result += f": {r.error}"
        lines.append(
            f"| {r.fault} | {r.reference} | {r.received} | {r.missing} "
            f"| {r.duplicates} ({r.duplicate_bound}) | {r.extra} | {r.crashes} "
            f"| {refused} | {result} |"
        )
    why = [
        f"- {r.fault}: " + ", ".join(f"{n} {status}" for status, n in r.missing_by_status.items())
        for r in rows
        if r.missing_by_status
    ]
    if why:
        lines += ["", "Missing emails by their alert's last status on hub.delivery:", *why]
    noise = noise_lines(rows)
    if noise:
        lines += ["", "Differences the fault-free control run shares (timing, not the fault):"]
        lines += noise
    return "\n".join(lines)


def noise_lines(rows: Sequence[Row]) -> list[str]:
    """For each faulty run, how many of its missing and extra emails the control run has
    too: those differ from the reference without any fault, so the fault did not cause them."""
    control = next((r for r in rows if r.fault == "control"), None)
    if control is None or not (control.missing_ids or control.extra_ids):
        return []
    missing, extra = set(control.missing_ids), set(control.extra_ids)
    return [
        f"- {r.fault}: {len(missing.intersection(r.missing_ids))} of {r.missing} missing, "
        f"{len(extra.intersection(r.extra_ids))} of {r.extra} extra"
        for r in rows
        if r.fault not in ("reference", "control") and (r.missing or r.extra)
    ]


def fault_times(seed: int, count: int, window_s: float, min_gap_s: float) -> tuple[float, ...]:
    """``count`` seeded moments in ``[0, window_s]``, sorted, at least ``min_gap_s`` apart.

    Drawn in the window shrunk by the gaps, then spread by them: uniform, yet never so
    close that a fault lands before the previous one has been applied.
    """
    if count <= 0:
        return ()
    slack = max(window_s - min_gap_s * (count - 1), 0.0)
    rng = random.Random(seed)
    draws = sorted(rng.uniform(0.0, slack) for _ in range(count))
    return tuple(round(t + i * min_gap_s, 3) for i, t in enumerate(draws))


def pick_refused_recipient(
    reference: Sequence[Accepted], contacts: Iterable[Contact]
) -> str | None:
    """The practitioner the reference emailed most whose agency can escalate.

    An escalation goes to a contact of the recipient's agency or team, so only a recipient
    under a mail domain of some escalation contact is chosen; contacts themselves are not.
    """
    escalation = {c.escalation.lower() for c in contacts if c.escalation}
    special = escalation | {c.out_of_hours.lower() for c in contacts if c.out_of_hours}
    domains = {a.partition("@")[2] for a in escalation}
    counts = Counter(
        a.recipient.lower()
        for a in reference
        if a.recipient.lower() not in special and a.recipient.partition("@")[2].lower() in domains
    )
    if not counts:
        return None
    # Most emails first, then by address, so the same reference always gives the same one.
    return min(counts, key=lambda r: (-counts[r], r))
