"""Places: subdistrict → community → grid / estate → building → entrance → household."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Column, ForeignKey, String, Table, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.database import UTCDateTime, utcnow
from portal.extensions import db

ESTATE_KINDS = ("ordinary", "resettlement")

grid_worker = Table(
    "grid_worker",
    db.metadata,
    Column("grid_id", ForeignKey("grid.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", ForeignKey("user.id", ondelete="CASCADE"), primary_key=True, index=True),
)


class Subdistrict(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)

    communities: Mapped[list[Community]] = relationship(
        back_populates="subdistrict", order_by="Community.name"
    )


class Community(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    subdistrict_id: Mapped[int] = mapped_column(ForeignKey("subdistrict.id"), index=True)
    name: Mapped[str] = mapped_column(String(80))
    address: Mapped[str] = mapped_column(String(200), default="")
    # Last red-armband number issued; bumped by a conditional UPDATE so numbers never repeat.
    armband_seq: Mapped[int] = mapped_column(default=0)

    subdistrict: Mapped[Subdistrict] = relationship(back_populates="communities")
    __table_args__ = (UniqueConstraint("subdistrict_id", "name"),)


class Grid(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id"), index=True)
    name: Mapped[str] = mapped_column(String(80))
    description: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    community: Mapped[Community] = relationship()
    workers: Mapped[list[User]] = relationship(  # noqa: F821
        secondary=grid_worker, back_populates="grids", order_by="User.username"
    )
    __table_args__ = (UniqueConstraint("community_id", "name"),)


class Estate(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id"), index=True)
    name: Mapped[str] = mapped_column(String(80))
    kind: Mapped[str] = mapped_column(String(20), default="ordinary")
    address: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    community: Mapped[Community] = relationship()
    buildings: Mapped[list[Building]] = relationship(
        back_populates="estate", order_by="Building.name"
    )
    __table_args__ = (
        UniqueConstraint("community_id", "name"),
        CheckConstraint("kind IN ('ordinary', 'resettlement')", name="kind"),
    )


class Building(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id"), index=True)
    estate_id: Mapped[int] = mapped_column(ForeignKey("estate.id"), index=True)
    grid_id: Mapped[int] = mapped_column(ForeignKey("grid.id"), index=True)
    name: Mapped[str] = mapped_column(String(40))
    floors: Mapped[int | None]
    captain_id: Mapped[int | None] = mapped_column(
        ForeignKey("person.id", ondelete="SET NULL", use_alter=True)
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    estate: Mapped[Estate] = relationship(back_populates="buildings")
    grid: Mapped[Grid] = relationship()
    captain: Mapped[Person | None] = relationship(foreign_keys=[captain_id])  # noqa: F821
    entrances: Mapped[list[Entrance]] = relationship(
        back_populates="building", order_by="Entrance.name"
    )
    __table_args__ = (UniqueConstraint("estate_id", "name"),)


class Entrance(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id"), index=True)
    building_id: Mapped[int] = mapped_column(ForeignKey("building.id"), index=True)
    name: Mapped[str] = mapped_column(String(40))

    building: Mapped[Building] = relationship(back_populates="entrances")
    __table_args__ = (UniqueConstraint("building_id", "name"),)


class Household(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id"), index=True)
    building_id: Mapped[int] = mapped_column(ForeignKey("building.id"), index=True)
    entrance_id: Mapped[int | None] = mapped_column(ForeignKey("entrance.id"), index=True)
    room: Mapped[str] = mapped_column(String(20))
    notes: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    building: Mapped[Building] = relationship()
    entrance: Mapped[Entrance | None] = relationship()
    residents: Mapped[list[Person]] = relationship(  # noqa: F821
        back_populates="household", order_by="Person.id"
    )
    __table_args__ = (UniqueConstraint("building_id", "room"),)
