"""Field validators shared by every domain's forms."""

from __future__ import annotations

import re
import unicodedata
from datetime import date

from flask_babel import lazy_gettext as _l
from wtforms.validators import ValidationError

from portal.core.timeutil import latest_schedulable

PHONE_RE = re.compile(r"^1[3-9]\d{9}$")

COMMON_PASSWORDS = frozenset(
    {
        "12345678", "123456789", "1234567890", "87654321", "11111111", "00000000",
        "88888888", "66666666", "password", "password1", "qwertyui", "qwerty123",
        "abc12345", "abcd1234", "iloveyou", "woaini1314", "11223344", "12341234",
        "a1234567", "aa123456", "1qaz2wsx", "zxcvbnm1", "asdfghjk", "tongxin123",
    }
)  # fmt: skip


# Full-width digits, "＋" and "－" as a Chinese input method types them, to ASCII.
_FULLWIDTH = str.maketrans("０１２３４５６７８９＋－", "0123456789+-")
_PHONE_SEPARATORS = re.compile(r"[\s\-\u2010-\u2015\u00b7().（）]")


def normalise_phone(value: str | None) -> str:
    """One spelling of a mainland mobile number: full-width digits made ASCII, spaces, dashes
    and brackets dropped, a leading +86 / 0086 / 86 (before 11 digits) removed. Anything that
    is not a phone comes back with only those changes."""
    text = (value or "").translate(_FULLWIDTH)
    text = _PHONE_SEPARATORS.sub("", text)
    for prefix in ("+86", "0086"):
        if text.startswith(prefix):
            text = text[len(prefix) :]
            break
    else:
        if len(text) == 13 and text.startswith("86"):
            text = text[2:]
    return text


def normalise_identifier(value: str | None) -> str:
    """The one spelling of an account name typed to sign in: a phone number as normalise_phone
    gives it, anything else NFKC-folded (full-width letters and digits made ASCII), trimmed and
    lower-cased. Throttling keys on this, so no other spelling gets fresh guesses."""
    text = unicodedata.normalize("NFKC", value or "").strip()
    phone = normalise_phone(text)
    if PHONE_RE.match(phone):
        return phone
    return text.lower()


# C0 controls other than tab, newline and carriage return; DEL; the C1 block.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# Bidirectional embeddings, overrides and isolates: they reorder what a reader sees.
_BIDI = re.compile(r"[\u202a-\u202e\u2066-\u2069]")
# Characters that show nothing: zero-width ones, marks, fillers, the BOM, and spaces.
_INVISIBLE = re.compile(
    r"[\s\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b-\u200f\u2028-\u202f"
    r"\u205f-\u2064\u206a-\u206f\u3000\u3164\ufe00-\ufe0f\ufeff\uffa0]"
)


def text_problem(value: str | None) -> str | None:
    """Why free text cannot be kept, translated, or None when it can: a control character
    (other than tab and newline), a bidirectional override, or text that holds only invisible
    characters. Empty text is not a problem here (a required field says so itself)."""
    if not value:
        return None
    if _CONTROL.search(value):
        return str(_l("Remove the control characters (they cannot be shown or saved)."))
    if _BIDI.search(value):
        return str(_l("Remove the right-to-left override characters."))
    if not _INVISIBLE.sub("", value):
        return str(_l("Type some visible text, not only spaces or invisible characters."))
    return None


def too_far_ahead(day: date | None, today: date) -> str | None:
    """The message for a scheduled date after latest_schedulable(today), or None."""
    if day is None or day <= latest_schedulable(today):
        return None
    return str(
        _l(
            "Choose a date within two years from today (%(last)s at the latest).",
            last=latest_schedulable(today).isoformat(),
        )
    )


# What people type as space (str.strip() would also take \x1c-\x1f and \x85 for space).
_SPACES = " \t\r\n\u3000"


def plain_text(form, field) -> None:
    """WTForms validator: the field's text passes text_problem(). Text of ordinary spaces only
    counts as empty, as the services strip it: the field's own rule (required or not) decides."""
    if not isinstance(field.data, str) or not field.data.strip(_SPACES):
        return
    problem = text_problem(field.data)
    if problem:
        raise ValidationError(problem)


def phone_number(form, field) -> None:
    """Mainland mobile number: 1[3-9] followed by nine digits (spaces, dashes, +86 and
    full-width digits ignored)."""
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
