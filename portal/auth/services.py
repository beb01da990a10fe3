"""Sign-in, throttling, account creation and password changes. Services flush, never commit.

Throttling counts attempts in ``throttle`` rows (portal/auth/throttle.py), so every gunicorn
worker sees the same counts, and keys them on the account (its id when the name typed resolves
to one), never on the spelling typed. The address is ``request.remote_addr``, which holds
X-Forwarded-For only when TRUSTED_PROXIES is configured (ProxyFix).

Nothing an anonymous visitor sees tells whether a phone number or username is on record: the
same message and the same password hash run for every account name, known or not, and
self-registration never says that a phone is taken (see ``register_account``)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from functools import cache

from flask import current_app
from flask_babel import gettext as _
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash

from portal.auth import throttle
from portal.auth.models import User
from portal.auth.passwords import ensure_acceptable
from portal.core.errors import DomainError
from portal.core.validators import PHONE_RE, mask_phone, normalise_identifier, normalise_phone
from portal.database import utcnow
from portal.extensions import db
from portal.people.models import Person
from portal.trust import audit

DEVICE_COOKIE = "tongxin_device"


@dataclass(frozen=True)
class KnownDevice:
    """What a valid known-device cookie says: the account that signed in there, a random name
    for the device, and a fingerprint of the password it signed in with."""

    user_id: int
    nonce: str
    fingerprint: str


def _device_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="known-device")


def _fingerprint(user: User) -> str:
    # A new password makes a new hash (a new salt): every device cookie of the account expires.
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:24]


def device_token(user: User, device: KnownDevice | None = None) -> str:
    """The signed known-device cookie for ``user`` (keeping the device's name if it had one)."""
    nonce = device.nonce if device is not None else secrets.token_urlsafe(12)
    return _device_serializer().dumps({"u": user.id, "n": nonce, "p": _fingerprint(user)})


def read_device(token: str | None) -> KnownDevice | None:
    """The device named by a known-device cookie, or None (missing, forged or too old)."""
    if not token:
        return None
    max_age = current_app.config["KNOWN_DEVICE_DAYS"] * 24 * 60 * 60
    try:
        data = _device_serializer().loads(token, max_age=max_age)
    except BadSignature:
        return None
    if not isinstance(data, dict):
        return None
    user_id, nonce, fingerprint = data.get("u"), data.get("n"), data.get("p")
    if not (isinstance(user_id, int) and isinstance(nonce, str) and isinstance(fingerprint, str)):
        return None
    return KnownDevice(user_id, nonce[:24], fingerprint)


def _device_of(user: User | None, device: KnownDevice | None) -> KnownDevice | None:
    """``device`` if it is a known device of ``user`` with the current password, else None."""
    if user is None or device is None or device.user_id != user.id:
        return None
    return device if hmac.compare_digest(device.fingerprint, _fingerprint(user)) else None


@cache
def _decoy_hash() -> str:
    """A hash of a random password, checked when the name typed matches no account, so that an
    unknown name takes as long as a known one."""
    return generate_password_hash(secrets.token_urlsafe(16), method="scrypt")


def _tried_name(identifier: str) -> str:
    """What the audit log keeps of an account name that matched no account: a phone number
    masked, anything else cut to its first two characters (people type their password into
    the account field by mistake; it must not land in a log)."""
    phone = normalise_phone(identifier)
    if PHONE_RE.match(phone):
        return mask_phone(phone)
    tried = identifier.strip()
    return tried[:2] + "*" * min(max(len(tried) - 2, 0), 8)


def find_account(identifier: str) -> User | None:
    """The account a sign-in name stands for: its username (any case, full-width letters too)
    or its person's phone number however spelt."""
    name = normalise_identifier(identifier)
    if not name:
        return None
    return db.session.scalar(
        select(User)
        .outerjoin(Person, User.person_id == Person.id)
        .where(or_(func.lower(User.username) == name, Person.phone == name))
        .order_by(User.id)
        .limit(1)
    )


def _sign_in_delay(failures: int) -> int:
    """Seconds the attempt after ``failures`` counted ones must wait, account-wide."""
    cfg = current_app.config
    over = failures - cfg["LOGIN_DELAY_AFTER_FAILURES"]
    if over < 0:
        return 0
    return min(cfg["LOGIN_DELAY_BASE_SECONDS"] * 2 ** min(over, 30), cfg["LOGIN_DELAY_MAX_SECONDS"])


class _Refused(Exception):
    def __init__(self, seconds: int):
        super().__init__(seconds)
        self.seconds = seconds


def _count_sign_in(subject: str, address: str, device: KnownDevice | None) -> str:
    """Count this attempt before the password is checked, atomically (see throttle.py); the
    key of the account-and-place counter. Raises _Refused, with nothing counted, when

    - 5 attempts on this account already failed from this address (or this known device),
    - this address already failed on 10 other accounts (a new account from it is refused),
    - the account's growing delay is not over (a known device does not wait)."""
    cfg = current_app.config
    window = cfg["LOGIN_FAILURE_WINDOW_SECONDS"]
    place = f"d:{device.nonce}" if device is not None else f"a:{address}"
    pair = f"p:{subject}|{place}"
    with db.session.begin_nested():  # a refusal takes back what this attempt counted
        attempts = throttle.count_attempt(
            pair, window=window, limit=cfg["LOGIN_FAILURES_PER_ACCOUNT"]
        )
        if attempts is None:
            raise _Refused(throttle.lock_ends_in(pair, window))
        if device is None:
            if attempts == 1:  # an account not tried from here before: count it for the address
                key, span = f"n:{address}", cfg["LOGIN_ADDRESS_WINDOW_SECONDS"]
                limit = cfg["LOGIN_ACCOUNTS_PER_ADDRESS"]
                if throttle.count_attempt(key, window=span, limit=limit) is None:
                    raise _Refused(throttle.lock_ends_in(key, span))
            key = f"a:{subject}"
            if (
                throttle.count_attempt(
                    key, window=cfg["LOGIN_DELAY_WINDOW_SECONDS"], delay=_sign_in_delay
                )
                is None
            ):
                raise _Refused(throttle.wait_ends_in(key))
    return pair


def _throttled(seconds: int) -> str:
    if seconds < 60:
        return _("Too many failed sign-ins. Try again in %(n)d seconds.", n=seconds)
    return _("Too many failed sign-ins. Try again in %(n)d minutes.", n=-(-seconds // 60))


def authenticate(
    identifier: str, password: str, address: str, device: KnownDevice | None = None
) -> User:
    """Find the user by username or phone, count the attempt, then check the password.

    Raises DomainError when throttled or when the pair is wrong (one message for a wrong
    user and a wrong password, and the password hash runs for both). A failure is recorded
    (its counters and an audit row, never the password); the caller commits it. ``device`` is
    the known-device cookie sent, if any: on its own account it is exempt from the account's
    delay and from the limits of the address.
    """
    name = normalise_identifier(identifier)
    user = find_account(identifier)
    device = _device_of(user, device)
    subject = f"u{user.id}" if user is not None else f"t:{name[:60]}"
    try:
        pair = _count_sign_in(subject, address, device)
    except _Refused as refused:
        audit.record(
            "sign_in_failed", "refused", actor_name=_tried_name(identifier), detail="throttled"
        )
        raise DomainError({"_": _throttled(refused.seconds)}) from None
    matches = check_password_hash(user.password_hash if user else _decoy_hash(), password)
    if user is None or not matches or not user.active:
        known = user is not None
        audit.record(
            "sign_in_failed",
            "failed",
            actor_user_id=user.id if known else None,
            actor_name=user.username if known else _tried_name(identifier),
            community_id=user.community_id if known else None,
            detail="disabled" if known and not user.active else "",
        )
        db.session.flush()
        raise DomainError({"_": _("Wrong username/phone or password.")})
    throttle.forget(pair, f"a:{subject}")
    if device is None:
        throttle.uncount(f"n:{address}")  # this account no longer counts against the address
    throttle.purge(current_app.config["LOGIN_DELAY_WINDOW_SECONDS"])
    user.last_login_at = utcnow()
    audit.record(
        "sign_in", actor_user_id=user.id, actor_name=user.username, community_id=user.community_id
    )
    return user


def username_taken(username: str) -> bool:
    return (
        db.session.scalar(select(User.id).where(func.lower(User.username) == username.lower()))
        is not None
    )


def phone_taken(phone: str, exclude_person_id: int | None = None) -> bool:
    query = select(Person.id).where(Person.phone == phone)
    if exclude_person_id is not None:
        query = query.where(Person.id != exclude_person_id)
    return db.session.scalar(query) is not None


def register_account(
    *, community_id: int, name: str, phone: str, username: str, password: str, address: str
) -> User:
    """Create a resident's person record and an unverified account (a grid worker or the
    secretary matches it to a household later, portal/people/services.verify_account).

    Whether the phone is on record is never said, to anyone: it waits on the account
    (``signup_phone``) for every registration alike, and joins the person record only when
    staff match the account. A username must be unique, so a taken one is said, as on most
    sites; those answers are limited per address, like the accounts created.
    DomainError on a taken username, too many attempts from this address, or a password that
    breaks the rules. Counted attempts stay when the caller commits after an error.
    """
    cfg = current_app.config
    window = cfg["REGISTRATION_WINDOW_SECONDS"]
    username = username.strip()
    ensure_acceptable(password, username=username, phone=phone)
    if username_taken(username):
        limit = cfg["SIGNUP_USERNAME_TRIES_PER_ADDRESS"]
        if throttle.count_attempt(f"u:{address}", window=window, limit=limit) is None:
            raise DomainError({"_": _too_many_signups()})
        raise DomainError({"username": _("This username is taken.")})
    limit = cfg["REGISTRATIONS_PER_ADDRESS"]
    if throttle.count_attempt(f"r:{address}", window=window, limit=limit) is None:
        raise DomainError({"_": _too_many_signups()})
    person = Person(community_id=community_id, name=name.strip(), phone=None)
    user = User(
        username=username,
        role="resident",
        community_id=community_id,
        person=person,
        verified=False,
        signup_phone=phone,
    )
    user.set_password(password)
    try:
        with db.session.begin_nested():
            db.session.add_all([person, user])
            db.session.flush()
    except IntegrityError as exc:  # the same username registered a moment ago
        raise DomainError({"username": _("This username is taken.")}) from exc
    return user


def _too_many_signups() -> str:
    return _(
        "Too many sign-ups from this network in the last hour. Try again later, or ask your"
        " community office to register you."
    )


def change_password(user: User, current: str, new: str) -> None:
    """Check the current password, set the new one, end every session (the caller signs the
    current one in again) and write an audit row. DomainError on a wrong current password or a
    new one that breaks the rules."""
    if not user.check_password(current):
        raise DomainError({"current": _("The current password is wrong.")})
    if new == current:
        raise DomainError({"password": _("Choose a password different from the current one.")})
    user.set_password(new)
    user.rotate_session_token()
    audit.record("password_changed", target_type="user", target_id=user.id)
    db.session.flush()


def sign_out(user: User) -> None:
    """End every session of ``user`` (a replayed cookie is refused) and write an audit row."""
    audit.record("sign_out", target_type="user", target_id=user.id)
    user.rotate_session_token()
    db.session.flush()
