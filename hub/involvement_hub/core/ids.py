"""Ids derived from other ids: the same inputs give the same id on every replay."""

from __future__ import annotations

import hashlib


def derived_id(*parts: str) -> str:
    """A deterministic id for a message derived from others (a digest, a copy)."""
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:32]
