"""Running a multi-agency family story end to end: real broker, real worker, real SMTP.

A story is published in *phases*. Events on different agencies' topics have no order
between them, so anything whose outcome depends on an earlier event goes in a later phase.
Between phases :meth:`Story.phase` waits until the worker has processed everything: its
consumer group (the app id) has committed up to the end of every partition of the topics
it consumes (ingest, identity, person, household, alerts), and that has held for a second.
Faust flushes an event's outputs before it commits the event's offset, so once every
committed offset equals its end offset, no output is still on its way.

Each phase then returns what it caused: the new alerts on ``hub.alerts`` and the new
emails in the mailbox, after checking what must hold for every delivery:

- every distinct alert id arrived as exactly one email, to the alert's recipient, with
  ``Message-ID: <alert id@hub.invalid>`` (one event can reach a practitioner through two
  links: the alert id is the same and the outbox sends one email);
- outside working hours an URGENT alert is also copied to the agency's out-of-hours
  contact: that depends on the clock, so copies are kept apart from what practitioners are
  told, and only checked (a copy of an URGENT alert of the phase, one email each);
- no email (subject, headers or body) and no alert on the topic carries the family's
  names, dates of birth, postcodes, UPRNs or identifiers (IG-4);
- nothing was quarantined.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import functools
import json
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from involvement_hub.config import load_policy
from involvement_hub.core.identity import LOCAL_SCHEMES
from involvement_hub.core.model import LawfulBasis, LifeEventKind, ServiceCategory, ServiceLevel
from involvement_hub.core.policy import RecipientRole
from involvement_hub.core.resolver import IdentityLogRecord
from involvement_hub.kafka import wire
from involvement_hub.kafka.topics import TopicNames
from involvement_hub.settings import Settings
from involvement_hub_devtools.mailbox import RCPT_HEADER

from support.records import involvement_v2
from support.topics import new_records, publish_records, settle
from support.worker import hub_command

MAIL_DOMAIN = "hub.invalid"
CLASS_TAG = "@"  # how the hub's wire format names the member of a tagged union


@dataclass(frozen=True, order=True)
class Told:
    """One alert as a practitioner experiences it."""

    email: str
    kind: str
    link: str
    case_ref: str  # the recipient's own system's reference for the child


@dataclass(frozen=True)
class Practitioner:
    """A practitioner in a story, with the reference their agency uses for the child."""

    record: dict[str, Any]  # the Practitioner record in JSON form
    agency: str
    case_ref: str

    @property
    def email(self) -> str:
        return str(self.record["email"])

    @property
    def recipient_id(self) -> str:
        return f"{self.agency}/{self.record['practitioner_id']}"

    def told(self, kind: str, link: str = "SELF") -> Told:
        return Told(self.email, kind, link, self.case_ref)

    def involvement(
        self,
        subject: dict[str, Any],
        serving: dict[str, Any],
        *,
        involvement_id: str,
        at: dt.datetime,
        **fields: Any,
    ) -> dict[str, Any]:
        """This practitioner's involvement with ``subject`` (STARTED unless ``change``)."""
        return involvement_v2(
            self.agency,
            self.case_ref,
            subject,
            self.record,
            involvement_id=involvement_id,
            serving=serving,
            at=at,
            **fields,
        )


@dataclass
class PhaseResult:
    alerts: list[dict[str, Any]]  # alerts to practitioners, as routed
    copies: list[dict[str, Any]]  # out-of-hours copies of URGENT alerts (by the clock)
    emails: list[EmailMessage]

    @property
    def told(self) -> set[Told]:
        return {
            Told(a["recipient_email"], a["kind"], a["link"], a["case_ref"]) for a in self.alerts
        }

    @property
    def recipients(self) -> set[str]:
        return {a["recipient_email"] for a in self.alerts} | {
            str(m[RCPT_HEADER]) for m in self.emails
        }


