"""Delivery on a real broker, by a real ``hub worker``, to real SMTP servers the tests control.

Each test starts an aiosmtpd server on a port of its own (stopped, restarted, made to answer
421, 451 or 550, to drop the connection mid-DATA, or to offer no STARTTLS), points a worker
at it, publishes events that make known alerts, and checks the inbox, ``hub.delivery`` and
the worker's metrics. Retries are made quick (1 s base, 2 s cap, 0.5 s tick). Each test has
its own copy of ``subscriptions/`` for contacts, working hours and preferences.

Alerts come from one case at social care: the lead's involvement, then life events under
the same case reference, which Kafka keeps in order (the key is the case reference), so
each life event is one alert to the lead. Synthetic people only (NHS numbers 300-399).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import trustme
from aiokafka import AIOKafkaProducer  # noqa: TID251 - tests write and read raw records
from aiosmtpd.controller import Controller  # noqa: TID251 - tests run their own SMTP servers
from involvement_hub.core.alerts import Alert
from involvement_hub.core.audit import DisclosureRecord, delivery_states, emailed
from involvement_hub.core.delivery_plan import Mode, Preference, derived_id
from involvement_hub.core.messages import AlertTopicMessage, DeliveryOutcome
from involvement_hub.delivery.settings_files import write_preferences
from involvement_hub.kafka import wire
from involvement_hub.kafka.admin import group_lag
from involvement_hub.kafka.client import client_options
from involvement_hub.kafka.io import read_all
from involvement_hub.kafka.topics import TopicNames
from involvement_hub.settings import Settings
from involvement_hub_devtools.chaos.faults import rewind_group
from involvement_hub_devtools.processes import free_port
from support import REPO
from support.alerts import an_alert
from support.records import involvement, life_event, person, practitioner
from support.topics import consumed_topics, publish_records
from support.waiting import eventually
from support.worker import WorkerProcess, hub_command

HOST = "127.0.0.1"
SOCIAL_CARE = "northshire-social-care"
LEAD_EMAIL = "alex.morgan@social-care.northshire.example"
TEAM_ESCALATION = "team-north-managers@social-care.northshire.example"
AGENCY_ESCALATION = "duty-desk@social-care.northshire.example"
OUT_OF_HOURS = "emergency-duty-team@social-care.northshire.example"
MAIL_DOMAIN = "hub.invalid"  # the default HUB_MAIL_FROM's domain ends every Message-ID
LONDON = ZoneInfo("Europe/London")
DAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")
QUICK_RETRIES = {
    "HUB_RETRY_BASE_S": "1",
    "HUB_RETRY_CAP_S": "2",
    "HUB_DELIVERY_TICK_S": "0.5",
    "HUB_SMTP_TIMEOUT_S": "5",
}


# -- SMTP servers the tests control ------------------------------------------------------------


@dataclass
class Received:
    rcpt_tos: list[str]
    message: EmailMessage
    over_tls: bool

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"])


@dataclass
class Inbox:
    """An aiosmtpd handler: keeps what it accepts; follows a plan of misbehaviour first.

    ``data_plan`` steps, one per DATA command: an SMTP reply ("451 ..."), "drop" (close the
    connection before answering), or "hang" (answer nothing until ``release`` is set, then
    drop). ``refuse`` maps a recipient address to the reply its RCPT gets.
    """

    received: list[Received] = field(default_factory=list)
    data_plan: deque[str] = field(default_factory=deque)
    refuse: dict[str, str] = field(default_factory=dict)
    mail_commands: int = 0  # MAIL FROM commands seen: any at all means a send was started
    hanging: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, mail_options: Any
    ) -> str:
        self.mail_commands += 1
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        step = self.data_plan.popleft() if self.data_plan else None
        if step == "hang":
            self.hanging.set()
            # ``release`` is set from the test's thread, not this server's event loop.
            while not self.release.is_set():  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            step = "drop"
        if step == "drop":
            # The client never hears back: what it sees is a connection lost mid-DATA.
            server.transport.close()
            return "451 4.3.0 never sent"
        if step is not None:
            return step
        content = envelope.original_content or envelope.content
        message = BytesParser(policy=policy.default).parsebytes(content)
        assert isinstance(message, EmailMessage)
        self.received.append(Received(list(envelope.rcpt_tos), message, session.ssl is not None))
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[Received]:
        return [r for r in self.received if r.rcpt_tos == [address]]


class SmtpServer:
    """A server on one fixed port that can be stopped and started again, keeping its inbox."""

    def __init__(self, inbox: Inbox) -> None:
        self.inbox = inbox
        self.port = free_port()
        self._controller: Controller | None = None

    def start(self, **options: Any) -> None:
        assert self._controller is None
        controller = Controller(self.inbox, hostname=HOST, port=self.port, **options)
        controller.start()
        self._controller = controller

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


# -- the test's hub: worker, subscriptions folder, SMTP server -------------------------------


def delivery_toml(days: tuple[str, ...] = DAYS, start: str = "00:00", end: str = "23:59:59") -> str:
    quoted = ", ".join(f'"{d}"' for d in days)
    return f"""\
