"""Sign-in, throttling, account creation and password changes. Services flush, never commit.

Throttling counts LoginFailure rows in the database, so every gunicorn worker (and every server
sharing the database) sees the same counts; the address is ``request.remote_addr``, which holds
X-Forwarded-For only when TRUSTED_PROXIES is configured (ProxyFix)."""

from __future__ import annotations

from datetime import timedelta

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import delete, func, or_, select

from portal.auth.models import LoginFailure, User
from portal.core.errors import DomainError
from portal.core.validators import PHONE_RE, mask_phone, normalise_phone
from portal.database import utcnow
from portal.extensions import db
from portal.people.models import Person
from portal.trust import audit


def _recent_failures(column, value: str) -> int:
    window = timedelta(seconds=current_app.config["LOGIN_FAILURE_WINDOW_SECONDS"])
    return db.session.scalar(
        select(func.count(LoginFailure.id)).where(
            column == value, LoginFailure.at > utcnow() - window
        )
    )


def is_throttled(account: str, address: str) -> bool:
    """True when this account or this address failed too often within the window."""
    cfg = current_app.config
    return (
        _recent_failures(LoginFailure.account, account) >= cfg["LOGIN_FAILURES_PER_ACCOUNT"]
        or _recent_failures(LoginFailure.address, address) >= cfg["LOGIN_FAILURES_PER_ADDRESS"]
    )


def _tried_name(identifier: str) -> str:
    """What the audit log keeps of an account name that matched no account: a phone number
    masked, anything else cut to its first two characters (people type their password into
    the account field by mistake; it must not land in a log)."""
    phone = normalise_phone(identifier)
    if PHONE_RE.match(phone):
        return mask_phone(phone)
    tried = identifier.strip()
    return tried[:2] + "*" * min(max(len(tried) - 2, 0), 8)


def authenticate(identifier: str, password: str, address: str) -> User:
    """Find the user by username or phone and check the password.

    Raises DomainError when throttled or when the pair is wrong (one message for both cases
    of wrong user and wrong password). A failure is recorded (a LoginFailure row and an audit
    row, never the password); the caller commits it.
    """
    account = identifier.strip()[:40].lower()
    if is_throttled(account, address):
        audit.record(
            "sign_in_failed", "refused", actor_name=_tried_name(identifier), detail="throttled"
        )
        minutes = current_app.config["LOGIN_FAILURE_WINDOW_SECONDS"] // 60
        raise DomainError(
            {"_": _("Too many failed sign-ins. Try again in %(n)d minutes.", n=minutes)}
        )
    phone = normalise_phone(identifier)
    user = db.session.scalar(
        select(User)
        .outerjoin(Person, User.person_id == Person.id)
        .where(or_(func.lower(User.username) == account, Person.phone == phone))
    )
    if user is None or not user.check_password(password) or not user.active:
        db.session.add(LoginFailure(account=account, address=address))
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
    db.session.execute(delete(LoginFailure).where(LoginFailure.account == account))
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
    *, community_id: int, name: str, phone: str, username: str, password: str
) -> User:
    """Create a resident's person record and account.

    DomainError on a taken username/phone or a password that breaks the rules."""
    errors: dict[str, str] = {}
    if username_taken(username):
        errors["username"] = _("This username is taken.")
    if phone_taken(phone):
        errors["phone"] = _("This phone number is already registered.")
    if errors:
        raise DomainError(errors)
    person = Person(community_id=community_id, name=name.strip(), phone=phone)
    user = User(username=username, role="resident", community_id=community_id, person=person)
    user.set_password(password)
    db.session.add_all([person, user])
    db.session.flush()
    return user


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
