"""One-off shifts: create, every bad input, edit (capacity, detaching, time-change notices) and
cancellation that tells everyone exactly once."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta

import pytest
from sqlalchemy import func, select

from portal.core.errors import DomainError
from portal.core.timeutil import local_to_utc, local_today, to_local
from portal.extensions import db
from portal.notifications.models import Notification
from portal.patrols import scheduling
from portal.patrols.codes import ALPHABET, CODE_LENGTH
from portal.patrols.models import Shift, Signup
from tests import factories
from tests.patrols.conftest import sched_form, sched_hold, sched_plan, sched_volunteer


def errors_of(response) -> list[str]:
    return re.findall(r'class="error">([^<]*)<', response.get_data(as_text=True))


def shift_count() -> int:
    db.session.commit()
    return db.session.scalar(select(func.count(Shift.id)))


def reload(shift: Shift) -> Shift:
    db.session.commit()  # ends the read snapshot and expires what was loaded
    return db.session.get(Shift, shift.id)


def notifications(kind: str | None = None) -> list[Notification]:
    db.session.commit()
    query = select(Notification).order_by(Notification.user_id, Notification.id)
    if kind:
        query = query.where(Notification.kind == kind)
    return list(db.session.scalars(query))


TOMORROW = timedelta(days=1)


# --- creating ---------------------------------------------------------------------------------


def test_secretary_schedules_a_shift(client, auth, world):
    auth.login("secretary_a")
    page = client.get("/shifts/new")
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert 'name="route-0-building_id"' in body and world.a.building.name in body
    assert world.a.grid2.name in body  # a secretary chooses any grid of the community
    assert world.b.grid.name not in body
    day = local_today() + TOMORROW * 3
    leader = sched_volunteer(world.a, name="李队长")
    response = client.post(
        "/shifts/new",
        data=sched_form(
            world.a,
            day,
            leader_id=str(leader.person.id),
            allowed_types=["red_armband", "party_member"],
            notes="带好手电",
        ),
    )
    assert response.status_code == 303
    shift = db.session.scalar(select(Shift))
    assert response.headers["Location"] == f"/shifts/{shift.id}"
    assert shift.community_id == world.a.community.id and shift.grid_id == world.a.grid.id
    assert to_local(shift.starts_at).replace(tzinfo=None) == datetime.combine(day, time(19))
    assert to_local(shift.ends_at).replace(tzinfo=None) == datetime.combine(day, time(21))
    assert shift.starts_at.hour == 11  # stored in UTC
    assert shift.route == [
        {"building_id": world.a.building.id, "label": ""},
        {"building_id": None, "label": "东门"},
    ]
    assert shift.allowed_types == "red_armband,party_member"
    assert shift.leader_id == leader.person.id
    assert (shift.capacity, shift.minimum, shift.taken, shift.points_per_hour) == (5, 2, 0, 10)
    assert shift.status == "scheduled" and shift.detached is False and shift.series_id is None
    assert len(shift.checkin_code) == CODE_LENGTH and set(shift.checkin_code) <= set(ALPHABET)
    assert shift.created_by_id == world.a.secretary.id


def test_each_shift_gets_its_own_checkin_code(app, world, sched_request):
    day = local_today() + TOMORROW
    codes = {
        scheduling.create_shift(world.a.community.id, None, sched_plan(world.a), day).checkin_code
        for _ in range(5)
    }
    assert len(codes) > 1


def test_grid_worker_schedules_in_their_grid_only(client, auth, world):
    auth.login("gridworker_a")
    body = client.get("/shifts/new").get_data(as_text=True)
    assert world.a.grid.name in body and world.a.grid2.name not in body
    day = local_today() + TOMORROW
    response = client.post(
        "/shifts/new",
        data=sched_form(world.a, day, grid_id=str(world.a.grid2.id), **{"route-0-building_id": ""}),
    )
    assert response.status_code == 200
    assert shift_count() == 0
    assert client.post("/shifts/new", data=sched_form(world.a, day)).status_code == 303
    assert shift_count() == 1


BAD = [
    ({"end_time": "18:00"}, "end_time", "The end must be after the start."),
    ({"end_time": "19:00"}, "end_time", "The end must be after the start."),
    ({"capacity": "0"}, "capacity", "Offer at least 1 place."),
    ({"capacity": ""}, "capacity", "Offer at least 1 place."),
    ({"capacity": "3", "minimum": "4"}, "minimum", "The minimum cannot be above the capacity."),
    ({"minimum": "-1"}, "minimum", "The minimum cannot be below 0."),
    ({"title": ""}, "title", "Give the shift a title."),
    ({"start_time": ""}, "start_time", "Enter the start time."),
    ({"day": ""}, "day", "Enter the date."),
    ({"points_per_hour": "1001"}, "points_per_hour", "Enter a number from 0 to 1000."),
    ({"kind": "party"}, "kind", "Not a valid choice."),
]


@pytest.mark.parametrize("change, field, message", BAD)
def test_bad_input_is_refused_with_a_message(
    client, auth, world, sched_english, change, field, message
):
    auth.login("secretary_a")
    response = client.post(
        "/shifts/new", data=sched_form(world.a, local_today() + TOMORROW, **change)
    )
    assert response.status_code == 200
    assert message in errors_of(response)
    assert f'id="field-{field}"' in response.get_data(as_text=True)
    assert shift_count() == 0


def test_what_was_typed_is_kept(client, auth, world, sched_english):
    auth.login("secretary_a")
    response = client.post(
        "/shifts/new",
        data=sched_form(world.a, local_today() + TOMORROW, end_time="18:00", title="周末巡逻"),
    )
    body = response.get_data(as_text=True)
    assert 'value="周末巡逻"' in body and 'value="东门"' in body


def test_a_shift_cannot_start_in_the_past(client, auth, world, sched_english):
    auth.login("secretary_a")
    yesterday = local_today() - TOMORROW
    response = client.post("/shifts/new", data=sched_form(world.a, yesterday))
    assert "A shift cannot start in the past." in errors_of(response)
    assert shift_count() == 0


def test_the_past_is_checked_against_now(app, world, sched_request):
    day = local_today() + TOMORROW
    late = local_to_utc(day, time(19, 30))
    with pytest.raises(DomainError) as caught:
        scheduling.create_shift(world.a.community.id, None, sched_plan(world.a), day, now=late)
    assert caught.value.errors == {"day": "A shift cannot start in the past."}
    early = local_to_utc(day, time(18, 59))
    assert scheduling.create_shift(world.a.community.id, None, sched_plan(world.a), day, now=early)


def test_route_building_outside_the_grid_is_refused(client, auth, world, sched_english):
    auth.login("secretary_a")
    data = sched_form(
        world.a, local_today() + TOMORROW, **{"route-1-building_id": str(world.a.building2.id)}
    )
    response = client.post("/shifts/new", data=data)
    assert response.status_code == 200
    assert f"Stop 2: {world.a.building2.name} is not in the grid of this shift." in errors_of(
        response
    )
    assert shift_count() == 0


@pytest.mark.parametrize("value", ["b", "999999", "abc"])
def test_route_building_of_another_community_is_refused(client, auth, world, sched_english, value):
    auth.login("secretary_a")
    bad = str(world.b.building.id) if value == "b" else value
    data = sched_form(world.a, local_today() + TOMORROW, **{"route-0-building_id": bad})
    response = client.post("/shifts/new", data=data)
    assert response.status_code == 200
    assert "Stop 1: choose a building of this grid." in errors_of(response)
    assert world.b.building.name not in "".join(errors_of(response))
    assert shift_count() == 0


def test_leader_of_another_community_or_not_approved_is_refused(client, auth, world, sched_english):
    auth.login("secretary_a")
    message = "Choose an approved volunteer of this community as the leader."
    for person in (world.b.volunteer.person, world.a.pending.person, world.a.resident.person):
        data = sched_form(world.a, local_today() + TOMORROW, leader_id=str(person.id))
        assert message in errors_of(client.post("/shifts/new", data=data))
    assert shift_count() == 0
    body = client.get("/shifts/new").get_data(as_text=True)
    assert world.a.volunteer.person.name in body  # offered as a leader
    assert world.b.volunteer.person.name not in body and world.a.pending.person.name not in body


def test_grid_of_another_community_is_refused(client, auth, world, sched_english):
    auth.login("secretary_a")
    data = sched_form(
        world.a,
        local_today() + TOMORROW,
        grid_id=str(world.b.grid.id),
        **{"route-0-building_id": ""},
    )
    response = client.post("/shifts/new", data=data)
    assert "Choose one of your grids." in errors_of(response)
    assert shift_count() == 0


def test_more_than_ten_stops_are_not_read(client, auth, world):
    auth.login("secretary_a")
    data = sched_form(world.a, local_today() + TOMORROW)
    for n in range(2, 14):
        data[f"route-{n}-checkpoint"] = f"岗{n}"
    assert client.post("/shifts/new", data=data).status_code == 303
    assert len(db.session.scalar(select(Shift)).route) == 10


def test_route_rows_follow_the_chosen_grid(client, auth, world):
    auth.login("secretary_a")
    response = client.get(
        f"/schedule/route-stops?grid_id={world.a.grid2.id}&route-0-checkpoint=南门",
        headers={"HX-Request": "true"},
    )
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" not in body
    assert 'id="route-stops"' in body and 'value="南门"' in body
    assert world.a.building2.name in body and ">A花园 1号楼<" not in body
    assert client.get(f"/schedule/route-stops?grid_id={world.b.grid.id}").status_code == 404
    plain = client.get(f"/schedule/route-stops?grid_id={world.a.grid2.id}")
    assert plain.status_code == 303
    assert plain.headers["Location"] == f"/shifts/new?grid_id={world.a.grid2.id}"


def test_grid_worker_route_rows_only_for_their_grids(client, auth, world):
    auth.login("gridworker_a")
    url = f"/schedule/route-stops?grid_id={world.a.grid2.id}"
    assert client.get(url, headers={"HX-Request": "true"}).status_code == 200  # htmx: message
    assert client.get(url).status_code == 404


# --- editing ----------------------------------------------------------------------------------


@pytest.fixture
def booked(world, sched_request):
    """A's shift two days ahead with 3 of 5 places taken and one person waiting."""
    shift = scheduling.create_shift(
        world.a.community.id, None, sched_plan(world.a), local_today() + 2 * TOMORROW
    )
    db.session.commit()
    people = [sched_volunteer(world.a, name=f"志愿者{n}") for n in range(4)]
    for user in people[:3]:
        sched_hold(shift, user.person)
    sched_hold(shift, people[3].person, "waitlisted")
    return shift, people