timezone = "Europe/London"
default_mode = "immediate"

[working_hours]
start = "{start}"
end = "{end}"
days = [{quoted}]

[[contact]]
agency = "{SOCIAL_CARE}"
escalation = "{AGENCY_ESCALATION}"
out_of_hours = "{OUT_OF_HOURS}"

[[contact]]
agency = "{SOCIAL_CARE}"
team = "Team North"
escalation = "{TEAM_ESCALATION}"
"""


@dataclass
class Hub:
    worker: WorkerProcess
    subscriptions: Path
    inbox: Inbox
    smtp: SmtpServer
    env: dict[str, str]

    @property
    def settings(self) -> Settings:
        return self.worker.settings

    @property
    def names(self) -> TopicNames:
        return TopicNames.from_settings(self.settings)

    def start_worker(self, **env: str) -> None:
        self.env.update(env)
        self.worker.start(**self.env)

    def restart_worker(self) -> None:
        self.worker.stop()
        self.worker.start(**self.env)

    def metric(self, name: str, **labels: str) -> float | None:
        return self.worker.metric(name, **labels)

    async def quiet(self, pending: int = 0) -> None:
        """Until the worker has committed everything it consumes and holds ``pending``
        alerts (a retry or a digest window), through two delivery ticks with no new email:
        from then on nothing more is sent, so an email too many would already be here."""
        tick = float(self.env["HUB_DELIVERY_TICK_S"])
        since: float | None = None
        seen = -1

        async def settled() -> bool:
            nonlocal since, seen
            lag = await group_lag(
                self.settings, self.settings.app_id, consumed_topics(self.settings)
            )
            now = time.monotonic()
            if lag or self.metric("hub_delivery_pending") != pending:
                since = None
            elif since is None or len(self.inbox.received) != seen:
                since, seen = now, len(self.inbox.received)
            return since is not None and now - since >= 2 * tick

        await eventually(f"the worker quiet with {pending} pending", settled)

    async def outcomes(self) -> list[DeliveryOutcome]:
        records = await read_all(self.settings, self.names.delivery)
        return [wire.loads(DeliveryOutcome, r.value) for r in records]


@pytest.fixture
def hub(worker: WorkerProcess, tmp_path: Path) -> Iterator[Hub]:
    folder = tmp_path / "subscriptions"
    shutil.copytree(REPO / "subscriptions", folder)
    (folder / "delivery.toml").write_text(delivery_toml())
    inbox = Inbox()
    smtp = SmtpServer(inbox)
    env = {
        "HUB_SUBSCRIPTIONS_DIR": str(folder),
        "HUB_SMTP_PORT": str(smtp.port),
        "HUB_SMTP_SECURITY": "plain",
        **QUICK_RETRIES,
    }
    try:
        yield Hub(worker, folder, inbox, smtp, env)
    finally:
        inbox.release.set()
        worker.stop()
        smtp.stop()


# -- events and waiting ---------------------------------------------------------------------------


def lead_of(n: int) -> str:
    return f"{SOCIAL_CARE}/SW-{n}"


def case(n: int, *events: tuple[str, str]) -> list[dict[str, Any]]:
    """The lead's involvement in case CIN-n, then life events (kind, urgency) in that case."""
    child = person(n)
    lead = practitioner(f"SW-{n}", "Alex Morgan", "social-care.northshire")
    ref = f"CIN-{n}"
    return [
        involvement(SOCIAL_CARE, ref, child, lead, involvement_id=f"SC-{n}", lead=True),
        *(life_event(SOCIAL_CARE, ref, child, kind, urgency=urgency) for kind, urgency in events),
    ]


