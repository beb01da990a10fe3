"""Field validators shared by every domain's forms."""

from __future__ import annotations

import re

from flask_babel import lazy_gettext as _l
from wtforms.validators import ValidationError

PHONE_RE = re.compile(r"^1[3-9]\d{9}$")

COMMON_PASSWORDS = frozenset(
    {
        "12345678", "123456789", "1234567890", "87654321", "11111111", "00000000",
        "88888888", "66666666", "password", "password1", "qwertyui", "qwerty123",
        "abc12345", "abcd1234", "iloveyou", "woaini1314", "11223344", "12341234",
        "a1234567", "aa123456", "1qaz2wsx", "zxcvbnm1", "asdfghjk", "tongxin123",
    }
)  # fmt: skip


def normalise_phone(value: str | None) -> str:
    return re.sub(r"[\s-]", "", value or "")


def phone_number(form, field) -> None:
    """Mainland mobile number: 1[3-9] followed by nine digits (spaces and dashes ignored)."""
    if field.data:
        field.data = normalise_phone(field.data)
        if not PHONE_RE.match(field.data):
            raise ValidationError(_l("Enter an 11-digit mobile number starting with 13–19."))


def strong_password(form, field) -> None:
    if field.data and field.data.lower() in COMMON_PASSWORDS:
        raise ValidationError(_l("This password is too common; choose another."))


def mask_phone(phone: str | None) -> str:
    """138****5678: enough to recognise, not enough to call."""
    if not phone:
        return ""
    return phone[:3] + "****" + phone[-4:] if len(phone) >= 7 else "****"


def mask_name(name: str | None) -> str:
    """张*明 / 张*: keep the first and last character."""
    if not name:
        return ""
    if len(name) <= 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]


# GB 11643-1999 citizen identity number: 17 digits and a check character (0-9 or X).
ID_NUMBER_RE = re.compile(r"^\d{17}[\dX]$")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def normalise_id_number(value: str | None) -> str:
    """Spaces dropped, a trailing lower-case x made upper-case."""
    return re.sub(r"\s", "", value or "").upper()


def valid_id_number(value: str | None) -> bool:
    """An 18-character identity number with a real date of birth and the right check
    character (ISO 7064 MOD 11-2, as GB 11643-1999 prescribes)."""
    from datetime import date

    number = normalise_id_number(value)
    if not ID_NUMBER_RE.match(number):
        return False
    try:
        date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return False
    total = sum(int(digit) * weight for digit, weight in zip(number[:17], _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11] == number[17]


def mask_id_number(value: str | None) -> str:
    """110105********123X: the region code and the last four characters, never the birth date."""
    number = normalise_id_number(value)
    if not number:
        return ""
    if len(number) < 10:
        return "*" * len(number)
    return number[:6] + "*" * (len(number) - 10) + number[-4:]
