"""The password rules: 8 to 128 characters, not a common password, not the account's own
username or phone number. Hashing (scrypt) lives on the User model."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from flask_babel import lazy_gettext as _l
from wtforms.validators import ValidationError

from portal.core.errors import DomainError
from portal.core.validators import normalise_phone

MIN_LENGTH = 8
MAX_LENGTH = 128
COMMON_FILE = Path(__file__).with_name("common_passwords.txt")


@cache
def common_passwords() -> frozenset[str]:
    """The refused passwords, lower-cased (read once per process)."""
    lines = COMMON_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(line.lower() for line in lines if line and not line.startswith("# "))


def password_problem(
    password: str, *, username: str | None = None, phone: str | None = None
) -> str | None:
    """The reason ``password`` is refused for this account, or None when it is acceptable."""
    if len(password) < MIN_LENGTH:
        return str(_l("At least 8 characters."))
    if len(password) > MAX_LENGTH:
        return str(_l("At most 128 characters."))
    lowered = password.lower()
    if lowered in common_passwords():
        return str(_l("This password is too common; choose another."))
    if username and lowered == username.strip().lower():
        return str(_l("The password must not be your username."))
    if phone and normalise_phone(password) == normalise_phone(phone):
        return str(_l("The password must not be your phone number."))
    return None


def ensure_acceptable(
    password: str, *, username: str | None = None, phone: str | None = None, field: str = "password"
) -> None:
    """Raise DomainError({field: reason}) when ``password`` breaks a rule."""
    problem = password_problem(password, username=username, phone=phone)
    if problem:
        raise DomainError({field: problem})


def not_common(form, field) -> None:
    """WTForms validator: refuse a common password (the account-specific rules run in the
    service, which knows the username and phone)."""
    if field.data and field.data.lower() in common_passwords():
        raise ValidationError(_l("This password is too common; choose another."))