ROUTINE = ("PERSISTENT_ABSENCE", "ROUTINE")
PRIORITY = ("POLICE_CUSTODY", "PRIORITY")
URGENT = ("MISSING_EPISODE", "URGENT")
SCHOOL_CHANGE = ("SCHOOL_CHANGE", "ROUTINE")


async def wait_for(what: str, check: Callable[[], bool], timeout: float = 60.0) -> None:  # noqa: ASYNC109
    async def holds() -> bool:
        return check()

    await eventually(what, holds, timeout)


async def wait_for_outcomes(
    hub: Hub,
    what: str,
    check: Callable[[list[DeliveryOutcome]], bool],
    timeout: float = 60.0,  # noqa: ASYNC109
) -> list[DeliveryOutcome]:
    last: list[DeliveryOutcome] = []

    async def holds() -> list[DeliveryOutcome] | None:
        last[:] = await hub.outcomes()
        return list(last) if check(last) else None

    def seen() -> str:
        return f"hub.delivery: {[(o.alert_id[:8], o.status, o.detail) for o in last]}"

    found = await eventually(f"{what} on hub.delivery", holds, timeout, seen)
    assert found is not None
    return found


def of(outcomes: list[DeliveryOutcome], alert_id: str) -> list[str]:
    return [o.status for o in outcomes if o.alert_id == alert_id]


def alert_ids(outcomes: list[DeliveryOutcome], recipient: str) -> list[str]:
    """The recipient's alerts, in the order hub.delivery first mentions them."""
    return list(dict.fromkeys(o.alert_id for o in outcomes if o.recipient_id == recipient))


def sent(outcomes: list[DeliveryOutcome], recipient: str, count: int) -> bool:
    done = {o.alert_id for o in outcomes if o.recipient_id == recipient and o.status == "SENT"}
    return len(done) >= count


def message_id(key: str) -> str:
    return f"<{key}@{MAIL_DOMAIN}>"


# -- effectively once ---------------------------------------------------------------------------


async def test_replaying_every_topic_from_the_start_sends_no_email_twice(hub: Hub) -> None:
    hub.smtp.start()
    hub.start_worker()
    await publish_records(hub.settings, case(301, ROUTINE, PRIORITY, URGENT))
    lead = lead_of(301)
    outcomes = await wait_for_outcomes(hub, "3 alerts sent", lambda o: sent(o, lead, 3))
    ids = alert_ids(outcomes, lead)
    assert len(ids) == 3
    await wait_for("3 emails", lambda: len(hub.inbox.received) >= 3)
    before = sorted(r.message_id for r in hub.inbox.received)
    assert before == sorted(message_id(i) for i in ids)
    hub.worker.stop()

    consumed = consumed_topics(hub.settings)
    assert await rewind_group(hub.settings, hub.settings.app_id) >= 3
    assert await group_lag(hub.settings, hub.settings.app_id, consumed) > 0
    hub.worker.start(**hub.env)

    # Each alert comes round at least twice: its old message on hub.alerts, and the alert
    # that routing the replayed event makes again (with the same id).
    def replayed(o: list[DeliveryOutcome]) -> bool:
        return all(of(o, i).count("DUPLICATE") >= 2 for i in ids)

    await wait_for_outcomes(hub, "every alert replayed as a duplicate", replayed, timeout=90)
    await hub.quiet()

    assert sorted(r.message_id for r in hub.inbox.received) == before
    final = await hub.outcomes()
    assert [of(final, i).count("SENT") for i in ids] == [1, 1, 1]
    skipped = hub.metric("hub_emails_duplicate_skipped_total")
    assert skipped is not None
    assert skipped >= 6


# -- retries --------------------------------------------------------------------------------------