def edit_form(shift: Shift, side, **kw) -> dict:
    day = to_local(shift.starts_at).date()
    return sched_form(side, day, **kw)


def test_edit_form_shows_the_shift(client, auth, world, booked):
    shift, _people = booked
    auth.login("secretary_a")
    body = client.get(f"/shifts/{shift.id}/edit").get_data(as_text=True)
    assert 'value="晚间巡逻"' in body and 'value="19:00"' in body and 'value="21:00"' in body
    assert f'value="{to_local(shift.starts_at).date().isoformat()}"' in body
    assert 'id="shift-cancel"' in body


def test_capacity_cannot_go_below_places_taken(client, auth, world, booked, sched_english):
    shift, _people = booked
    auth.login("secretary_a")
    response = client.post(
        f"/shifts/{shift.id}/edit", data=edit_form(shift, world.a, capacity="2", minimum="1")
    )
    assert response.status_code == 200
    assert "3 places are already taken: the capacity cannot be lower." in errors_of(response)
    assert reload(shift).capacity == 5
    response = client.post(f"/shifts/{shift.id}/edit", data=edit_form(shift, world.a, capacity="3"))
    assert response.status_code == 303
    assert reload(shift).capacity == 3


def test_raising_capacity_promotes_the_waitlist(client, auth, world, booked):
    shift, people = booked
    auth.login("secretary_a")
    client.post(f"/shifts/{shift.id}/edit", data=edit_form(shift, world.a, capacity="6"))
    db.session.commit()
    status = db.session.scalar(select(Signup.status).where(Signup.person_id == people[3].person.id))
    assert status == "confirmed" and reload(shift).taken == 4


