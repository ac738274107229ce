"""The hub as a Faust application: four agents over the hub's topics and tables.

    ingest.<agency> --ingest--> hub.identity --resolver--> hub.person --person--> hub.alerts
         |                       (1 partition)   |  ^        |   |                   |
         v                                       |  +--------+   v               --delivery--> SMTP
    hub.quarantine                               |  merges,   hub.audit               |
                                                 v  handovers                         v
                                        tables: identity                          hub.delivery
                                                                  table: teams    table: outbox

Each agent runs with ``concurrency=1`` and handles one event at a time: Faust writes a
table change to the changelog partition of the *current* event, so batching several
events per step would file state under the wrong partition (and faust-streaming #606 can
commit past in-flight events when concurrency > 1). No exception escapes an agent: an
unexpected one is counted, logged without payload, and the message quarantined.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import traceback
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import faust  # noqa: TID251 - the streaming package is the faust seam
from mode import Service  # noqa: TID251 - Faust's service library, same seam

from involvement_hub import wire
from involvement_hub.config import HubConfig
from involvement_hub.core.alerts import Alert
from involvement_hub.core.identity import resolve, usable_keys
from involvement_hub.core.messages import (
    Merge,
    PersonEvent,
    PersonMessage,
    ToResolve,
)
from involvement_hub.core.model import LifeEvent, PersonRef, RelationshipEvent
from involvement_hub.core.person_stage import on_person_message
from involvement_hub.core.team import Team
from involvement_hub.delivery.mailer import Mailer
from involvement_hub.delivery.outbox import deliver
from involvement_hub.endpoints import endpoints_app, start_endpoints
from involvement_hub.ingest import Accepted, examine, kafka_time
from involvement_hub.metrics import HubMetrics
from involvement_hub.settings import Settings
from involvement_hub.topics import TopicNames

log = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


_RAW: dict[str, Any] = {"key_serializer": "raw", "value_serializer": "raw"}

V = TypeVar("V")


@dataclass(frozen=True)
class ValueCodec(Generic[V]):
    encode: Callable[[V], bytes]
    decode: Callable[[bytes], V]


_str_codec: ValueCodec[str] = ValueCodec(lambda v: v.encode("utf-8"), lambda b: b.decode("utf-8"))
_json_codec: ValueCodec[Any] = ValueCodec(
    lambda v: json.dumps(v, separators=(",", ":")).encode("utf-8"), json.loads
)


class Encoded(MutableMapping[str, V]):
    """A Faust table of bytes seen as a mapping of decoded values."""

    def __init__(self, table: Any, codec: ValueCodec[V]) -> None:
        self._table = table
        self._codec = codec

    def __getitem__(self, key: str) -> V:
        return self._codec.decode(self._table[key])

    def get(self, key: str, default: Any = None) -> Any:
        raw = self._table.get(key)
        return default if raw is None else self._codec.decode(raw)

    def __setitem__(self, key: str, value: V) -> None:
        self._table[key] = self._codec.encode(value)

    def __delitem__(self, key: str) -> None:
        del self._table[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._table)

    def __len__(self) -> int:
        return len(self._table)


class HubApp:
    """Builds the Faust app for one worker from settings, loaded config and collaborators."""

    def __init__(
        self,
        settings: Settings,
        config: HubConfig,
        metrics: HubMetrics,
        mailer: Mailer,
        *,
        clock: Clock = utc_now,
    ) -> None:
        self.settings = settings
        self.config = config
        self.metrics = metrics
        self.mailer = mailer
        self.clock = clock
        self.names = TopicNames.from_settings(settings)
        self._secret = settings.pseudonym_key.reveal().encode("utf-8")
        self._retention = dt.timedelta(days=settings.involvement_retention_days)
        # Merges found while resolving one event, sent just before that event.
        self._pending_merges: list[Merge] = []
        self.app = self._create_app()
        self._declare()

    # -- construction -------------------------------------------------------------

    def _create_app(self) -> faust.App:
        s = self.settings
        datadir = s.state_dir / "worker"
        datadir.mkdir(parents=True, exist_ok=True)
        return faust.App(
            s.app_id,
            broker=f"kafka://{s.bootstrap}",
            store=s.store,
            datadir=str(datadir),
            processing_guarantee="at_least_once",
            topic_partitions=s.partitions,
            topic_replication_factor=s.replication_factor,
            # Faust's web server would expose table contents (personal data); the worker's
            # own endpoints serve metrics and health instead.
            web_enabled=False,
            autodiscover=False,
            consumer_auto_offset_reset="earliest",
            producer_acks=-1,
            stream_wait_empty=False,
        )

    def _declare(self) -> None:
        app, names, n = self.app, self.names, self.settings.partitions
        self.ingest_topic = app.topic(*names.all_ingest, **_RAW)
        self.quarantine_topic = app.topic(names.quarantine, **_RAW)
        self.identity_topic = app.topic(names.identity, partitions=1, **_RAW)
        self.person_topic = app.topic(names.person, partitions=n, **_RAW)
        self.alerts_topic = app.topic(names.alerts, partitions=n, **_RAW)
        self.audit_topic = app.topic(names.audit, partitions=n, **_RAW)
        self.delivery_topic = app.topic(names.delivery, partitions=n, **_RAW)
        # Every table stores bytes that this module encodes: Faust would otherwise treat a
        # value type as one of its models and fail to rebuild it from the changelog.
        table: Callable[..., Any] = app.Table
        text = {"key_type": str, "value_type": bytes}
        # Identity state lives on the resolver's single partition.
        self.person_of = Encoded(table("identity-person-of", partitions=1, **text), _str_codec)
        self.keys_of = Encoded(table("identity-keys-of", partitions=1, **text), _json_codec)
        self.teams = table("teams", partitions=n, **text)
        self.outbox = Encoded(table("outbox", partitions=n, **text), _json_codec)
        app.agent(self.ingest_topic, name="ingest", concurrency=1)(self._ingest_agent)
        app.agent(self.identity_topic, name="resolver", concurrency=1)(self._resolver_agent)
        app.agent(self.person_topic, name="person", concurrency=1)(self._person_agent)
        app.agent(self.alerts_topic, name="delivery", concurrency=1)(self._delivery_agent)
        app.service(_endpoints_service(self))

    # -- readiness ----------------------------------------------------------------

    def ready(self) -> bool:
        app = self.app
        tables: Any = app.tables
        recovered = tables.recovery.completed.is_set()
        ok = bool(app.started and recovered and not app.rebalancing)
        self.metrics.ready.set(1 if ok else 0)
        return ok

    def live(self) -> bool:
        return not any(agent.crashed for agent in self.app.agents.values())

    # -- the agents -----------------------------------------------------------------

    async def _each(
        self, stage: str, stream: Any, handle: Callable[[Any], Awaitable[None]]
    ) -> None:
        async for event in stream.events():
            try:
                await handle(event)
            except Exception as exc:
                await self._stage_error(stage, event, exc)

    async def _ingest_agent(self, stream: Any) -> None:
        await self._each("ingest", stream, self._ingest)

    async def _resolver_agent(self, stream: Any) -> None:
        await self._each("resolver", stream, self._resolve)

    async def _person_agent(self, stream: Any) -> None:
        await self._each("person", stream, self._person)

    async def _delivery_agent(self, stream: Any) -> None:
        await self._each("delivery", stream, self._deliver)

    async def _ingest(self, event: Any) -> None:
        message = event.message
        agency = self.names.agency_of(message.topic)
        result = examine(
            message.value,
            topic_agency=agency,
            registry=self.config.registry,
            policy=self.config.policy,
            max_bytes=self.settings.max_message_bytes,
        )
        if not isinstance(result, Accepted):
            if result.decode_failure:
                self.metrics.decode_failures.labels(agency or "unknown", result.reason).inc()
            await self._quarantine(event, result.reason, result.detail, agency)
            return
        self.metrics.events_consumed.labels(agency, result.event.kind).inc()
        forward = ToResolve(result.event, kafka_time(message.timestamp, self.clock()))
        await self.identity_topic.send(value=wire.dumps(forward))

    async def _resolve(self, event: Any) -> None:
        message: ToResolve = wire.loads(ToResolve, event.value)
        ev = message.event
        subject = self._resolve_person(ev.envelope.subject)
        related: list[tuple[str, str]] = []
        if isinstance(ev, LifeEvent):
            related = [(self._resolve_person(r.person), r.relationship.value) for r in ev.related]
        elif isinstance(ev, RelationshipEvent):
            related = [(self._resolve_person(ev.related_person), ev.relationship.value)]
        # A related person's keys may have merged the subject into another id since.
        subject = self.person_of.get(_first_key(ev.envelope.subject), subject)
        forward = PersonEvent(ev, subject, tuple(related), message.ingested_at)
        await self._to_person(subject, forward)

    def _resolve_person(self, person: PersonRef) -> str:
        keys, rejected = usable_keys(person.identifiers)
        for problem in rejected:
            self.metrics.identifiers_rejected.labels(problem.scheme, problem.reason).inc()
        resolution = resolve(keys, self.person_of, self.keys_of, self._secret)
        for key, pid in resolution.assign.items():
            self.person_of[key] = pid
        self.keys_of[resolution.person_id] = list(resolution.keys)
        for from_id, into_id in resolution.merged:
            self.keys_of.pop(from_id, None)
            self.metrics.identity_merges.inc()
            self._pending_merges.append(Merge(from_id, into_id))
        return resolution.person_id

    async def _to_person(self, key: str, message: PersonMessage) -> None:
        for merge in self._pending_merges:
            await self.person_topic.send(
                key=merge.from_id.encode(), value=wire.dumps(merge, PersonMessage)
            )
        self._pending_merges.clear()
        await self.person_topic.send(key=key.encode(), value=wire.dumps(message, PersonMessage))

    async def _person(self, event: Any) -> None:
        person_id = event.key.decode("utf-8")
        message = wire.loads(PersonMessage, event.value)
        stored = self.teams.get(person_id)
        team = wire.loads(Team, stored) if stored is not None else None
        step = on_person_message(
            message,
            team,
            policy=self.config.policy,
            rules=self.config.rules,
            retention=self._retention,
            now=self.clock(),
        )
        if step.team is None:
            self.teams.pop(person_id, None)
        elif step.team != team and (team is not None or step.team.members):
            self.teams[person_id] = wire.dumps(step.team)
        for decision in step.decisions:
            self.metrics.decisions.labels(decision.outcome.value, decision.suppression or "").inc()
        for alert in step.alerts:
            await self.alerts_topic.send(key=alert.recipient_id.encode(), value=wire.dumps(alert))
            self.metrics.alerts_routed.labels(alert.urgency.value).inc()
        for record in step.audit:
            await self.audit_topic.send(key=record.person_id.encode(), value=wire.dumps(record))
        for key, forward in step.forward:
            await self.person_topic.send(key=key.encode(), value=wire.dumps(forward, PersonMessage))

    async def _deliver(self, event: Any) -> None:
        alert: Alert = wire.loads(Alert, event.value)
        outcome = await deliver(
            alert,
            outbox=self.outbox,
            mailer=self.mailer,
            mail_from=self.settings.mail_from,
            metrics=self.metrics,
            clock=self.clock,
        )
        await self.delivery_topic.send(key=alert.recipient_id.encode(), value=wire.dumps(outcome))

    # -- failure paths --------------------------------------------------------------

    async def _quarantine(self, event: Any, reason: str, detail: str, agency: str | None) -> None:
        message = event.message
        self.metrics.quarantined.labels(agency or "unknown", reason).inc()
        headers = {
            "hub-reason": reason.encode(),
            "hub-detail": detail.encode(),
            "hub-source-topic": message.topic.encode(),
            "hub-source-partition": str(message.partition).encode(),
            "hub-source-offset": str(message.offset).encode(),
            "hub-quarantined-at": self.clock().isoformat().encode(),
        }
        await self.quarantine_topic.send(key=message.key, value=message.value, headers=headers)

    async def _stage_error(self, stage: str, event: Any, exc: Exception) -> None:
        message = event.message
        self.metrics.agent_errors.labels(stage).inc()
        # The exception's text may quote payload data; log its type and where it was raised.
        where = "".join(traceback.format_tb(exc.__traceback__)[-3:])
        log.error(
            "stage %s failed on %s[%s]@%s: %s\n%s",
            stage,
            message.topic,
            message.partition,
            message.offset,
            type(exc).__name__,
            where,
        )
        try:
            await self._quarantine(event, f"internal_error_{stage}", type(exc).__name__, None)
        except Exception:
            log.exception("could not quarantine after a %s failure", stage)


def _first_key(person: PersonRef) -> str:
    keys, _ = usable_keys(person.identifiers)
    return keys[0]


def _endpoints_service(hub: HubApp) -> type[Service]:
    class Endpoints(Service):
        """Serves /metrics, /healthz and /readyz for as long as the worker runs."""

        runner: Any = None

        async def on_start(self) -> None:
            port = hub.settings.metrics_port
            if port:
                app = endpoints_app(hub.metrics.registry, live=hub.live, ready=hub.ready)
                self.runner = await start_endpoints(app, hub.settings.metrics_host, port)
                log.info("metrics and health on http://%s:%s/", hub.settings.metrics_host, port)

        async def on_stop(self) -> None:
            if self.runner is not None:
                await self.runner.cleanup()

    return Endpoints