async def test_a_mail_server_that_goes_away_loses_nothing_and_gets_everything_on_return(
    hub: Hub,
) -> None:
    hub.smtp.start()
    hub.start_worker()
    await publish_records(hub.settings, case(302, PRIORITY))
    await wait_for("the first email", lambda: len(hub.inbox.received) == 1)

    hub.smtp.stop()
    await publish_records(hub.settings, case(303, PRIORITY, URGENT, ROUTINE))
    lead = lead_of(303)

    def retried_each(o: list[DeliveryOutcome]) -> bool:
        ids = alert_ids(o, lead)
        return len(ids) == 3 and all(of(o, i).count("RETRY") >= 2 for i in ids)

    outcomes = await wait_for_outcomes(hub, "retries while the server is down", retried_each)
    ids = alert_ids(outcomes, lead)
    assert not any("SENT" in of(outcomes, i) for i in ids)
    assert len(hub.inbox.received) == 1

    hub.smtp.start()
    back = time.monotonic()
    outcomes = await wait_for_outcomes(hub, "delivery on return", lambda o: sent(o, lead, 3))
    took = time.monotonic() - back
    assert took < 15, f"delivered {took:.1f}s after the server returned"

    await hub.quiet()
    assert sorted(r.message_id for r in hub.inbox.received[1:]) == sorted(
        message_id(i) for i in ids
    )
    for alert_id in ids:
        history = of(outcomes, alert_id)
        assert history[-1] == "SENT"
        assert set(history[:-1]) == {"RETRY"}
    metrics = hub.worker.metrics()
    assert "hub_delivery_retries_total" in metrics
    assert hub.metric("hub_delivery_pending") == 0


async def test_421_then_451_are_retried_and_the_history_shows_in_hub_delivery(
    hub: Hub,
) -> None:
    hub.inbox.data_plan.extend(["421 4.3.2 shutting down", "451 4.3.0 try again later"])
    hub.smtp.start()
    hub.start_worker()
    await publish_records(hub.settings, case(304, PRIORITY))
    lead = lead_of(304)

    outcomes = await wait_for_outcomes(hub, "the alert sent", lambda o: sent(o, lead, 1))

    (alert_id,) = alert_ids(outcomes, lead)
    history = [(o.status, o.attempts) for o in outcomes if o.alert_id == alert_id]
    assert history == [("RETRY", 1), ("RETRY", 2), ("SENT", 3)]
    details = [o.detail for o in outcomes if o.status == "RETRY"]
    assert "421" in details[0]
    assert "451" in details[1]
    (email,) = hub.inbox.received
    assert email.message_id == message_id(alert_id)
    assert email.rcpt_tos == [LEAD_EMAIL]

    # An operator asks the command line what happened to it.
    shown = await asyncio.to_thread(hub_command, "delivery", alert_id, settings=hub.settings)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0] == f"Delivery of {alert_id}:"
    # "2026-11-25 16:21 UTC  RETRY      to northshire-social-care/SW-304  (attempt 1; ...)"
    assert [line.split()[3] for line in lines[1:]] == ["RETRY", "RETRY", "SENT"]
    assert "attempt 3" in lines[3]
    assert lead in lines[3]


async def test_a_550_is_not_retried_but_escalated_to_the_teams_escalation_contact(
    hub: Hub,
) -> None:
    hub.inbox.refuse[LEAD_EMAIL] = "550 5.1.1 mailbox unavailable"
    hub.smtp.start()
    hub.start_worker()
    await publish_records(hub.settings, case(305, PRIORITY))

    await wait_for("the escalation email", lambda: bool(hub.inbox.to(TEAM_ESCALATION)))
    await hub.quiet()  # a retry, were there one, would be pending

    outcomes = await hub.outcomes()
    (alert_id,) = alert_ids(outcomes, lead_of(305))
    escalation_id = derived_id(alert_id, "escalation")
    assert of(outcomes, alert_id) == ["FAILED", "ESCALATED"]
    failed, escalated = (o for o in outcomes if o.alert_id == alert_id)
    assert "550" in failed.detail
    assert failed.attempts == 1
    assert (escalated.detail, escalated.via) == ("permanent", escalation_id)
    assert of(outcomes, escalation_id) == ["SENT"]
    (email,) = hub.inbox.received
    assert email.message_id == message_id(escalation_id)
    assert str(email.message["Subject"]).startswith("[ESCALATED PRIORITY]")
    body = email.message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "could not be delivered to Alex Morgan" in body
    assert "CIN-305" in body
    assert hub.metric("hub_delivery_escalations_total", reason="permanent") == 1
    assert hub.metric("hub_emails_failed_total", failure="permanent") == 1
    assert hub.metric("hub_delivery_retries_total") == 0


