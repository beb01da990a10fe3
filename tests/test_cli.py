"""`flask seed-demo`: the demo data the README promises, and that its accounts really work."""

from __future__ import annotations

import json
import os
import re
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from contextlib import closing
from pathlib import Path

import pytest
from sqlalchemy import func, or_, select

from portal.auth.models import User
from portal.extensions import db
from portal.people.models import Person
from portal.places.models import Building, Community, Estate, Grid, Household, Subdistrict
from portal.volunteers.models import FIVE_ELDER_KINDS, VOLUNTEER_TYPES, Volunteer, VolunteerType
from tests.conftest import _empty_tables, seed_demo

ROOT = Path(__file__).resolve().parent.parent
DEMO_PASSWORD = "tongxin-demo"
PHONE = re.compile(r"^1[3-9]\d{9}$")


def _count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def _user(username: str) -> User:
    return db.session.scalars(select(User).where(User.username == username)).one()


def _communities() -> tuple[Community, Community]:
    first, second = db.session.scalars(select(Community).order_by(Community.id)).all()
    return first, second


def _volunteers(**filters) -> list[Volunteer]:
    return list(db.session.scalars(select(Volunteer).filter_by(**filters)))


def _row_counts() -> dict[str, int]:
    return {
        table.name: db.session.scalar(select(func.count()).select_from(table))
        for table in db.metadata.sorted_tables
    }


@pytest.fixture
def seeded(runner):
    output = seed_demo(runner)
    assert "tongxin-demo" in output
    return output


def test_seed_demo_places(seeded):
    assert [s.name for s in db.session.scalars(select(Subdistrict))] == ["汉滨区新城街道"]
    first, second = _communities()
    assert first.subdistrict_id == second.subdistrict_id
    for community in (first, second):
        grids = db.session.scalars(select(Grid).where(Grid.community_id == community.id)).all()
        assert len(grids) == 3
        estates = db.session.scalars(select(Estate).where(Estate.community_id == community.id))
        assert "resettlement" in {estate.kind for estate in estates}
    buildings = db.session.scalars(select(Building)).all()
    for building in buildings:
        # A building's grid is one of its own community's grids.
        assert building.grid.community_id == building.community_id == building.estate.community_id
        assert len(building.entrances) == 2
    captained = [b for b in buildings if b.captain is not None]
    assert 4 <= len(captained) < len(buildings)
    for building in captained:
        assert building.captain.household.building_id == building.id
        assert building.captain.volunteer.status == "approved"
        assert "building_captain" in building.captain.volunteer.types
    households = db.session.scalars(select(Household)).all()
    assert len(households) >= 60
    assert all(h.room and h.entrance.building_id == h.building_id for h in households)


def test_seed_demo_people(seeded):
    # Registered by the community (self-registered accounts waiting to be matched have
    # only a name so far).
    people = db.session.scalars(
        select(Person).outerjoin(User).where(or_(User.id.is_(None), User.verified.is_(True)))
    ).all()
    assert 180 <= len(people) <= 240
    assert all(p.household_id is not None and p.sex in ("male", "female") for p in people)
    assert all(1920 < p.birth_year < 2026 for p in people)
    phones = [p.phone for p in people if p.phone]
    assert len(phones) >= 150
    assert all(PHONE.match(phone) for phone in phones)
    assert len(set(phones)) == len(phones)
    for flag in ("lives_alone", "empty_nest", "disabled"):
        flagged = [p for p in people if getattr(p, flag)]
        assert flagged, flag
        assert all(p.care_consent_at is not None for p in flagged)
    assert all(p.care_consent_at is None for p in people if not p.care_flags)


