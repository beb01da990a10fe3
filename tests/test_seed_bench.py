"""The synthetic city (``flask seed-bench``): its shape, its invariants, that it is the same on
every build, that it refuses a non-empty database, and that the app works on it."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select, text

from portal.auth.models import User
from portal.core.timeutil import now_utc
from portal.extensions import db
from portal.help.models import Category, HelpRequest
from portal.patrols.models import Shift, Signup
from portal.points.models import PointsAccount
from portal.rewards.models import Reward
from portal.seed_bench import BENCH_PASSWORD, NotEmpty, digest, seed_bench
from portal.volunteers.models import Volunteer
from tests.conftest import _empty_tables

SMALL = {
    "subdistrict": 1,
    "community": 1,
    "grid": 15,
    "estate": 10,
    "building": 200,
    "entrance": 400,
    "household": 3_500,
    "person": 10_000,
    "volunteer": 650,
    "volunteer_type": 650,
    "shift": 1_500,
    "help_request": 2_000,
    "category": 57,
    "reward": 8,
    # 1 admin + secretary + grid worker + 200 bench volunteers
    "user": 203,
    "grid_worker": 15,
}
FIXED_DAY = date(2026, 11, 30)


def _count(table: str) -> int:
    return db.session.scalar(text(f'SELECT count(*) FROM "{table}"'))


def _count_where(table: str, condition: str) -> int:
    return db.session.scalar(text(f'SELECT count(*) FROM "{table}" WHERE {condition}'))


def _one(sql: str) -> list:
    return list(db.session.execute(text(sql)))


def test_small_city_shape_invariants_and_the_app_on_it(app, client):
    """One build (they take seconds): the shape, the invariants, then the app serving it."""
    counts = seed_bench("small")
    db.session.commit()
    for table, expected in SMALL.items():
        assert counts[table] == expected == _count(table), table
    # "About" figures of the shape, at 1/100.
    assert 12_000 <= _count("signup") <= 16_000
    assert 27_000 <= _count("points_ledger") <= 33_000  # about 3,000,000 at city scale
    assert _count("request_event") >= 2 * 2_000
    # Open311: public-space categories public, a third of their requests ticked, nothing else.
    assert _one("SELECT count(*) FROM category WHERE public AND code LIKE 'help.%'") == [(0,)]
    assert _one("SELECT count(*) FROM category WHERE public")[0][0] >= 12
    assert _one("""
        SELECT count(*) FROM help_request r JOIN category c ON c.id = r.category_id
        WHERE r.show_publicly AND NOT c.public
    """) == [(0,)]
    assert _one("SELECT count(*) FROM help_request WHERE show_publicly")[0][0] > 0
    assert _one("SELECT type, count(*) FROM volunteer_type GROUP BY type ORDER BY type") == [
        ("five_elders", 200),
        ("party_member", 150),
        ("red_armband", 300),
    ]

    # Cached totals equal the ledger's sums, person by person.
    assert not _one("""
        SELECT a.person_id FROM points_account a
        LEFT JOIN (SELECT person_id, sum(points) AS p, sum(hours) AS h,
                          sum(CASE WHEN ranked THEN points ELSE 0 END) AS e
                   FROM points_ledger GROUP BY person_id) l ON l.person_id = a.person_id
        WHERE l.p IS NULL OR a.balance <> l.p OR a.earned <> l.e OR a.hours <> l.h
    """)
    assert _count("points_account") == db.session.scalar(
        text("SELECT count(DISTINCT person_id) FROM points_ledger")
    )
    assert not _one("SELECT person_id FROM points_account WHERE balance < 0")
    # Tallies: all time equals earned; each year and each month equals its ranked rows.
    assert not _one("""
        SELECT t.person_id FROM points_tally t JOIN points_account a ON a.person_id = t.person_id
        WHERE t.period = 'all' AND t.points <> a.earned
    """)
    ranked = db.session.execute(
        text(
            "SELECT id, person_id, kind, source_id, points, hours, occurred_on FROM points_ledger"
            " WHERE ranked"
        )
    ).all()
    kinds = {row.id: row.kind for row in ranked}
    expected: dict[tuple[int, str], list] = {}
    earning = {"patrol", "door_watch", "duty", "help", "mediation", "party_report"}
    for _id, person_id, kind, source_id, points, hours, day in ranked:
        day = day if isinstance(day, date) else date.fromisoformat(day)
        # As ledger.reverse counts it: a reversed activity no longer counts as one.
        activity = -(kinds[source_id] in earning) if kind == "reversal" else kind in earning
        for period in ("all", f"{day.year}", f"{day.year}-{day.month:02d}"):
            row = expected.setdefault((person_id, period), [0, 0, 0])
            row[0] += points
            row[1] += float(hours)
            row[2] += activity
    tallies = {
        (p, period): [points, float(hours), activities]
        for p, period, points, hours, activities in db.session.execute(
            text("SELECT person_id, period, points, hours, activities FROM points_tally")
        )
    }
    assert tallies.keys() == expected.keys()
    for key, (points, hours, activities) in expected.items():
        assert tallies[key][0] == points and tallies[key][2] == activities, key
        assert tallies[key][1] == pytest.approx(hours), key

    # Reversals as ledger.reverse writes them: the opposite of an earlier row of the same
    # person, on the same day, at most once, never of a reversal; adjustments by the secretary.
    assert not _one("""
        SELECT r.id FROM points_ledger r LEFT JOIN points_ledger e ON e.id = r.source_id
        WHERE r.kind = 'reversal' AND (
            r.source_type <> 'entry' OR e.id IS NULL OR e.person_id <> r.person_id
            OR e.kind = 'reversal' OR r.points <> -e.points OR r.hours <> -e.hours
            OR r.occurred_on <> e.occurred_on OR r.ranked <> e.ranked
            OR r.created_at <= e.created_at)
    """)
    assert 100 <= _count_where("points_ledger", "kind = 'reversal'") <= 400
    assert not _one("""
        SELECT l.id FROM points_ledger l LEFT JOIN "user" u ON u.id = l.created_by_id
        WHERE l.kind = 'adjustment' AND (l.source_type <> 'adjustment'
            OR l.source_id IS NOT NULL OR u.role IS NULL OR u.role <> 'secretary' OR l.note = '')
    """)
    assert 5_000 <= _count_where("points_ledger", "kind = 'adjustment'") <= 10_000

    # Shifts: taken is the confirmed count; never above capacity; no duplicate sign-ups.
    assert not _one("""
        SELECT s.id FROM shift s LEFT JOIN (
            SELECT shift_id, count(*) AS n FROM signup WHERE status = 'confirmed' GROUP BY shift_id
        ) c ON c.shift_id = s.id
        WHERE s.taken <> coalesce(c.n, 0) OR s.taken > s.capacity
    """)
    assert not _one(
        "SELECT shift_id, person_id FROM signup GROUP BY shift_id, person_id HAVING count(*) > 1"
    )
    # Every verified sign-up earned exactly one ledger row.
    assert db.session.scalar(
        text("SELECT count(*) FROM signup WHERE hours_recorded_at IS NOT NULL")
    ) == db.session.scalar(text("SELECT count(*) FROM points_ledger WHERE source_type = 'signup'"))
    # Unique armbands (one per red armband) and phones of 11 digits.
    assert (
        db.session.scalar(
            text("SELECT count(DISTINCT armband_no) FROM volunteer WHERE armband_no IS NOT NULL")
        )
        == 300
    )
    phones = db.session.scalars(text("SELECT phone FROM person WHERE phone IS NOT NULL")).all()
    assert len(phones) == len(set(phones)) > 5_000
    assert all(len(p) == 11 and p.isdigit() for p in phones)
    # Party members have reported; rewards have stock; the board of every grid has work.
    assert not _one("""
        SELECT v.id FROM volunteer v JOIN volunteer_type t ON t.volunteer_id = v.id
        WHERE t.type = 'party_member' AND v.party_reported_on IS NULL
    """)
    assert db.session.scalar(text("SELECT sum(stock) FROM reward WHERE active")) > 0
    assert not _one("""
        SELECT g.id FROM grid g WHERE (
            SELECT count(*) FROM help_request r JOIN category c ON c.id = r.category_id
            WHERE r.grid_id = g.id AND c.kind = 'neighbour_help' AND r.volunteer_id IS NULL
              AND r.status IN ('submitted', 'accepted')) < 5
    """)
    listed = db.session.scalar(text("SELECT count(*) FROM points_account WHERE listed"))
    assert 0.7 < listed / _count("points_account") < 0.9
    _serves_the_city(client)


def _serves_the_city(client) -> None:  # noqa: ANN001
    response = client.post("/login", data={"identifier": "bench_vol_1", "password": BENCH_PASSWORD})
    assert response.status_code == 303
    for url in ("/shifts", "/points", "/points/leaderboard", "/board", "/my/shifts"):
        assert client.get(url).status_code == 200, url
    user = db.session.scalar(select(User).where(User.username == "bench_vol_1"))
    volunteer = db.session.scalar(select(Volunteer).where(Volunteer.person_id == user.person_id))
    mine = select(Signup.shift_id).where(Signup.person_id == user.person_id)
    shift = db.session.scalar(
        select(Shift)
        .where(
            Shift.grid_id == volunteer.grid_id,
            Shift.starts_at > now_utc() + timedelta(days=3),
            Shift.taken < Shift.capacity,
            Shift.id.not_in(mine),
        )
        .order_by(Shift.starts_at)
    )
    assert shift is not None
    taken = shift.taken
    assert client.get(f"/shifts/{shift.id}").status_code == 200
    assert client.post(f"/shifts/{shift.id}/signup").status_code in (200, 303)
    db.session.expire_all()
    assert db.session.get(Shift, shift.id).taken == taken + 1
    assert client.post(f"/shifts/{shift.id}/cancel").status_code in (200, 303)
    db.session.expire_all()
    assert db.session.get(Shift, shift.id).taken == taken
    account = db.session.get(PointsAccount, user.person_id)
    assert account is not None and account.balance >= 0
    # Claim on the help board, redeem in the shop, the grid worker's queue and the roster.
    open_request = db.session.scalar(
        select(HelpRequest.id)
        .join(Category, Category.id == HelpRequest.category_id)
        .where(
            HelpRequest.grid_id == volunteer.grid_id,
            Category.kind == "neighbour_help",
            HelpRequest.status.in_(("submitted", "accepted")),
            HelpRequest.volunteer_id.is_(None),
        )
        .order_by(HelpRequest.id)
    )
    assert client.post(f"/handling/{open_request}/claim", data={"view": "board"}).status_code in (
        200,
        303,
    )
    db.session.expire_all()
    claimed = db.session.get(HelpRequest, open_request)
    assert (claimed.status, claimed.volunteer_id) == ("dispatched", user.person_id)
    reward = db.session.scalar(
        select(Reward)
        .where(Reward.active, Reward.stock > 0, Reward.available_from.is_(None))
        .order_by(Reward.cost)
    )
    before = db.session.get(PointsAccount, user.person_id).balance
    assert client.get("/rewards").status_code == 200
    assert client.post(f"/rewards/{reward.id}/redeem").status_code in (200, 303)
    db.session.expire_all()
    after = db.session.get(PointsAccount, user.person_id).balance
    assert after in (before, before - reward.cost)
    client.post("/logout")
    for username, urls in (
        ("bench_gw_1", ("/shifts", "/handling", "/volunteers/")),
        ("bench_sec_1", ("/volunteers/", "/points/leaderboard", "/rewards/manage")),
    ):
        login = {"identifier": username, "password": BENCH_PASSWORD}
        assert client.post("/login", data=login).status_code == 303
        for url in urls:
            assert client.get(url).status_code == 200, (username, url)
        client.post("/logout")


def test_same_city_every_time_and_refuses_a_full_database(app, runner):
    seed_bench("small", FIXED_DAY)
    db.session.commit()
    first = digest()
    with pytest.raises(NotEmpty):
        seed_bench("small", FIXED_DAY)
    db.session.rollback()
    result = runner.invoke(args=["seed-bench", "--scale", "small"])
    assert result.exit_code != 0 and "not empty" in result.output
    _empty_tables()
    seed_bench("small", FIXED_DAY)
    db.session.commit()
    assert digest() == first