@dataclass
class Story:
    """One family's story on one worker: publish phases, see who was told."""

    settings: Settings
    start: dt.datetime = field(
        default_factory=lambda: (
            dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(days=1)
        )
    )
    personal: set[str] = field(default_factory=set)
    # A local person id (la_person_id, police_id) and the agencies that sent it: it may
    # appear only in alerts to those agencies' own practitioners.
    local_refs: dict[str, set[str]] = field(default_factory=dict)
    _minutes: int = 0
    # What the story has looked at (or what was there before it began), topic by topic.
    _seen: dict[str, set[tuple[int, int]]] = field(default_factory=lambda: defaultdict(set))
    _before: dict[str, set[tuple[int, int]]] = field(default_factory=lambda: defaultdict(set))
    _seen_mail: set[str] = field(default_factory=set)

    @property
    def names(self) -> TopicNames:
        return TopicNames.from_settings(self.settings)

    def at(self) -> dt.datetime:
        """The next moment of the story: a minute after the last, within the past day, so
        that edges and households (last-writer-wins on event time) follow the story."""
        self._minutes += 1
        return self.start + dt.timedelta(minutes=self._minutes)

    async def begin(self) -> None:
        """Leave out of the story what the worker did before it (an earlier story's)."""
        await settle(self.settings)
        for topic in (self.names.alerts, self.names.quarantine):
            await new_records(self.settings, topic, self._seen[topic])
        for topic in (self.names.audit, self.names.identity_log):
            await new_records(self.settings, topic, self._before[topic])
        self._new_emails()

    def family(self, *persons: dict[str, Any]) -> None:
        """Register people whose personal data must never leave the hub in an alert."""
        for person in persons:
            self.personal.update(personal_data(person))
            for identifier in person.get("identifiers", ()):
                if identifier["scheme"] in LOCAL_SCHEMES:
                    self.local_refs.setdefault(str(identifier["value"]), set())

    async def phase(
        self,
        *records: dict[str, Any],
        expect: set[Told],
        absent: Iterable[Practitioner] = (),
    ) -> PhaseResult:
        """Publish ``records``, wait until the worker is done, and check that exactly
        ``expect`` was told and none of ``absent`` received anything."""
        for record in records:
            agency = record["source"]["agency_id"]
            for identifier in record["subject"].get("identifiers", ()):
                if identifier["scheme"] in LOCAL_SCHEMES:
                    self.local_refs.setdefault(str(identifier["value"]), set()).add(agency)
        if records:
            report = await publish_records(self.settings, list(records))
            assert report.ok, f"not published: {[str(e) for e in report.errors]}"
        await settle(self.settings)
        alerts = self._alerts(await self._new_records(self.names.alerts))
        result = PhaseResult(
            [a for a in alerts if a["copy_of"] is None],
            [a for a in alerts if a["copy_of"] is not None],
            self._new_emails(),
        )
        self._check_nothing_quarantined(await self._new_records(self.names.quarantine))
        self._check_deliveries(result)
        assert sorted(result.told) == sorted(expect), _difference(result.told, expect)
        for practitioner in absent:
            assert practitioner.email not in result.recipients, f"{practitioner.email} was told"
        return result

    async def _new_records(self, topic: str) -> list[Any]:
        return await new_records(self.settings, topic, self._seen[topic])

    @staticmethod
    def _alerts(records: list[Any]) -> list[dict[str, Any]]:
        """The alerts among records of hub.alerts (which also carries the delivery
        ticker's nudges)."""
        messages = [json.loads(record.value) for record in records]
        return [m for m in messages if m.get(CLASS_TAG, "Alert") == "Alert"]

    def _new_emails(self) -> list[EmailMessage]:
        fresh = []
        for path in sorted(self.settings.mailbox_dir.glob("*.eml")):
            if path.name not in self._seen_mail:
                self._seen_mail.add(path.name)
                message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
                assert isinstance(message, EmailMessage)
                fresh.append(message)
        return fresh

    def _check_nothing_quarantined(self, records: list[Any]) -> None:
        reasons = []
        for record in records:
            headers = {k: v.decode() for k, v in record.headers}
            reasons.append(f"{headers.get('hub-reason')}: {headers.get('hub-detail')}")
        assert not reasons, f"quarantined: {reasons}"

    def _check_deliveries(self, result: PhaseResult) -> None:
        by_id: dict[str, str] = {}
        agency_of: dict[str, str] = {}
        for alert in result.alerts:
            recipient = by_id.setdefault(alert["alert_id"], alert["recipient_email"])
            assert recipient == alert["recipient_email"], "one alert id for two recipients"
            agency_of[alert["alert_id"]] = alert["recipient_id"].split("/")[0]
            self._scan(
                json.dumps(alert), f"alert {alert['alert_id']}", agency_of[alert["alert_id"]]
            )
        urgent = {a["alert_id"] for a in result.alerts if a["urgency"] == "URGENT"}
        for copy in result.copies:
            # Outside working hours an URGENT alert is also sent to the agency's
            # out-of-hours contact: that depends on the clock, so it is checked, not expected.
            assert copy["copy_kind"] == "out_of_hours", f"unexpected {copy['copy_kind']}"
            assert copy["copy_of"] in urgent, "a copy of an alert that is not URGENT"
            by_id[copy["alert_id"]] = copy["recipient_email"]
            agency_of[copy["alert_id"]] = copy["recipient_id"].split("/")[0]
            self._scan(json.dumps(copy), f"copy {copy['alert_id']}", agency_of[copy["alert_id"]])
        mailed: dict[str, list[EmailMessage]] = {}
        for message in result.emails:
            match = re.fullmatch(
                rf"<([0-9a-f]{{32}})@{re.escape(MAIL_DOMAIN)}>", message["Message-ID"]
            )
            assert match, f"unexpected Message-ID {message['Message-ID']}"
            mailed.setdefault(match.group(1), []).append(message)
            for name, value in message.items():
                self._scan(f"{name}: {value}", f"header {name}")
            for part in message.walk():
                if part.get_content_maintype() == "text":
                    where = f"body ({part.get_content_type()}) of {match.group(1)}"
                    self._scan(part.get_content(), where, agency_of.get(match.group(1)))
                    self._scan_codes(part.get_content(), where)
        assert set(mailed) == set(by_id), _difference(set(mailed), set(by_id))
        for alert_id, messages in mailed.items():
            assert len(messages) == 1, f"alert {alert_id} arrived as {len(messages)} emails"
            assert messages[0][RCPT_HEADER] == by_id[alert_id]
            assert messages[0]["To"] == by_id[alert_id]

    def _scan(self, text: str, where: str, agency: str | None = None) -> None:
        """No personal data; a local person id only to the agency that sent it."""
        leaked = sorted(p for p in self.personal if p in text)
        leaked += sorted(
            ref
            for ref, agencies in self.local_refs.items()
            if ref in text and agency not in agencies
        )
        assert not leaked, f"personal data {leaked} in {where}"

    def _scan_codes(self, text: str, where: str) -> None:
        """Nothing a reader should not have to decode: agency ids, enum names, the policy
        version (an address at an agency's domain is not an agency id)."""
        seen = [
            code
            for code in (
                *self.settings.agencies,
                *ENUM_NAMES,
                policy_version(self.settings.policy_file),
            )
            if re.search(rf"(?<![\w@.-]){re.escape(code)}(?![\w-])", text)
        ]
        assert not seen, f"codes {seen} in {where}"

    async def audit(self) -> list[dict[str, Any]]:
        """Every disclosure record on hub.audit so far (sent and suppressed)."""
        return [json.loads(r.value) for r in await self._since_begin(self.names.audit)]

    async def identity_log(self) -> list[IdentityLogRecord]:
        """Merges, probable-match candidates and steward decisions, as the resolver logged them."""
        records = await self._since_begin(self.names.identity_log)
        return [wire.loads(IdentityLogRecord, r.value) for r in records]

    async def _since_begin(self, topic: str) -> list[Any]:
        return await new_records(self.settings, topic, set(self._before[topic]))

    async def hub(self, *args: str) -> str:
        """Run a ``hub`` command with the story's settings; its standard output."""
        done = await asyncio.to_thread(hub_command, *args, settings=self.settings, timeout=120)
        assert done.returncode == 0, f"hub {' '.join(args)}: {done.returncode}\n{done.stderr}"
        return done.stdout