async def test_a_connection_dropped_mid_data_is_retried_and_delivered_once(hub: Hub) -> None:
    hub.inbox.data_plan.append("drop")
    hub.smtp.start()
    hub.start_worker()
    await publish_records(hub.settings, case(306, URGENT))
    lead = lead_of(306)

    outcomes = await wait_for_outcomes(hub, "the alert sent", lambda o: sent(o, lead, 1))
    await hub.quiet()

    (alert_id,) = alert_ids(outcomes, lead)
    assert of(await hub.outcomes(), alert_id) == ["RETRY", "SENT"]
    assert [r.message_id for r in hub.inbox.received] == [message_id(alert_id)]


# -- security --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


async def test_a_server_without_starttls_gets_nothing_and_the_alert_waits_for_tls(
    hub: Hub, ca: trustme.CA, tmp_path: Path
) -> None:
    ca_file = tmp_path / "test-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    hub.smtp.start()  # plain: offers no STARTTLS
    hub.start_worker(HUB_SMTP_SECURITY="starttls", HUB_SMTP_CA_FILE=str(ca_file))
    await publish_records(hub.settings, case(307, PRIORITY))
    lead = lead_of(307)

    def waiting(o: list[DeliveryOutcome]) -> bool:
        ids = alert_ids(o, lead)
        if not ids:
            return False
        escalation = derived_id(ids[0], "escalation")
        return of(o, ids[0]).count("RETRY") >= 2 and of(o, escalation).count("RETRY") >= 2

    outcomes = await wait_for_outcomes(hub, "the alert and its escalation waiting", waiting)

    (alert_id,) = alert_ids(outcomes, lead)
    escalation_id = derived_id(alert_id, "escalation")
    history = of(outcomes, alert_id)
    assert history[:2] == ["RETRY", "ESCALATED"]
    assert set(history[2:]) == {"RETRY"}  # escalated once, then waiting
    escalated = next(o for o in outcomes if o.status == "ESCALATED")
    assert (escalated.detail, escalated.via) == ("insecure", escalation_id)
    assert "STARTTLS" in outcomes[0].detail
    # The escalation cannot be sent either: recorded, and not escalated again.
    assert set(of(outcomes, escalation_id)) == {"RETRY"}
    assert hub.inbox.mail_commands == 0  # not so much as a MAIL FROM in clear
    assert hub.inbox.received == []
    assert hub.metric("hub_delivery_escalations_total", reason="insecure") == 1
    pending = hub.metric("hub_delivery_pending")
    assert pending is not None
    assert pending >= 2

    # The server is fixed: STARTTLS with a certificate the deployment's CA signed.
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(HOST).configure_cert(server_tls)
    hub.smtp.stop()
    hub.smtp.start(tls_context=server_tls, require_starttls=True)

    outcomes = await wait_for_outcomes(
        hub,
        "both delivered over TLS",
        lambda o: "SENT" in of(o, escalation_id) and sent(o, lead, 1),
    )
    await hub.quiet()
    assert sorted(r.message_id for r in hub.inbox.received) == sorted(
        [message_id(alert_id), message_id(escalation_id)]
    )
    assert all(r.over_tls for r in hub.inbox.received)
    assert hub.inbox.to(TEAM_ESCALATION)


# -- restarts -----------------------------------------------------------------------------------


async def test_a_pending_alert_survives_a_worker_restart(hub: Hub) -> None:
    hub.start_worker()  # the mail server is down
    await publish_records(hub.settings, case(308, PRIORITY))
    lead = lead_of(308)
    outcomes = await wait_for_outcomes(
        hub, "a retry", lambda o: any(x.status == "RETRY" for x in o if x.recipient_id == lead)
    )
    (alert_id,) = alert_ids(outcomes, lead)

    hub.restart_worker()
    hub.smtp.start()

    await wait_for_outcomes(hub, "the alert sent", lambda o: sent(o, lead, 1))
    await hub.quiet()
    assert [r.message_id for r in hub.inbox.received] == [message_id(alert_id)]
    assert of(await hub.outcomes(), alert_id).count("SENT") == 1