def test_time_change_tells_the_holders(client, auth, world, booked):
    shift, people = booked
    cancelled = sched_volunteer(world.a, name="已退出")
    sched_hold(shift, cancelled.person, "cancelled")
    auth.login("secretary_a")
    day = local_today() + 3 * TOMORROW
    response = client.post(
        f"/shifts/{shift.id}/edit", data=sched_form(world.a, day, start_time="18:30")
    )
    assert response.status_code == 303
    changed = notifications("shift_changed")
    assert sorted(n.user_id for n in changed) == sorted(u.id for u in people)
    assert changed[0].params == {"title": "晚间巡逻", "when": f"{day.isoformat()} 18:30"}
    assert changed[0].link == f"/shifts/{shift.id}"
    assert changed[0].community_id == world.a.community.id
    # Saving again without a time change tells nobody.
    client.post(
        f"/shifts/{shift.id}/edit", data=sched_form(world.a, day, start_time="18:30", notes="x")
    )
    assert len(notifications("shift_changed")) == 4


def test_editing_an_occurrence_detaches_it(client, auth, world, sched_request):
    series = scheduling.create_series(
        world.a.community.id,
        None,
        sched_plan(world.a),
        weekdays=["MO", "TH"],
        starts_on=local_today() + TOMORROW,
        ends_on=local_today() + 20 * TOMORROW,
    )
    db.session.commit()
    first, second = db.session.scalars(
        select(Shift).where(Shift.series_id == series.id).order_by(Shift.occurrence_date)
    ).all()[:2]
    auth.login("secretary_a")
    body = client.get(f"/shifts/{first.id}/edit").get_data(as_text=True)
    assert 'id="series-note"' in body
    response = client.post(
        f"/shifts/{first.id}/edit", data=edit_form(first, world.a, title="改期巡逻")
    )
    assert response.status_code == 303
    first, second = reload(first), reload(second)
    assert first.detached is True and first.title == "改期巡逻" and first.series_id == series.id
    assert second.detached is False and second.title == "晚间巡逻"