# Enum names a reader should never meet in an email (urgencies are shown on purpose).
ENUM_NAMES = tuple(
    sorted(
        {
            *(k.value for k in LifeEventKind if k is not LifeEventKind.OTHER),
            *(c.value for c in ServiceCategory if "_" in c.value),
            *(v.value for v in ServiceLevel),
            *(b.value for b in LawfulBasis),
            *(r.value for r in RecipientRole),
        }
    )
)


@functools.cache
def policy_version(policy_file: Path) -> str:
    """Read once per file: the scan asks for it at every email body."""
    return load_policy(policy_file).version


def personal_data(person: dict[str, Any]) -> set[str]:
    """What identifies a person in a PersonRef (JSON form), in the forms it could leak
    (a local person id is checked apart: its own agency may see it)."""
    found: set[str] = set()
    for identifier in person.get("identifiers", ()):
        if identifier["scheme"] in LOCAL_SCHEMES:
            continue
        value = str(identifier["value"])
        found.add(value)
        if identifier["scheme"] == "nhs_number":
            digits = value.replace(" ", "")
            found.update({digits, f"{digits[:3]} {digits[3:6]} {digits[6:]}"})
    for key in ("given_name", "family_name"):
        if person.get(key):
            found.add(str(person[key]))
    if person.get("date_of_birth"):
        born = dt.date.fromisoformat(person["date_of_birth"])
        found.update({born.isoformat(), born.strftime("%d %b %Y"), born.strftime("%d/%m/%Y")})
    address = person.get("address") or {}
    for key in ("uprn", "postcode"):
        if address.get(key):
            found.add(str(address[key]))
    return found


def _difference(got: set[Any], expected: set[Any]) -> str:
    missing = sorted(expected - got)
    extra = sorted(got - expected)
    return f"missing {missing}; unexpected {extra}"
