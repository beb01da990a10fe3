"""People: residents registered to households, with care flags that need consent."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.database import UTCDateTime, utcnow
from portal.extensions import db

SEXES = ("male", "female")
CARE_FLAGS = ("lives_alone", "empty_nest", "disabled")


class Person(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id"), index=True)
    household_id: Mapped[int | None] = mapped_column(
        ForeignKey("household.id", ondelete="SET NULL"), index=True
    )
    name: Mapped[str] = mapped_column(String(40), index=True)
    phone: Mapped[str | None] = mapped_column(String(11), unique=True)
    sex: Mapped[str | None] = mapped_column(String(6))
    birth_year: Mapped[int | None]
    # Care flags are sensitive: they are kept only while care_consent_at is set.
    lives_alone: Mapped[bool] = mapped_column(default=False)
    empty_nest: Mapped[bool] = mapped_column(default=False)
    disabled: Mapped[bool] = mapped_column(default=False)
    care_consent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A resident under 14 is registered with a guardian (another person of the community).
    guardian_person_id: Mapped[int | None] = mapped_column(
        ForeignKey("person.id", ondelete="SET NULL"), index=True
    )
    # Erased on request (PIPL): personal fields anonymised, ledger totals kept.
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    household: Mapped[Household | None] = relationship(back_populates="residents")  # noqa: F821
    user: Mapped[User | None] = relationship(back_populates="person")  # noqa: F821
    volunteer: Mapped[Volunteer | None] = relationship(back_populates="person")  # noqa: F821

    __table_args__ = (
        CheckConstraint("sex IS NULL OR sex IN ('male', 'female')", name="sex"),
        CheckConstraint(
            "care_consent_at IS NOT NULL OR NOT (lives_alone OR empty_nest OR disabled)",
            name="care_needs_consent",
        ),
    )

    @property
    def care_flags(self) -> list[str]:
        return [flag for flag in CARE_FLAGS if getattr(self, flag)]
