"""The errors the pure core raises on purpose: its part of the hub's one error tree.

The whole tree is drawn in :mod:`involvement_hub.errors`; its root, ``HubError``, comes from
``involvement_hub_producer.errors`` (a standard-library-only module, so that agencies share
the root without installing the hub)::

    HubError
     ├── ConfigError          the hub will not start until this is fixed
     │    ├── PolicyError     the governance policy is invalid
     │    └── SubscriptionError  a subscription rule is invalid
     └── RejectedEvent        a decoded event the hub must not route: quarantined

Messages name the problem, never payload content (payloads carry personal data).
"""

from __future__ import annotations

from involvement_hub_producer.errors import HubError

__all__ = ["ConfigError", "HubError", "PolicyError", "RejectedEvent", "SubscriptionError"]


class ConfigError(HubError):
    """Configuration that stops the hub from starting; the message names the problem."""


class PolicyError(ConfigError):
    """The governance policy file is missing, malformed or incomplete."""


class SubscriptionError(ConfigError):
    """A declarative subscription rule is malformed or not allowed by policy."""


class RejectedEvent(HubError):
    """A well-formed event that must not be routed. ``reason`` is a fixed label token."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
