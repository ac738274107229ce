"""Synthetic identifiers for demos, tests and benchmarks: never a real person's.

NHS numbers come from the 999 range, which is reserved for testing and never issued, with
a valid modulus-11 check digit. UPNs use the local-authority code 999 (not a real LA) and
email addresses the reserved ``.example`` domain.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

from involvement_hub.core.identity import nhs_check_digit


def nhs_numbers(start: int = 0) -> Iterator[str]:
    """Valid NHS numbers of the 999 test range, in order, from body offset ``start``."""
    for offset in range(start, 1_000_000):
        body = str(999_000_000 + offset)
        check = nhs_check_digit(body)
        if check is not None:
            yield f"{body}{check}"


def nhs_number(n: int) -> str:
    """The n-th (from 0) valid NHS number in the 999 test range."""
    return next(itertools.islice(nhs_numbers(), n, None))


def upn(n: int) -> str:
    """A well-formed unique pupil number in the fictional local authority 999."""
    return f"A999{n:09d}"[:13]


def email(name: str, domain: str) -> str:
    return f"{name.lower().replace(' ', '.')}@{domain}.example"