def test_a_cancelled_shift_cannot_be_edited(client, auth, world, booked, sched_english):
    shift, _people = booked
    auth.login("secretary_a")
    client.post(f"/shifts/{shift.id}/cancel-shift", data={"reason": ""})
    response = client.post(f"/shifts/{shift.id}/edit", data=edit_form(shift, world.a, title="新"))
    assert response.status_code == 200
    assert "This shift was cancelled; it can no longer be changed." in response.get_data(
        as_text=True
    )
    assert reload(shift).title == "晚间巡逻"


# --- cancelling -------------------------------------------------------------------------------


def test_cancel_tells_everyone_exactly_once(client, auth, world, booked):
    shift, people = booked
    no_account = factories.make_person(world.a.community, name="无账号")
    sched_hold(shift, no_account)
    gone = sched_volunteer(world.a, name="早退出")
    sched_hold(shift, gone.person, "cancelled")
    auth.login("secretary_a")
    response = client.post(f"/shifts/{shift.id}/cancel-shift", data={"reason": "暴雨预警"})
    assert response.status_code == 303
    assert response.headers["Location"] == f"/shifts/{shift.id}"
    shift = reload(shift)
    assert shift.status == "cancelled" and shift.cancel_reason == "暴雨预警" and shift.taken == 0
    told = notifications("shift_cancelled")
    assert sorted(n.user_id for n in told) == sorted(u.id for u in people)
    when = to_local(shift.starts_at).strftime("%Y-%m-%d %H:%M")
    assert {tuple(sorted(n.params.items())) for n in told} == {
        (("title", "晚间巡逻"), ("when", when))
    }
    assert {n.dedupe_key for n in told} == {f"shift_cancelled:shift:{shift.id}"}
    statuses = db.session.scalars(select(Signup.status).where(Signup.shift_id == shift.id)).all()
    assert set(statuses) == {"cancelled"}
    # Again: nothing new, and the answer says so.
    again = client.post(f"/shifts/{shift.id}/cancel-shift", data={"reason": ""})
    assert again.status_code == 303
    assert len(notifications("shift_cancelled")) == 4
    assert reload(shift).cancel_reason == "暴雨预警"


def test_cancel_service_twice_notifies_once(app, world, booked):
    shift, people = booked
    assert scheduling.cancel_shift(shift, None, "") is True
    assert scheduling.cancel_shift(shift, None, "") is False
    db.session.commit()
    assert len(notifications("shift_cancelled")) == 4


def test_a_finished_shift_cannot_be_cancelled(app, world, booked):
    shift, _people = booked
    later = shift.ends_at + timedelta(minutes=1)
    with pytest.raises(DomainError) as caught:
        scheduling.cancel_shift(shift, None, "", now=later)
    assert caught.value.errors == {"_": "This shift is over; it can no longer be cancelled."}
    assert reload(shift).status == "scheduled"


def test_cancel_reason_too_long(client, auth, world, booked, sched_english):
    shift, _people = booked
    auth.login("secretary_a")
    response = client.post(
        f"/shifts/{shift.id}/cancel-shift", data={"reason": "长" * 201}, follow_redirects=True
    )
    assert "Field cannot be longer than 200 characters." in response.get_data(as_text=True)
    assert reload(shift).status == "scheduled"
    assert notifications() == []


def test_times_are_local_wall_clock(app, world, sched_request):
    day = local_today() + TOMORROW
    shift = scheduling.create_shift(
        world.a.community.id,
        None,
        sched_plan(world.a, start_time=time(7, 5), end_time=time(8)),
        day,
    )
    assert shift.starts_at == datetime.combine(day, time(7, 5), tzinfo=UTC) - timedelta(hours=8)


def test_cancel_sends_each_message_once_through_the_adapter(app, world, booked):
    shift, people = booked
    sent: list[dict] = []

    class Backend:
        def send(self, **message):
            sent.append(message)

    app.config["MESSAGE_BACKEND"] = Backend()
    try:
        scheduling.cancel_shift(shift, None, "")
        scheduling.cancel_shift(shift, None, "")
    finally:
        app.config.pop("MESSAGE_BACKEND", None)
    assert sorted(m["user_id"] for m in sent) == sorted(u.id for u in people)
    assert {m["kind"] for m in sent} == {"shift_cancelled"}


def test_shift_link_outside_a_request(app):
    assert scheduling.shift_link(42) == "/shifts/42"