async def test_an_alert_whose_send_was_cut_off_by_a_worker_stop_is_sent_after_restart(
    hub: Hub,
) -> None:
    """The worker is stopped while the server sits on the DATA. Either the stop cuts the
    send off -- the alert's event is not acknowledged (streaming/batches.py) and nothing was
    recorded before its first attempt, so the restarted worker reads it again and sends it
    -- or the 250 comes first and the SENT mark is recorded, so the alert read again is a
    DUPLICATE. Either way it is sent once, in one attempt, and never retried."""
    hub.inbox.data_plan.append("hang")
    hub.smtp.start()
    hub.start_worker(HUB_SMTP_TIMEOUT_S="60")
    await publish_records(hub.settings, case(309, PRIORITY))
    await wait_for("the send to start", hub.inbox.hanging.is_set)

    hub.worker.stop()
    hub.inbox.release.set()
    hub.worker.start(**hub.env)

    lead = lead_of(309)
    outcomes = await wait_for_outcomes(hub, "the alert sent", lambda o: sent(o, lead, 1))
    (alert_id,) = alert_ids(outcomes, lead)
    # Any second send would have been a retry the cut-off attempt scheduled: there is none.
    assert not any(o.status == "RETRY" for o in outcomes if o.alert_id == alert_id)
    await hub.quiet()
    outcomes = await hub.outcomes()
    statuses = [(o.status, o.attempts) for o in outcomes if o.alert_id == alert_id]
    assert [s for s in statuses if s[0] != "DUPLICATE"] == [("SENT", 1)]
    assert [r.message_id for r in hub.inbox.received] == [message_id(alert_id)]


# -- digests and out of hours -------------------------------------------------------------------


async def test_a_daily_digest_is_sent_once_after_its_window_closes_across_restarts(
    hub: Hub,
) -> None:
    lead = lead_of(310)
    closes = (dt.datetime.now(LONDON) + dt.timedelta(seconds=40)).replace(microsecond=0)
    if closes.date() != dt.datetime.now(LONDON).date():
        pytest.skip("too close to midnight for a window later today")
    write_preferences(hub.subscriptions, {lead: Preference(Mode.DAILY, closes.time())})
    window = f"daily:{closes.isoformat()}"
    digest_id = derived_id(lead, window)
    hub.smtp.start()
    hub.start_worker()

    await publish_records(hub.settings, case(310, ROUTINE, ROUTINE, SCHOOL_CHANGE, URGENT))

    def held_and_urgent_sent(o: list[DeliveryOutcome]) -> bool:
        return [x.status for x in o if x.recipient_id == lead].count("HELD") == 3 and sent(
            o, lead, 1
        )

    outcomes = await wait_for_outcomes(hub, "3 held, 1 sent", held_and_urgent_sent)
    held = [o.alert_id for o in outcomes if o.status == "HELD"]
    assert {o.detail for o in outcomes if o.status == "HELD"} == {window}
    (urgent,) = hub.inbox.received  # URGENT goes at once
    assert str(urgent.message["Subject"]).startswith("[URGENT]")

    hub.restart_worker()  # mid-window
    assert dt.datetime.now(LONDON) < closes, "the window closed before the test could check it"
    assert len(hub.inbox.received) == 1

    await wait_for("the digest", lambda: len(hub.inbox.received) >= 2, timeout=90)
    assert dt.datetime.now(LONDON) >= closes
    digest = hub.inbox.received[1]
    assert digest.message_id == message_id(digest_id)
    assert digest.rcpt_tos == [LEAD_EMAIL]
    assert str(digest.message["Subject"]) == "[DIGEST] Involvement hub: 3 updates on your cases"
    text = digest.message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert all(alert_id in text for alert_id in held)
    outcomes = await wait_for_outcomes(hub, "3 sent via the digest", lambda o: sent(o, lead, 4))
    assert sorted(o.alert_id for o in outcomes if o.via == digest_id) == sorted(held)
    assert hub.metric("hub_digest_size_alerts_sum") == 3

    hub.restart_worker()
    await hub.quiet()
    assert len(hub.inbox.received) == 2


