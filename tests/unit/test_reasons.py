"""The one registry of quarantine reasons covers every token the hub can quarantine for."""

from __future__ import annotations

import ast
from pathlib import Path

from involvement_hub.core.reasons import Reason
from involvement_hub_producer.codec import DECODE_REASONS

REPO = Path(__file__).resolve().parents[2]


def test_every_token_the_agency_codec_raises_is_registered() -> None:
    assert set(DECODE_REASONS) <= {r.value for r in Reason}


def test_no_reason_token_is_written_outside_the_registry() -> None:
    """A reason is a ``Reason`` member where it is raised: no string literal stands for one."""
    tokens = {r.value for r in Reason}
    offenders = []
    for path in sorted((REPO / "hub").rglob("*.py")):
        if path.name == "reasons.py":
            continue
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Constant) and node.value in tokens:
                offenders.append(f"{path.relative_to(REPO)}:{node.lineno} {node.value!r}")

    assert offenders == []


def test_a_stage_failure_has_its_own_token() -> None:
    assert Reason.internal_error("ordered") is Reason.INTERNAL_ERROR_ORDERED
