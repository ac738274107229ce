"""Every name the hub gives Kafka: its topics (from the settings' prefix and agency list)
and its tables (whose changelog topics Faust names after the application id).

``ingest.<agency_id>`` topics belong to the agencies (each may write only its own); the
``hub.*`` topics are the hub's. A prefix lets several hubs, or several test runs, share a
cluster without seeing each other's data. This is the one place these names are written.
"""

from __future__ import annotations

from dataclasses import dataclass

from involvement_hub_producer import ingest_topic

from involvement_hub.settings import Settings


@dataclass(frozen=True, slots=True)
class TopicNames:
    prefix: str
    agencies: tuple[str, ...]

    @classmethod
    def from_settings(cls, settings: Settings) -> TopicNames:
        return cls(settings.topic_prefix, settings.agencies)

    def ingest(self, agency_id: str) -> str:
        return ingest_topic(agency_id, self.prefix)

    @property
    def all_ingest(self) -> tuple[str, ...]:
        return tuple(self.ingest(a) for a in self.agencies)

    def agency_of(self, topic: str) -> str | None:
        """The agency an ingest topic belongs to, or None for any other topic."""
        head = self.ingest("")
        return topic[len(head) :] if topic.startswith(head) else None

    def _hub(self, name: str) -> str:
        return f"{self.prefix}hub.{name}"

    @property
    def quarantine(self) -> str:
        return self._hub("quarantine")

    @property
    def identity(self) -> str:
        """Single partition: identity resolution is ordered and has one writer."""
        return self._hub("identity")

    @property
    def identity_log(self) -> str:
        """Merges, probable-match candidates and steward decisions, for stewards and audit."""
        return self._hub("identity.log")

    @property
    def alerts(self) -> str:
        """Keyed by recipient: one recipient's alerts are delivered in order."""
        return self._hub("alerts")

    @property
    def audit(self) -> str:
        return self._hub("audit")

    @property
    def delivery(self) -> str:
        return self._hub("delivery")


# The ordered stage keeps all its state -- identity index, persons, households, journal --
# in this one Faust table, so its writes reach Kafka in one changelog, in order. It has the
# one partition of the identity topic that feeds it.
STATE_TABLE = "hub-state"
# Delivery's tables, one partition for each of hub.alerts' (HUB_PARTITIONS).
OUTBOX_TABLE = "outbox"  # alert or digest id -> PENDING | SENT
DUE_TABLE = "delivery-due"  # alert or digest id -> its next attempt
DIGESTS_TABLE = "digests"  # recipient id -> alerts held for a digest, by window
DELIVERY_TABLES = (OUTBOX_TABLE, DUE_TABLE, DIGESTS_TABLE)


def changelog(settings: Settings, table: str) -> str:
    """A table's changelog topic, as Faust names it."""
    return f"{settings.app_id}-{table}-changelog"


def state_changelog(settings: Settings) -> str:
    """The changelog topic of :data:`STATE_TABLE`."""
    return changelog(settings, STATE_TABLE)


def changelog_partitions(settings: Settings) -> dict[str, int]:
    """Every table's changelog topic and its partitions."""
    wanted = {state_changelog(settings): 1}
    for table in DELIVERY_TABLES:
        wanted[changelog(settings, table)] = settings.partitions
    return wanted