async def test_out_of_hours_urgent_alerts_are_copied_and_routine_ones_held(hub: Hub) -> None:
    today = DAYS[dt.datetime.now(LONDON).weekday()]
    (hub.subscriptions / "delivery.toml").write_text(
        delivery_toml(days=tuple(d for d in DAYS if d != today))
    )
    lead = lead_of(311)
    write_preferences(hub.subscriptions, {lead: Preference(Mode.WORKING_HOURS)})
    hub.smtp.start()
    hub.start_worker()

    await publish_records(hub.settings, case(311, URGENT, ROUTINE))

    await wait_for("the alert and its copy", lambda: len(hub.inbox.received) >= 2)
    # The mail server takes an email before hub.delivery records it SENT: wait for both
    # records, the alert's and its copy's, and for the routine alert's HELD.
    outcomes = await wait_for_outcomes(
        hub,
        "the routine alert held, the alert and its copy sent",
        lambda o: "HELD" in [x.status for x in o] and [x.status for x in o].count("SENT") >= 2,
    )
    await hub.quiet(pending=1)  # the routine alert, held until working hours
    urgent_id, routine_id = alert_ids(outcomes, lead)
    copy_id = derived_id(urgent_id, "out-of-hours")
    assert of(outcomes, urgent_id) == ["SENT"]
    assert of(outcomes, routine_id) == ["HELD"]
    held = next(o for o in outcomes if o.status == "HELD")
    assert held.detail.startswith("working:")
    assert of(outcomes, copy_id) == ["SENT"]
    by_id = {r.message_id: r for r in hub.inbox.received}
    assert set(by_id) == {message_id(urgent_id), message_id(copy_id)}
    assert by_id[message_id(urgent_id)].rcpt_tos == [LEAD_EMAIL]
    copy = by_id[message_id(copy_id)]
    assert copy.rcpt_tos == [OUT_OF_HOURS]
    assert "out-of-hours copy" in str(copy.message["Subject"])


async def produce_alerts(settings: Settings, *alerts: Alert) -> None:
    """Alerts put straight on hub.alerts, as the person stage would put them."""
    producer = AIOKafkaProducer(**client_options(settings), acks="all")
    await producer.start()
    try:
        for alert in alerts:
            await producer.send_and_wait(
                TopicNames.from_settings(settings).alerts,
                key=alert.recipient_id.encode(),
                value=wire.dumps(alert, AlertTopicMessage),
            )
    finally:
        await producer.stop()


def routed_alert(n: int, send_by: dt.datetime) -> Alert:
    return an_alert(
        at=dt.datetime.now(dt.UTC),
        alert_id=f"{n:032x}",
        event_key=f"{SOCIAL_CARE}/evt-{n}",
        recipient_id=lead_of(n),
        recipient_email=LEAD_EMAIL,
        case_ref=f"CIN-{n}",
        kind="POLICE_CUSTODY",
        source_agency=SOCIAL_CARE,
        policy_version="test",
        send_by=send_by,
        person_id=f"p-child-{n}",
        about_person_id=f"p-child-{n}",
        role="LEAD_PRACTITIONER",
    )


async def test_an_alert_past_its_send_by_is_not_sent_but_recorded_and_audited(hub: Hub) -> None:
    """IG-2 again when sending: a routed alert that waited past the recipient's grace period."""
    hub.smtp.start()
    hub.start_worker()
    now = dt.datetime.now(dt.UTC)
    lapsed = routed_alert(331, send_by=now - dt.timedelta(minutes=1))
    current = routed_alert(332, send_by=now + dt.timedelta(days=14))

    await produce_alerts(hub.settings, lapsed, current)

    outcomes = await wait_for_outcomes(
        hub,
        "both alerts settled",
        lambda o: of(o, lapsed.alert_id) == ["EXPIRED"] and of(o, current.alert_id) == ["SENT"],
    )
    assert [o.detail for o in outcomes if o.alert_id == lapsed.alert_id] == [
        "not sent: its send-by time (the recipient's grace period, IG-2) had passed"
    ]
    assert [r.message_id for r in hub.inbox.received] == [message_id(current.alert_id)]
    audit = [
        wire.loads(DisclosureRecord, r.value) for r in await read_all(hub.settings, hub.names.audit)
    ]
    assert [(r.alert_id, r.outcome, r.suppression, r.person_id) for r in audit] == [
        (lapsed.alert_id, "SUPPRESS", "ended_before_send", "p-child-331")
    ]
    assert (
        hub.metric("hub_routing_decisions_total", outcome="SUPPRESS", reason="ended_before_send")
        == 1
    )


