"""Check-in codes: short, unambiguous, different for every shift."""

from __future__ import annotations

import secrets

# No 0/O, 1/I/L: the code is read aloud and typed on phones by elderly volunteers.
ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 6


def new_checkin_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


def normalise_code(value: str | None) -> str:
    return (value or "").strip().upper().replace(" ", "")