def test_seed_demo_volunteers(seeded):
    first, second = _communities()
    statuses = Counter((v.community_id, v.status) for v in db.session.scalars(select(Volunteer)))
    assert statuses[(first.id, "pending")] >= 5
    assert statuses[(second.id, "pending")] >= 1
    assert statuses[(first.id, "rejected")] >= 1
    approved_types = set(
        db.session.scalars(
            select(VolunteerType.type).join(Volunteer).where(Volunteer.status == "approved")
        )
    )
    assert approved_types == set(VOLUNTEER_TYPES)
    for community in (first, second):
        kinds = {
            v.five_elder_kind
            for v in _volunteers(community_id=community.id, status="approved")
            if "five_elders" in v.types
        }
        assert kinds == set(FIVE_ELDER_KINDS)
    for volunteer in db.session.scalars(select(Volunteer)):
        assert volunteer.grid.community_id == volunteer.community_id
        assert volunteer.grid_id == volunteer.person.household.building.grid_id
        assert ("five_elders" in volunteer.types) == (volunteer.five_elder_kind is not None)
        if volunteer.status == "rejected":
            assert volunteer.rejection_reason and volunteer.decided_by.role == "secretary"
        if volunteer.status == "pending":
            assert volunteer.decided_at is None and volunteer.armband_no is None
            assert volunteer.party_reported_on is None
        if "party_member" in volunteer.types:
            assert volunteer.employer and volunteer.party_branch
            assert (volunteer.party_reported_on is not None) == (volunteer.status == "approved")


def test_seed_demo_armband_numbers(seeded):
    numbered = _volunteers(status="approved")
    numbers = [v.armband_no for v in numbered if v.armband_no]
    assert len(numbers) == len(set(numbers)) >= 31
    for volunteer in numbered:
        assert (volunteer.armband_no is not None) == ("red_armband" in volunteer.types)
    others = db.session.scalars(select(Volunteer).where(Volunteer.status != "approved")).all()
    assert others and all(v.armband_no is None for v in others)
    for community in _communities():
        issued = [
            int(v.armband_no.rsplit("-", 1)[1])
            for v in numbered
            if v.community_id == community.id and v.armband_no
        ]
        # armband_seq is the last number issued, so the next approval continues the series.
        assert sorted(issued) == list(range(1, community.armband_seq + 1))


def test_seed_demo_accounts(seeded):
    first, second = _communities()
    admin = _user("admin")
    assert admin.role == "subdistrict_admin"
    assert admin.subdistrict_id == first.subdistrict_id and admin.community_id is None
    assert _user("secretary").role == "secretary"
    assert _user("secretary").community_id == first.id
    assert _user("secretary2").role == "secretary"
    assert _user("secretary2").community_id == second.id
    gridworker = _user("gridworker")
    assert gridworker.role == "grid_worker" and gridworker.community_id == first.id
    first_grids = db.session.scalars(
        select(Grid).where(Grid.community_id == first.id).order_by(Grid.id)
    ).all()
    assert [g.id for g in gridworker.grids] == [g.id for g in first_grids[:2]]

    def approved_as(username: str, volunteer_type: str) -> Volunteer:
        user = _user(username)
        assert user.role == "volunteer" and user.community_id == first.id
        volunteer = user.person.volunteer
        assert volunteer.status == "approved" and volunteer_type in volunteer.types
        return volunteer

    assert approved_as("volunteer", "red_armband").armband_no
    party = approved_as("partymember", "party_member")
    assert party.employer and party.party_branch and party.grid_id and party.party_reported_on
    assert approved_as("elder", "five_elders").five_elder_kind in ("veteran", "teacher")
    for n in range(1, 31):
        assert approved_as(f"volunteer{n:02d}", "red_armband").armband_no

    resident = _user("resident")
    assert resident.role == "resident" and resident.community_id == first.id
    assert resident.person.household is not None and resident.person.volunteer is None

    waiting = db.session.scalars(select(User).where(User.verified.is_(False))).all()
    assert sorted(u.username for u in waiting) == ["newcomer1", "newcomer2"]
    assert all(u.person.household is None and u.person.phone is None for u in waiting)
    users = select(User).where(User.role != "subdistrict_admin", User.verified.is_(True))
    for user in db.session.scalars(users):
        assert user.person is not None and user.person.household is not None, user.username
        assert user.person.community_id == user.community_id
        volunteer = user.person.volunteer
        if user.role in ("resident", "volunteer"):
            is_approved = volunteer is not None and volunteer.status == "approved"
            assert (user.role == "volunteer") == is_approved, user.username
        else:
            assert volunteer is None