def a_case(n: int, name: str, *events: tuple[str, str]) -> list[dict[str, Any]]:
    """Like ``case``, with a lead of the given name (and so an email address of their own)."""
    child = person(n)
    lead = practitioner(f"SW-{n}", name, "social-care.northshire")
    ref = f"CIN-{n}"
    return [
        involvement(SOCIAL_CARE, ref, child, lead, involvement_id=f"SC-{n}", lead=True),
        *(life_event(SOCIAL_CARE, ref, child, kind, urgency=urgency) for kind, urgency in events),
    ]


async def test_every_email_the_mail_server_took_is_on_the_audit_with_its_alert_id(
    hub: Hub,
) -> None:
    """IG-5: alerts sent alone, an out-of-hours copy, an escalation and a digest, each on
    ``hub.audit`` with the alert id of its email, and nothing on the audit that no email was."""
    closes = (dt.datetime.now(LONDON) + dt.timedelta(seconds=30)).replace(microsecond=0)
    if closes.date() != dt.datetime.now(LONDON).date():
        pytest.skip("too close to midnight for a window later today")
    today = DAYS[dt.datetime.now(LONDON).weekday()]
    (hub.subscriptions / "delivery.toml").write_text(
        delivery_toml(days=tuple(d for d in DAYS if d != today))  # out of hours all day
    )
    write_preferences(hub.subscriptions, {lead_of(340): Preference(Mode.DAILY, closes.time())})
    refused = "sam.okafor@social-care.northshire.example"
    hub.inbox.refuse[refused] = "550 5.1.1 mailbox unavailable"
    who = {
        LEAD_EMAIL: lead_of(340),
        "robin.shah@social-care.northshire.example": lead_of(341),
        OUT_OF_HOURS: f"{SOCIAL_CARE}/out-of-hours",
        TEAM_ESCALATION: f"{SOCIAL_CARE}/escalation",
    }
    hub.smtp.start()
    hub.start_worker()

    await publish_records(
        hub.settings,
        [
            *a_case(340, "Alex Morgan", ROUTINE, SCHOOL_CHANGE),  # held, then one digest
            *a_case(341, "Robin Shah", URGENT, PRIORITY),  # alone; the URGENT one copied
            *a_case(342, "Sam Okafor", PRIORITY),  # refused: escalated
        ],
    )

    # The digest, the two alerts to 341 and the copy, the escalation.
    await wait_for("five emails", lambda: len(hub.inbox.received) >= 5, timeout=120)
    outcomes = await wait_for_outcomes(
        hub, "the digest's alerts sent", lambda o: sent(o, lead_of(340), 3)
    )
    audit = [
        wire.loads(DisclosureRecord, r.value) for r in await read_all(hub.settings, hub.names.audit)
    ]
    on_the_audit = emailed(audit, delivery_states(outcomes))
    received = {
        (who[r.rcpt_tos[0]], r.message_id.strip("<>").split("@")[0]) for r in hub.inbox.received
    }
    assert len(hub.inbox.received) == 5
    assert on_the_audit == received
    kinds = {r.alert_id: (r.kind, r.role) for r in audit}
    digest = next(a for who_, a in received if who_ == lead_of(340))
    assert kinds[digest] == ("DIGEST", "LEAD_PRACTITIONER")
    assert sorted(role for _, role in kinds.values() if role.endswith("CONTACT")) == [
        "ESCALATION_CONTACT",
        "OUT_OF_HOURS_CONTACT",
    ]
