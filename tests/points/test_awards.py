"""Every award source awards exactly once: shift attendance (check-out, the leader's "present"),
a verified or confirmed request, a party member's approved report; replays and parallel
triggers add nothing. Then the rules at award time (multiplier, daily cap, later changes) and
the balance invariant after a random mix of awards, adjustments, reversals and redemptions.

Parallel triggers run in threads, each with its own app context, session and connection to the
suite's database (SQLite or PostgreSQL).
"""

from __future__ import annotations

import random
import threading
from datetime import date, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select, update

from portal.auth.models import User
from portal.core.errors import DomainError
from portal.core.timeutil import local_to_utc, now_utc, to_local
from portal.extensions import db
from portal.help.actions import perform, record_hours
from portal.help.models import Category, HelpRequest
from portal.help.workflow import TransitionRefused
from portal.patrols import attendance
from portal.patrols.models import Signup
from portal.points import admin, ledger
from portal.points.models import EARNING_KINDS, PointsAccount, PointsEntry, PointsTally
from portal.volunteers.models import Volunteer
from portal.volunteers.services import approve_volunteer
from tests import factories
from tests.help.conftest import hd_make_request
from tests.helpers import reload
from tests.patrols.conftest import duty_make_shift, duty_make_signup

PARALLEL = 8
DAY = date(2026, 11, 3)
MIN = timedelta(minutes=1)


@pytest.fixture
def pa_request(app):
    """An English request context, for services that write translated notes and messages."""
    from flask import session

    with app.test_request_context():
        session["lang"] = "en"
        yield


# --- helpers ---------------------------------------------------------------------------------


def _entries(person_id: int, kind: str | None = None) -> list[PointsEntry]:
    db.session.commit()  # end the read snapshot: see what the other sessions wrote
    query = select(PointsEntry).where(PointsEntry.person_id == person_id)
    if kind is not None:
        query = query.where(PointsEntry.kind == kind)
    return list(db.session.scalars(query.order_by(PointsEntry.id)))


def _account(person_id: int) -> PointsAccount:
    return reload(PointsAccount, person_id)


def _shift(side, *, kind="patrol", pph=10, day=DAY, at=time(7, 0), hours=2, **kw):
    """A shift of ``side`` on local ``day`` at ``at`` (07:00 in Shanghai is the day before
    in UTC)."""
    return duty_make_shift(
        side, kind=kind, points_per_hour=pph, starts_at=local_to_utc(day, at), hours=hours, **kw
    )


def _rules(side, **values) -> None:
    """Set the community's rules through the rules service (keys with ':' as '__')."""
    with_keys = {key.replace("__", ":"): value for key, value in values.items()}
    admin.save_rules(side.community.id, with_keys, {}, side.secretary.id)
    db.session.commit()