@pytest.mark.parametrize("username", ["admin", "secretary", "volunteer05", "gridworker"])
def test_demo_accounts_sign_in(seeded, client, username):
    response = client.post("/login", data={"identifier": username, "password": DEMO_PASSWORD})
    assert response.status_code == 303
    assert response.headers["Location"] == "/"
    assert client.get("/").status_code == 200
    wrong = client.application.test_client()
    response = wrong.post("/login", data={"identifier": username, "password": "tongxin-dem0"})
    assert response.status_code == 200  # the form again, with an error


def _pending_on_home(client) -> int:
    page = client.get("/").get_data(as_text=True)
    match = re.search(r'<span class="stat">(\d+)</span>\s*Registrations to approve', page)
    assert match, "no pending count on the home page"
    return int(match.group(1))


def test_secretary_sees_pending_registrations(seeded, client, auth):
    client.post("/language", data={"lang": "en"})
    auth.login("secretary", DEMO_PASSWORD)
    first, _second = _communities()
    pending = len(_volunteers(community_id=first.id, status="pending"))
    assert _pending_on_home(client) == pending == 10  # as the README's account table says
    auth.logout()
    # The grid worker sees only the applicants living in their two grids.
    auth.login("gridworker", DEMO_PASSWORD)
    grids = [g.id for g in _user("gridworker").grids]
    in_grids = [v for v in _volunteers(status="pending") if v.grid_id in grids]
    assert _pending_on_home(client) == len(in_grids) == 6


def test_seed_demo_twice_adds_nothing(seeded, runner):
    before = _row_counts()
    result = runner.invoke(args=["seed-demo"])
    assert result.exit_code == 0
    assert "already holds data" in result.output
    db.session.expire_all()
    assert _row_counts() == before


def test_seed_demo_is_deterministic(seeded, runner):
    def snapshot():
        people = db.session.scalars(select(Person).order_by(Person.id))
        return [
            (p.name, p.phone, p.sex, p.birth_year, p.household.room if p.household else None)
            for p in people
        ]

    first = snapshot()
    db.session.remove()
    _empty_tables()
    assert _count(Person) == 0
    assert runner.invoke(args=["seed-demo"]).exit_code == 0
    db.session.expire_all()
    assert snapshot() == first


def test_start_migrates_seeds_and_serves(tmp_path):
    """The README's first command ends in `flask --app wsgi start`: it must really serve."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    database = tmp_path / "start.db"
    env = {k: v for k, v in os.environ.items() if k not in ("FLASK_ENV", "FLASK_APP")}
    env["DATABASE_URL"] = f"sqlite:///{database}"
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("PUBLIC_URL", None)
    command = [sys.executable, "-m", "flask", "--app", "wsgi", "start", "--port", str(port)]
    server = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 120  # migrate + seed under a loaded CI machine
        health = None
        while health is None and time.monotonic() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    health = (r.status, json.load(r))
            except OSError:
                time.sleep(0.2)
        assert server.poll() is None, server.stdout.read().decode()
        assert health == (200, {"status": "ok"})
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=5) as r:
            assert r.status == 200
    finally:
        server.terminate()
        server.wait(timeout=10)
    # Absolute links (QR codes, calendar feeds) point where this server answers.
    assert f"(links: http://127.0.0.1:{port})" in server.stdout.read().decode()
    with closing(sqlite3.connect(database)) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        usernames = {row[0] for row in connection.execute("SELECT username FROM user")}
    assert {"admin", "secretary", "volunteer30"} <= usernames
