"""User accounts, roles, and the attempt counters that throttle guessing and sign-ups."""

from __future__ import annotations

import secrets
from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, String, true
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from portal.database import UTCDateTime, utcnow
from portal.extensions import db
from portal.places.models import grid_worker

ROLES = ("resident", "volunteer", "grid_worker", "secretary", "subdistrict_admin")
STAFF_ROLES = ("grid_worker", "secretary", "subdistrict_admin")


def new_session_token() -> str:
    return secrets.token_urlsafe(24)


class User(UserMixin, db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(40), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(20), default="resident")
    # A subdistrict admin has a subdistrict and no community; everyone else has a community.
    community_id: Mapped[int | None] = mapped_column(ForeignKey("community.id"), index=True)
    subdistrict_id: Mapped[int | None] = mapped_column(ForeignKey("subdistrict.id"), index=True)
    person_id: Mapped[int | None] = mapped_column(
        ForeignKey("person.id", ondelete="SET NULL"), unique=True
    )
    # Rotated on logout, password change, role change and disabling, so a replayed session or
    # remember-me cookie stops working at its next request.
    session_token: Mapped[str] = mapped_column(String(64), unique=True, default=new_session_token)
    active: Mapped[bool] = mapped_column(default=True)
    # A self-registered account is unverified until a grid worker or the secretary matches it
    # to a household; until then it sees only its own requests (portal/policy.py). Accounts
    # made by staff, the demo or the command line are verified.
    verified: Mapped[bool] = mapped_column(default=True, server_default=true())
    # The phone typed at self-registration, kept aside (never unique, never used to sign in)
    # until the account is matched: whether a number is on record is never revealed.
    signup_phone: Mapped[str | None] = mapped_column(String(11))
    # Secret for the personal iCalendar feed URL; reset by the user at will.
    calendar_token: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    person: Mapped[Person | None] = relationship(back_populates="user")  # noqa: F821
    community: Mapped[Community | None] = relationship()  # noqa: F821
    subdistrict: Mapped[Subdistrict | None] = relationship()  # noqa: F821
    grids: Mapped[list[Grid]] = relationship(  # noqa: F821
        secondary=grid_worker, back_populates="workers", order_by="Grid.name"
    )

    __table_args__ = (
        CheckConstraint(
            "role IN ('resident', 'volunteer', 'grid_worker', 'secretary', 'subdistrict_admin')",
            name="role",
        ),
        CheckConstraint(
            "(role = 'subdistrict_admin' AND subdistrict_id IS NOT NULL)"
            " OR (role <> 'subdistrict_admin' AND community_id IS NOT NULL)",
            name="scope",
        ),
    )

    def get_id(self) -> str:
        return self.session_token

    @property
    def is_active(self) -> bool:
        return self.active

    def set_password(self, password: str) -> None:
        """Hash with scrypt. Every way of setting a password passes here, so the rules hold for
        all of them: DomainError({"password": reason}) for a short or common password, or one
        equal to the username or phone."""
        from portal.auth.passwords import ensure_acceptable

        phone = self.person.phone if self.person is not None else None
        ensure_acceptable(password, username=self.username, phone=phone)
        self.password_hash = generate_password_hash(password, method="scrypt")

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    def rotate_session_token(self) -> None:
        self.session_token = new_session_token()

    @property
    def display_name(self) -> str:
        return self.person.name if self.person else self.username

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES


class Throttle(db.Model):
    """A counter of attempts under one key (an account, an account from an address or a known
    device, an address): how many counted, the last one, and the moment before which the next
    is refused. Only ``portal.auth.throttle.count_attempt`` writes it, by one atomic upsert.
    Times are Unix seconds, so that the arithmetic is the same SQL on every engine."""

    key: Mapped[str] = mapped_column(String(160), primary_key=True)
    attempts: Mapped[int]
    last_at: Mapped[int] = mapped_column(BigInteger, index=True)
    not_before: Mapped[int] = mapped_column(BigInteger)