def _in_parallel(app, work, n: int = PARALLEL) -> list:
    """Run ``work()`` in ``n`` threads released together, each in its own app context (own
    session and connection) committing its own transaction; returns results or exceptions."""
    barrier = threading.Barrier(n)
    outcomes: list = [None] * n

    def run(i: int) -> None:
        with app.app_context():
            try:
                barrier.wait(timeout=30)
                if db.engine.dialect.name == "sqlite":
                    # As a POST request does (auth.session): writers take SQLite's lock first.
                    db.session.connection(execution_options={"sqlite_immediate": True})
                outcomes[i] = work()
                db.session.commit()
            except Exception as exc:  # noqa: BLE001 (collected and asserted on)
                db.session.rollback()
                outcomes[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    db.session.commit()  # everything set up is visible to the threads
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    return outcomes


def _expected_tallies(rows: list[PointsEntry]) -> dict[str, tuple[int, Decimal, int]]:
    kinds = {row.id: row.kind for row in rows}
    tallies: dict[str, list] = {}
    for row in rows:
        if not row.ranked:
            continue
        if row.kind in EARNING_KINDS:
            activities = 1
        elif row.kind == "reversal" and kinds.get(row.source_id) in EARNING_KINDS:
            activities = -1
        else:
            activities = 0
        for period in ledger.periods_for(row.occurred_on):
            tally = tallies.setdefault(period, [0, Decimal("0.00"), 0])
            tally[0] += row.points
            tally[1] += Decimal(row.hours)
            tally[2] += activities
    return {period: (p, h, a) for period, (p, h, a) in tallies.items()}


def assert_invariant(person_ids) -> None:
    """Cached totals equal the ledger's sums: the account against SQL sums over all rows, each
    tally against the ranked rows of its period."""
    db.session.commit()
    for person_id in person_ids:
        balance, earned, hours = db.session.execute(
            select(
                func.coalesce(func.sum(PointsEntry.points), 0),
                func.coalesce(func.sum(PointsEntry.points).filter(PointsEntry.ranked.is_(True)), 0),
                func.coalesce(func.sum(PointsEntry.hours), 0),
            ).where(PointsEntry.person_id == person_id)
        ).one()
        account = db.session.get(PointsAccount, person_id)
        if account is None:
            assert balance == 0 and hours == 0
            continue
        assert account.balance == int(balance), person_id
        assert account.earned == int(earned), person_id
        assert Decimal(account.hours) == Decimal(str(hours)).quantize(Decimal("0.01")), person_id
        assert account.balance >= 0
        rows = list(
            db.session.scalars(select(PointsEntry).where(PointsEntry.person_id == person_id))
        )
        actual = {
            t.period: (t.points, Decimal(t.hours), t.activities)
            for t in db.session.scalars(
                select(PointsTally).where(PointsTally.person_id == person_id)
            )
        }
        assert actual == _expected_tallies(rows), person_id


# --- (a) shift attendance -------------------------------------------------------------------


@pytest.fixture
def duty(world):
    """A patrol of community A on 2026-11-03 07:00 local, 2 h, 10 points per hour, led by
    ``leader`` (a volunteer), with volunteer_a holding a place and checked in at the start."""
    leader = factories.make_user("volunteer", world.a.community, username="leader_a")
    factories.make_volunteer(leader.person, grid_id=world.a.grid.id)
    shift = _shift(world.a, leader_id=leader.person.id)
    person = world.a.volunteer.person
    signup = duty_make_signup(shift, person, checked_in_at=shift.starts_at)
    return SimpleNamespace(a=world.a, b=world.b, leader=leader, shift=shift, signup=signup,
                           person=person)  # fmt: skip


def test_check_out_awards_once(duty, pa_request):
    shift, person = duty.shift, duty.person
    out = attendance.check_out(shift, person.id, shift.starts_at + 75 * MIN)
    db.session.commit()
    assert out.won and out.hours_recorded
    [entry] = _entries(person.id)
    # 1.25 h × 10 points × 1 = 12.5 → 13 (half up)
    assert (entry.kind, entry.source_type, entry.source_id) == ("patrol", "signup", duty.signup.id)
    assert (entry.points, entry.hours) == (13, Decimal("1.25"))
    assert entry.occurred_on == DAY == to_local(shift.starts_at).date()
    assert shift.starts_at.date() == DAY - timedelta(days=1)  # the UTC date would be wrong
    assert entry.note == shift.title and entry.ranked and entry.created_by_id is None
    # Replays: check out again, the leader's "present", the award itself.
    again = attendance.check_out(shift, person.id, shift.starts_at + 80 * MIN)
    mark = attendance.mark_attendance(
        reload(Signup, duty.signup.id), "present", duty.leader, shift.ends_at
    )
    assert not again.won and not mark.hours_recorded
    assert ledger.award_signup(reload(Signup, duty.signup.id)) is None
    db.session.commit()
    assert len(_entries(person.id)) == 1
    account = _account(person.id)
    assert (account.balance, account.earned, account.hours) == (13, 13, Decimal("1.25"))
    assert_invariant([person.id])


@pytest.mark.parametrize(
    ("shift_kind", "entry_kind", "pph", "points"),
    [("patrol", "patrol", 10, 20), ("door_watch", "door_watch", 12, 24), ("other", "duty", 7, 14)],
)
def test_leaders_present_awards_once(world, pa_request, shift_kind, entry_kind, pph, points):
    shift = _shift(world.a, kind=shift_kind, pph=pph)
    person = world.a.volunteer.person
    signup = duty_make_signup(shift, person)
    first = attendance.mark_attendance(signup, "present", world.a.secretary, shift.ends_at)
    second = attendance.mark_attendance(signup, "present", world.a.secretary, shift.ends_at)
    db.session.commit()
    assert first.hours_recorded and not second.hours_recorded
    [entry] = _entries(person.id)
    assert (entry.kind, entry.points, entry.hours, entry.occurred_on) == (
        entry_kind, points, Decimal("2.00"), DAY,
    )  # fmt: skip
    assert entry.hours == reload(Signup, signup.id).hours
    assert_invariant([person.id])


def test_no_show_and_zero_hours_award_nothing(world, pa_request):
    shift = _shift(world.a)
    person = world.a.volunteer.person
    signup = duty_make_signup(shift, person)
    attendance.mark_attendance(signup, "no_show", world.a.secretary, shift.ends_at)
    late = _shift(world.a, at=time(9, 0))
    late_signup = duty_make_signup(late, person, checked_in_at=late.ends_at - 5 * MIN)
    attendance.mark_attendance(late_signup, "present", world.a.secretary, late.ends_at)
    db.session.commit()
    assert reload(Signup, late_signup.id).hours == Decimal("0.00")
    assert _entries(person.id) == []


def test_parallel_present_marks_award_once(app, duty):
    signup_id, leader_id, now = duty.signup.id, duty.leader.id, duty.shift.ends_at

    def mark():
        signup = db.session.get(Signup, signup_id)
        leader = db.session.get(User, leader_id)
        return attendance.mark_attendance(signup, "present", leader, now).hours_recorded

    outcomes = _in_parallel(app, mark)
    assert sorted(outcomes, key=repr) == [False] * (PARALLEL - 1) + [True]
    [entry] = _entries(duty.person.id)
    assert (entry.points, entry.hours) == (20, Decimal("2.00"))
    assert_invariant([duty.person.id])


def test_parallel_check_outs_award_once(app, duty):
    shift_id, person_id = duty.shift.id, duty.person.id
    now = duty.shift.starts_at + 90 * MIN

    def check_out():
        from portal.patrols.models import Shift

        return attendance.check_out(db.session.get(Shift, shift_id), person_id, now).won

    outcomes = _in_parallel(app, check_out)
    assert outcomes.count(True) == 1 and outcomes.count(False) == PARALLEL - 1
    [entry] = _entries(person_id)
    assert (entry.points, entry.hours) == (15, Decimal("1.50"))
    assert_invariant([person_id])


def test_parallel_replays_of_the_award_itself_insert_one_row(app, duty):
    # Hours verified without their award (as a crash between the two would leave them): every
    # replay races to award; the unique (person, kind, source) key lets exactly one in.
    db.session.execute(
        update(Signup)
        .where(Signup.id == duty.signup.id)
        .values(hours=Decimal("1.75"), hours_recorded_at=duty.shift.ends_at)
    )
    signup_id = duty.signup.id

    def replay():
        return ledger.award_signup(db.session.get(Signup, signup_id))

    outcomes = _in_parallel(app, replay)
    assert not [o for o in outcomes if isinstance(o, Exception)], outcomes
    assert sum(1 for o in outcomes if o is not None) == 1
    [entry] = _entries(duty.person.id)
    assert (entry.points, entry.hours) == (18, Decimal("1.75"))  # 17.5 → 18
    assert_invariant([duty.person.id])


# --- (b) verified requests --------------------------------------------------------------------


def _catalogue(community) -> SimpleNamespace:
    help_major = Category(
        community_id=community.id, code="help", name_zh="家家帮", name_en="Neighbour help",
        kind="neighbour_help",
    )  # fmt: skip
    dispute = Category(
        community_id=community.id, code="dispute", name_zh="邻里纠纷", name_en="Dispute"
    )
    db.session.add_all([help_major, dispute])
    db.session.flush()
    shopping = Category(
        community_id=community.id, parent_id=help_major.id, code="help.shopping",
        name_zh="代买", name_en="Shopping", kind="neighbour_help", handler="volunteer_pool",
        time_limit_hours=24, points=15,
    )  # fmt: skip
    noise = Category(
        community_id=community.id, parent_id=dispute.id, code="dispute.noise", name_zh="噪音",
        name_en="Noise", handler="grid_worker", time_limit_hours=24, points=30,
    )  # fmt: skip
    db.session.add_all([shopping, noise])
    db.session.commit()
    return SimpleNamespace(shopping=shopping, noise=noise)


@pytest.fixture
def helping(world):
    world.a.cat = _catalogue(world.a.community)
    return world


def _done_request(side, category, *, worked=timedelta(hours=1, minutes=40)) -> HelpRequest:
    """A request done by volunteer_a: dispatched ``worked`` before it was done an hour ago."""
    req = hd_make_request(side, category, "done")
    req.dispatched_at = req.done_at - worked
    db.session.commit()
    return req


@pytest.mark.parametrize(("actor", "action"), [("gridworker", "verify"), ("resident", "confirm")])
def test_verified_request_awards_the_categorys_points_once(helping, pa_request, actor, action):
    side = helping.a
    req = _done_request(side, side.cat.shopping)
    perform(req, action, getattr(side, actor), {})
    db.session.commit()
    person_id = side.volunteer.person.id
    [entry] = _entries(person_id)
    req = reload(HelpRequest, req.id)
    assert (entry.kind, entry.source_type, entry.source_id) == ("help", "request", req.id)
    assert (entry.points, entry.hours) == (15, Decimal("1.50")) and req.hours == Decimal("1.50")
    assert entry.occurred_on == to_local(req.done_at).date()
    # Replays: the step again, the hours again, the award again.
    with pytest.raises(TransitionRefused):
        perform(req, action, getattr(side, actor), {})
    db.session.rollback()
    req = reload(HelpRequest, req.id)
    assert record_hours(req, now_utc()) is False
    assert ledger.award_request(req) is None
    db.session.commit()
    assert len(_entries(person_id)) == 1
    assert_invariant([person_id])


def test_a_dispute_is_mediation(helping, pa_request):
    side = helping.a
    req = _done_request(side, side.cat.noise)
    perform(req, "verify", side.secretary, {})
    db.session.commit()
    [entry] = _entries(side.volunteer.person.id)
    assert (entry.kind, entry.points) == ("mediation", 30)


def test_a_request_handled_by_a_unit_awards_nothing(helping, pa_request):
    side = helping.a
    req = hd_make_request(
        side, side.cat.shopping, "done", volunteer_id=None, handling_unit="property_company"
    )
    perform(req, "verify", side.secretary, {})
    db.session.commit()
    assert db.session.scalar(select(func.count(PointsEntry.id))) == 0


def test_parallel_verifications_award_once(app, helping):
    side = helping.a
    req = _done_request(side, side.cat.shopping)
    request_id, gridworker_id = req.id, side.gridworker.id

    def verify():
        return perform(
            db.session.get(HelpRequest, request_id),
            "verify",
            db.session.get(User, gridworker_id),
            {},
        ).action

    outcomes = _in_parallel(app, verify)
    assert outcomes.count("verify") == 1
    assert all(isinstance(o, TransitionRefused) for o in outcomes if o != "verify"), outcomes
    [entry] = _entries(side.volunteer.person.id)
    assert entry.points == 15
    assert_invariant([side.volunteer.person.id])


# --- (c) a party member's approved report -------------------------------------------------------


def test_approving_a_party_member_awards_the_report_once(world, pa_request):
    side = world.a
    volunteer = side.pending_volunteer
    decision = approve_volunteer(volunteer, side.secretary, today=DAY)
    db.session.commit()
    assert decision.won
    person_id = volunteer.person_id
    [entry] = _entries(person_id)
    assert (entry.kind, entry.source_type, entry.source_id) == (
        "party_report", "volunteer", volunteer.id,
    )  # fmt: skip
    assert (entry.points, entry.hours, entry.occurred_on) == (20, Decimal("0.00"), DAY)
    again = approve_volunteer(reload(Volunteer, volunteer.id), side.secretary)
    assert not again.won
    assert ledger.award_party_report(reload(Volunteer, volunteer.id)) is None
    db.session.commit()
    assert len(_entries(person_id)) == 1
    assert_invariant([person_id])


def test_approval_over_http_awards_the_rules_points(client, auth, world):
    side = world.a
    _rules(side, party_report=35)
    auth.login("secretary_a")
    response = client.post(f"/volunteers/{side.pending_volunteer.id}/approve")
    assert response.status_code == 303
    [entry] = _entries(side.pending_volunteer.person_id)
    assert (entry.kind, entry.points) == ("party_report", 35)


def test_approving_another_type_awards_no_report(world, pa_request):
    side = world.a
    user = factories.make_user("resident", side.community)
    volunteer = factories.make_volunteer(user.person, ("red_armband",), status="pending")
    approve_volunteer(volunteer, side.secretary)
    db.session.commit()
    assert _entries(user.person.id) == []


def test_parallel_approvals_award_once(app, world):
    volunteer_id, secretary_id = world.a.pending_volunteer.id, world.a.secretary.id

    def approve():
        volunteer = db.session.get(Volunteer, volunteer_id)
        return approve_volunteer(volunteer, db.session.get(User, secretary_id)).won

    outcomes = _in_parallel(app, approve)
    assert outcomes.count(True) == 1 and outcomes.count(False) == PARALLEL - 1, outcomes
    person_id = world.a.pending_volunteer.person_id
    assert [e.kind for e in _entries(person_id)] == ["party_report"]
    assert_invariant([person_id])


# --- rules at award time ----------------------------------------------------------------------


def test_daily_cap_gives_the_second_award_the_remainder(helping, pa_request):
    side = helping.a
    _rules(side, daily_cap=25)
    person_id = side.volunteer.person.id
    first = _shift(side, at=time(7, 0))
    second = _shift(side, at=time(13, 0), kind="door_watch")
    third = _shift(side, at=time(19, 0))
    tomorrow = _shift(side, day=DAY + timedelta(days=1))
    for shift in (first, second, third, tomorrow):
        signup = duty_make_signup(shift, side.volunteer.person)
        attendance.mark_attendance(signup, "present", side.secretary, shift.ends_at)
        db.session.commit()
    rows = _entries(person_id)
    assert [(e.occurred_on, e.points, e.hours) for e in rows] == [
        (DAY, 20, Decimal("2.00")),
        (DAY, 5, Decimal("2.00")),  # 20 would pass the cap of 25: the remainder
        (DAY, 0, Decimal("2.00")),  # nothing left today; the hours still count
        (DAY + timedelta(days=1), 20, Decimal("2.00")),
    ]
    assert "(daily cap reached)" not in rows[0].note
    assert rows[1].note.endswith("(daily cap reached)")
    assert rows[2].note.endswith("(daily cap reached)")
    account = _account(person_id)
    assert (account.balance, account.hours) == (45, Decimal("8.00"))
    assert_invariant([person_id])


def test_daily_cap_counts_earnings_not_adjustments(world, pa_request):
    side = world.a
    _rules(side, daily_cap=25)
    person_id = side.volunteer.person.id
    ledger.adjust(
        person_id, points=100, hours=Decimal(0), reason="补录", actor_id=side.secretary.id
    )
    shift = _shift(side, day=to_local(now_utc()).date())
    signup = duty_make_signup(shift, side.volunteer.person)
    attendance.mark_attendance(signup, "present", side.secretary, shift.ends_at)
    db.session.commit()
    assert _entries(person_id, "patrol")[0].points == 20


def test_a_reversed_award_frees_its_room_under_the_cap(world, pa_request):
    side = world.a
    _rules(side, daily_cap=25)
    person_id = side.volunteer.person.id
    first = _shift(side, at=time(7, 0))
    signup = duty_make_signup(first, side.volunteer.person)
    attendance.mark_attendance(signup, "present", side.secretary, first.ends_at)
    db.session.commit()
    ledger.reverse(_entries(person_id, "patrol")[0], reason="记错了人", actor_id=side.secretary.id)
    db.session.commit()
    second = _shift(side, at=time(13, 0))
    signup = duty_make_signup(second, side.volunteer.person)
    attendance.mark_attendance(signup, "present", side.secretary, second.ends_at)
    db.session.commit()
    assert [e.points for e in _entries(person_id, "patrol")] == [20, 20]
    assert _account(person_id).balance == 20
    assert_invariant([person_id])


def test_a_cap_of_zero_means_none(world, pa_request):
    side = world.a
    _rules(side, daily_cap=0)
    for at in (time(7, 0), time(10, 0), time(13, 0)):
        shift = _shift(side, at=at, pph=100)
        signup = duty_make_signup(shift, side.volunteer.person)
        attendance.mark_attendance(signup, "present", side.secretary, shift.ends_at)
    db.session.commit()
    assert [e.points for e in _entries(side.volunteer.person.id)] == [200, 200, 200]


def _present(side, person, **kw) -> PointsEntry:
    shift = _shift(side, **kw)
    signup = duty_make_signup(shift, person)
    attendance.mark_attendance(signup, "present", side.secretary, shift.ends_at)
    db.session.commit()
    return _entries(person.id)[-1]


def test_the_highest_multiplier_of_the_persons_types_applies(world, pa_request):
    side = world.a
    _rules(side, multiplier__red_armband=Decimal("1.5"), multiplier__mediator=Decimal("2.25"))
    both = factories.make_user("volunteer", side.community)
    factories.make_volunteer(both.person, ("red_armband", "mediator"))
    armband = factories.make_user("volunteer", side.community)
    factories.make_volunteer(armband.person, ("red_armband",))
    elder = factories.make_user("volunteer", side.community)
    factories.make_volunteer(elder.person, ("five_elders",), five_elder_kind="teacher")
    # 2 h × 10 points = 20 before the multiplier.
    assert _present(side, both.person).points == 45
    assert _present(side, armband.person).points == 30
    assert _present(side, elder.person).points == 20  # no multiplier set: 1
    assert_invariant([both.person.id, armband.person.id, elder.person.id])


def test_a_type_without_a_multiplier_counts_as_one(world, pa_request):
    side = world.a
    _rules(side, multiplier__red_armband=Decimal("0.5"))
    both = factories.make_user("volunteer", side.community)
    factories.make_volunteer(both.person, ("red_armband", "mediator"))
    assert _present(side, both.person).points == 20  # mediator (1) beats red armband (0.5)
    assert _present(side, side.volunteer.person).points == 10


def test_an_unapproved_registration_gives_no_multiplier(world, pa_request):
    side = world.a
    _rules(side, multiplier__party_member=Decimal("3"))
    pending = side.pending_volunteer  # a pending party member
    assert _present(side, pending.person).points == 20


def test_multiplier_rounds_half_up(world, pa_request):
    side = world.a
    _rules(side, multiplier__red_armband=Decimal("1.25"))
    # 2 h × 5 points × 1.25 = 12.5 → 13
    assert _present(side, side.volunteer.person, pph=5).points == 13
    expected = (Decimal(10) * Decimal("1.25")).quantize(0, ROUND_HALF_UP)
    assert expected == 13


def test_a_rule_change_applies_to_later_awards_only(helping, pa_request):
    side = helping.a
    person_id = side.volunteer.person.id
    early_shift = _present(side, side.volunteer.person)
    req = _done_request(side, side.cat.shopping)
    perform(req, "verify", side.secretary, {})
    db.session.commit()
    early_request = _entries(person_id, "help")[0]
    assert (early_shift.points, early_request.points) == (20, 15)

    admin.save_rules(
        side.community.id,
        {"multiplier:red_armband": Decimal(2), "per_hour:patrol": 50},
        {side.cat.shopping.id: 40},
        side.secretary.id,
    )
    db.session.commit()
    # Earlier rows keep their points; so does the account.
    assert reload(PointsEntry, early_shift.id).points == 20
    assert reload(PointsEntry, early_request.id).points == 15
    assert _account(person_id).balance == 35
    later_req = _done_request(side, side.cat.shopping)
    perform(later_req, "verify", side.secretary, {})
    db.session.commit()
    assert _entries(person_id, "help")[-1].points == 80  # 40 × 2
    # A shift keeps the points per hour it was scheduled with; the multiplier is today's.
    assert _present(side, side.volunteer.person, at=time(20, 0)).points == 40
    assert_invariant([person_id])


# --- the balance invariant --------------------------------------------------------------------


def test_balance_invariant_after_a_random_mix(world, pa_request):
    rng = random.Random(20261128)
    side = world.a
    people = [side.volunteer.person] + [
        factories.make_user("volunteer", side.community).person for _ in range(3)
    ]
    factories.make_volunteer(people[1], ("mediator",))
    _rules(side, daily_cap=60, multiplier__mediator=Decimal("1.5"))
    days = [date(2025, 12, 30), date(2025, 12, 31), date(2026, 1, 1), date(2026, 2, 14)]
    source = 0
    refused = 0
    for _ in range(160):
        person = rng.choice(people)
        op = rng.choice(("award", "award", "adjust", "reverse", "redeem"))
        try:
            if op == "award":
                source += 1
                kind = rng.choice(EARNING_KINDS)
                ledger.award(
                    person.id,
                    kind=kind,
                    source_type={"help": "request", "mediation": "request",
                                 "party_report": "volunteer"}.get(kind, "signup"),
                    source_id=source,
                    base_points=Decimal(rng.randint(0, 40)),
                    hours=Decimal(rng.choice(("0", "0.25", "1.5", "2"))),
                    occurred_on=rng.choice(days),
                )  # fmt: skip
            elif op == "adjust":
                ledger.adjust(
                    person.id,
                    points=rng.randint(-30, 30) or 1,
                    hours=Decimal(rng.choice(("0", "0.5", "-0.25"))),
                    reason="随机调整",
                    actor_id=side.secretary.id,
                )
            elif op == "reverse":
                candidates = [
                    e
                    for e in _entries(person.id)
                    if e.kind != "reversal" and e.id not in ledger.reversed_ids([e])
                ]
                if not candidates:
                    continue
                ledger.reverse(rng.choice(candidates), reason="更正", actor_id=side.secretary.id)
            else:
                source += 1
                ledger.lock_account(person.id)
                ledger.post_entry(
                    person.id,
                    kind="redemption",
                    source_type="redemption",
                    source_id=source,
                    points=-rng.randint(1, 40),
                )
            db.session.commit()
        except DomainError:
            db.session.rollback()  # the balance would go below zero: nothing of it stays
            refused += 1
    assert refused > 0  # the mix did try to overdraw
    kinds = {e.kind for p in people for e in _entries(p.id)}
    assert {"adjustment", "reversal", "redemption"} <= kinds
    assert_invariant([p.id for p in people])
