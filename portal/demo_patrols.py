"""Demo shifts for community 1 (育才社区): two weeks ahead and the week just past.

Ahead: evening patrols (巡逻) in grids 1 and 2 on alternate days, door-to-door watches (挨户防)
calling on the care households of one grid every third morning, and a weekly series of evening
patrols in the resettlement area (grid 3) made by ``portal.patrols.scheduling``. Most shifts have
places free; two are full with a waitlist, one is below its minimum. The week past has sign-ups,
check-ins and check-outs, attendance, recorded hours, door visits and one patrol report.

The demo ``volunteer`` holds a few places, leads one upcoming patrol, and attended two last week.
Deterministic choices (``random.Random(2026)``); dates follow the local date at seed time.
Adds and flushes; the caller commits.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import joinedload, selectinload

from portal.auth.models import User
from portal.core.timeutil import local_to_utc, now_utc, to_local
from portal.extensions import db
from portal.notifications.services import send_reminders
from portal.patrols import scheduling
from portal.patrols.attendance import hours_between
from portal.patrols.codes import new_checkin_code
from portal.patrols.models import DoorVisit, Hazard, PatrolReport, Shift, Signup
from portal.people.models import Person
from portal.places.models import Building, Community, Grid, Household
from portal.volunteers.models import Volunteer

SEED = 2026
DAYS_AHEAD = 14
DAYS_BACK = 7
PATROL_TIME = (time(19, 30), time(21, 30))
SERIES_TIME = (time(19, 0), time(21, 0))
SERIES_WEEKDAYS = ["TU", "SA"]
DOOR_WATCH_TIME = (time(9, 0), time(11, 0))
MEETING_POINTS = ("育才花园北门岗亭", "书香苑门卫室", "月河安置小区东门")
PATROL_NOTES = "请佩戴红袖章，带好手电筒；遇到可疑情况先拍照记录，再联系网格员。"
DOOR_WATCH_NOTES = "每户问候老人身体和用药情况，看看水、电、燃气是否安全；有困难当场登记。"
VISIT_NOTES = {
    "ok": ("老人精神不错，家里一切正常。", "刚从菜市场回来，身体挺好。", ""),
    "not_home": ("敲门无人应答，邻居说去女儿家了。", "家中无人，已在门上留联系卡。"),
    "needs_help": (
        "老人说最近血压偏高，想请社区医生上门看看。",
        "卫生间水龙头漏水，老人自己修不了。",
    ),
}
REPORT_SUMMARY = "沿线巡查一圈，整体秩序良好；发现三处安全隐患，已登记并告知物业。"
HAZARDS = (
    ("A栋2单元楼道堆放纸箱和旧家具，堵住了消防通道。", "A栋2单元3楼楼道"),
    ("B栋东侧两盏路灯不亮，夜里老人下台阶看不清。", "B栋东侧人行道"),
    ("有住户从窗户拉飞线给电动车充电。", "A栋1单元1楼北侧"),
)


@dataclass
class _Helper:
    person: Person
    types: set[str]
    grid_id: int | None


@dataclass
class _Plan:
    """One shift to fill, with the people placed on it by hand before the random fill."""

    shift: Shift
    past: bool
    target: int  # confirmed places wanted
    waitlist: int = 0
    fixed: list[Person] = field(default_factory=list)
    leader: Person | None = None


class _PatrolDemo:
    def __init__(self, community: Community, now: datetime) -> None:
        self.rng = random.Random(SEED)
        self.community = community
        self.now = now
        self.today = to_local(now).date()
        self.grids = list(
            db.session.scalars(
                select(Grid).where(Grid.community_id == community.id).order_by(Grid.id)
            )
        )
        self.buildings = {
            grid.id: list(
                db.session.scalars(
                    select(Building).where(Building.grid_id == grid.id).order_by(Building.id)
                )
            )
            for grid in self.grids
        }
        users = db.session.scalars(
            select(User).where(User.community_id == community.id).order_by(User.id)
        ).all()
        self.user_of = {u.person_id: u for u in users if u.person_id is not None}
        by_name = {u.username: u for u in users}
        self.secretary = next(u for u in users if u.role == "secretary")
        self.gridworker = next((u for u in users if u.role == "grid_worker"), None)
        self.volunteer = by_name["volunteer"].person if "volunteer" in by_name else None
        volunteers = db.session.scalars(
            select(Volunteer)
            .options(joinedload(Volunteer.person), selectinload(Volunteer.type_links))
            .where(Volunteer.community_id == community.id, Volunteer.status == "approved")
            .order_by(Volunteer.id)
        ).all()
        self.helpers = [_Helper(v.person, set(v.types), v.grid_id) for v in volunteers]
        self.busy: dict[int, list[tuple[datetime, datetime]]] = {}
        self.reserved: set[int] = set()
        self.plans: list[_Plan] = []
        self.care_building_ids: set[int] | None = None

    # ----- shifts ------------------------------------------------------------------------------
    def creator(self, grid: Grid) -> User:
        if self.gridworker is not None and grid in self.gridworker.grids:
            return self.gridworker
        return self.secretary

    def shift(self, grid: Grid, kind: str, title: str, day: date, times, **kw) -> Shift:
        starts_at, ends_at = local_to_utc(day, times[0]), local_to_utc(day, times[1])
        shift = Shift(
            community_id=self.community.id,
            grid_id=grid.id,
            kind=kind,
            title=title,
            starts_at=starts_at,
            ends_at=ends_at,
            taken=0,
            status="scheduled",
            checkin_code=new_checkin_code(),
            created_by_id=self.creator(grid).id,
            created_at=min(starts_at, self.now) - timedelta(days=10),
            **kw,
        )
        db.session.add(shift)
        return shift

    def patrol_route(self, index: int) -> list[dict]:
        grid = self.grids[index]
        stops = [{"building_id": None, "label": MEETING_POINTS[index]}]
        stops += [{"building_id": b.id, "label": ""} for b in self.buildings[grid.id]]
        return stops

    def care_buildings(self, grid: Grid) -> list[Building]:
        """The grid's buildings with a resident flagged for care who consented."""
        if self.care_building_ids is None:
            self.care_building_ids = set(
                db.session.scalars(
                    select(Household.building_id)
                    .join(Person, Person.household_id == Household.id)
                    .where(
                        Household.community_id == self.community.id,
                        Person.care_consent_at.is_not(None),
                        or_(Person.lives_alone, Person.empty_nest, Person.disabled),
                    )
                )
            )
        return [b for b in self.buildings[grid.id] if b.id in self.care_building_ids][:4]

    def patrol(self, index: int, day: date, *, series_like: bool = False) -> Shift:
        """An evening patrol of grid ``index``; ``series_like``: as the weekly series has it."""
        grid = self.grids[index]
        if series_like:
            title, times, capacity = f"{grid.name}平安巡逻（每周二、六）", SERIES_TIME, 8
            types = "red_armband,party_member"
        else:
            title, times, capacity = f"{grid.name}夜间巡逻", PATROL_TIME, 6
            types = "red_armband"
        return self.shift(
            grid,
            "patrol",
            title,
            day,
            times,
            meeting_point=MEETING_POINTS[index],
            route=self.patrol_route(index),
            capacity=capacity,
            minimum=3,
            allowed_types=types,
            notes=PATROL_NOTES,
            points_per_hour=10,
        )

    def door_watch(self, index: int, day: date) -> Shift | None:
        grid = self.grids[index]
        buildings = self.care_buildings(grid)
        if not buildings:
            return None
        return self.shift(
            grid,
            "door_watch",
            f"{grid.name}挨户防·走访关爱户",
            day,
            DOOR_WATCH_TIME,
            meeting_point=f"{buildings[0].estate.name}{buildings[0].name}楼下",
            route=[{"building_id": b.id, "label": ""} for b in buildings],
            capacity=4,
            minimum=2,
            allowed_types="",
            notes=DOOR_WATCH_NOTES,
            points_per_hour=15,
        )

    def series(self, leader: Person) -> list[Shift]:
        """The weekly resettlement-area patrol, through the scheduling service."""
        grid = self.grids[2]
        plan = scheduling.ShiftPlan(
            kind="patrol",
            title=f"{grid.name}平安巡逻（每周二、六）",  # the same as patrol(series_like=True)
            grid_id=grid.id,
            start_time=SERIES_TIME[0],
            end_time=SERIES_TIME[1],
            capacity=8,
            minimum=3,
            meeting_point=MEETING_POINTS[2],
            route=self.patrol_route(2),
            allowed_types=["red_armband", "party_member"],
            leader_id=leader.id,
            notes=PATROL_NOTES,
            points_per_hour=10,
        )
        series = scheduling.create_series(
            self.community.id,
            self.secretary,
            plan,
            weekdays=SERIES_WEEKDAYS,
            starts_on=self.today,
            ends_on=self.today + timedelta(days=182),
            now=self.now,
        )
        last = self.today + timedelta(days=DAYS_AHEAD - 1)
        return list(
            db.session.scalars(
                select(Shift)
                .where(Shift.series_id == series.id, Shift.occurrence_date <= last)
                .order_by(Shift.starts_at)
            )
        )

    # ----- people -------------------------------------------------------------------------------
    def free(self, person: Person, shift: Shift) -> bool:
        return all(
            end <= shift.starts_at or start >= shift.ends_at
            for start, end in self.busy.get(person.id, [])
        )

    def book(self, person: Person, shift: Shift) -> None:
        self.busy.setdefault(person.id, []).append((shift.starts_at, shift.ends_at))

    def candidates(self, shift: Shift, taken: set[int]) -> list[Person]:
        """Eligible helpers who are free, those of the shift's grid first, in random order."""
        types = set(shift.types)
        fits = [
            h
            for h in self.helpers
            if h.person.id not in self.reserved
            and h.person.id not in taken
            and (not types or h.types & types)
            and self.free(h.person, shift)
        ]
        self.rng.shuffle(fits)
        fits.sort(key=lambda h: h.grid_id != shift.grid_id)
        return [h.person for h in fits]

    def helper_for(self, index: int, types: set[str]) -> Person:
        """A reserved helper of grid ``index`` with one of ``types`` (a series leader)."""
        grid_id = self.grids[index].id
        fits = [
            h.person
            for h in self.helpers
            if h.grid_id == grid_id and h.types & types and h.person.id not in self.reserved
        ]
        person = self.rng.choice(fits)
        self.reserved.add(person.id)
        return person

    # ----- building the schedule ---------------------------------------------------------------
    def plan(self, shift: Shift | None, *, fixed=(), leader=None, **kw) -> _Plan | None:
        if shift is None:
            return None
        past = shift.ends_at <= self.now
        target = kw.pop("target", None)
        if target is None:
            low, high = shift.minimum, shift.capacity - (0 if past else 1)
            target = self.rng.randint(low, high)
        plan = _Plan(shift, past, target, fixed=list(fixed), leader=leader, **kw)
        self.plans.append(plan)
        return plan

    def build(self) -> None:
        volunteer = self.volunteer
        if volunteer is not None:
            self.reserved.add(volunteer.id)
        series_leader = self.helper_for(2, {"red_armband"})
        g1_patrols_ahead: list[_Plan] = []
        g1_patrols_back: list[_Plan] = []
        g2_patrols_ahead: list[_Plan] = []
        door_watches_ahead: list[_Plan] = []
        for offset in range(-DAYS_BACK, DAYS_AHEAD):
            day = self.today + timedelta(days=offset)
            index = offset % 2  # grid 1 on even days, grid 2 on odd ones
            # Today's shifts that already began are left out; the past week is complete.
            if offset < 0 or local_to_utc(day, PATROL_TIME[0]) > self.now:
                plan = self.plan(self.patrol(index, day))
                if offset < 0:
                    if index == 0:
                        g1_patrols_back.append(plan)
                else:
                    (g1_patrols_ahead if index == 0 else g2_patrols_ahead).append(plan)
            if offset % 3 == 0 and (offset < 0 or local_to_utc(day, DOOR_WATCH_TIME[0]) > self.now):
                plan = self.plan(self.door_watch((offset // 3) % 3, day))
                if plan is not None and offset >= 0:
                    door_watches_ahead.append(plan)
            # Grid 3's patrols before the series began were one-offs on the same weekdays.
            if offset < 0 and scheduling.WEEKDAYS[day.weekday()] in SERIES_WEEKDAYS:
                self.plan(
                    self.patrol(2, day, series_like=True),
                    fixed=[series_leader],
                    leader=series_leader,
                )
        db.session.flush()
        for occurrence in self.series(series_leader):
            self.plan(occurrence, fixed=[series_leader], leader=series_leader)

        if volunteer is not None:
            # Last week: two patrols attended. Ahead: a patrol to lead, one more, a door watch.
            for plan in g1_patrols_back[-2:]:
                plan.fixed.append(volunteer)
            led, second = g1_patrols_ahead[0], g1_patrols_ahead[1]
            led.fixed.insert(0, volunteer)
            led.leader = volunteer
            second.fixed.append(volunteer)
            if door_watches_ahead:
                door_watches_ahead[0].fixed.append(volunteer)
        # Two patrols full with people waiting, one short of its minimum.
        for plan in (g2_patrols_ahead[0], g1_patrols_ahead[3]):
            plan.target, plan.waitlist = plan.shift.capacity, 2
        g2_patrols_ahead[2].target = 1

        self.plans.sort(key=lambda p: p.shift.starts_at)
        for plan in self.plans:
            self.fill(plan)
        db.session.flush()
        self.past_week()

    def fill(self, plan: _Plan) -> None:
        shift = plan.shift
        placed = [p for p in plan.fixed if self.free(p, shift)][: plan.target]
        taken = {p.id for p in placed}
        pool = self.candidates(shift, taken)
        placed += pool[: plan.target - len(placed)]
        waiting = [p for p in pool if p.id not in {q.id for q in placed}][: plan.waitlist]
        booked_at = min(shift.starts_at - timedelta(hours=3), self.now)
        for n, person in enumerate(placed):
            self.book(person, shift)
            db.session.add(
                Signup(
                    community_id=shift.community_id,
                    shift=shift,
                    person=person,
                    status="confirmed",
                    created_at=booked_at - timedelta(hours=self.rng.randint(1, 96), minutes=n),
                )
            )
        for n, person in enumerate(waiting):
            self.book(person, shift)
            queued_at = booked_at - timedelta(minutes=30 - n)
            db.session.add(
                Signup(
                    community_id=shift.community_id,
                    shift=shift,
                    person=person,
                    status="waitlisted",
                    waitlisted_at=queued_at,
                    created_at=queued_at,
                )
            )
        shift.taken = len(placed)
        if plan.leader is not None and plan.leader in placed:
            leader = plan.leader
        else:  # the demo volunteer leads only the patrol chosen for them
            others = [p for p in placed if p is not self.volunteer]
            leader = self.rng.choice(others) if others else None
        shift.leader_id = leader.id if leader else None

    # ----- the week past -----------------------------------------------------------------------
    def past_week(self) -> None:
        """Check-ins, check-outs, attendance and hours; door visits; one patrol report."""
        past = [p.shift for p in self.plans if p.past]
        signups = db.session.scalars(
            select(Signup)
            .where(Signup.shift_id.in_([s.id for s in past]), Signup.status == "confirmed")
            .order_by(Signup.shift_id, Signup.id)
        ).all()
        for signup in signups:
            self.attend(signup)
        for shift in past:
            if shift.kind == "door_watch":
                self.visits(shift)
        patrols = [s for s in past if s.kind == "patrol" and s.grid_id == self.grids[2].id]
        if patrols:
            self.report(patrols[-1])

    def marker(self, shift: Shift) -> User:
        return self.user_of.get(shift.leader_id) or self.creator(shift.grid)

    def attend(self, signup: Signup) -> None:
        shift, rng = signup.shift, self.rng
        if signup.person_id != getattr(self.volunteer, "id", None) and rng.random() < 0.1:
            signup.attendance = "no_show"
            signup.attendance_marked_by_id = self.marker(shift).id
            return
        signup.attendance = "present"
        if rng.random() < 0.8:
            signup.checked_in_at = shift.starts_at - timedelta(minutes=rng.randint(0, 12))
            signup.checked_out_at = shift.ends_at + timedelta(minutes=rng.randint(0, 10))
            start, end = signup.checked_in_at, signup.checked_out_at
        else:  # no phone at hand: the leader confirmed them on the roster
            signup.attendance_marked_by_id = self.marker(shift).id
            start, end = shift.starts_at, shift.ends_at
        signup.hours = hours_between(shift, start, end)
        signup.hours_recorded_at = shift.ends_at + timedelta(minutes=rng.randint(10, 40))

    def visits(self, shift: Shift) -> None:
        building_ids = [stop["building_id"] for stop in shift.route if stop.get("building_id")]
        households = db.session.scalars(
            select(Household)
            .join(Person, Person.household_id == Household.id)
            .where(
                Household.building_id.in_(building_ids),
                Person.care_consent_at.is_not(None),
                or_(Person.lives_alone, Person.empty_nest, Person.disabled),
            )
            .order_by(Household.id)
        ).unique()
        visitor = self.marker(shift)
        for n, household in enumerate(households):
            outcome = self.rng.choices(("ok", "not_home", "needs_help"), weights=(7, 2, 1))[0]
            db.session.add(
                DoorVisit(
                    community_id=shift.community_id,
                    shift_id=shift.id,
                    household_id=household.id,
                    outcome=outcome,
                    note=self.rng.choice(VISIT_NOTES[outcome]),
                    visited_by_id=visitor.id,
                    visited_at=shift.starts_at + timedelta(minutes=10 + 8 * n),
                )
            )

    def report(self, shift: Shift) -> None:
        filed_at = shift.ends_at + timedelta(minutes=25)
        report = PatrolReport(
            community_id=shift.community_id,
            shift_id=shift.id,
            summary=REPORT_SUMMARY,
            filed_by_id=self.marker(shift).id,
            filed_at=filed_at,
        )
        report.hazards = [
            Hazard(
                community_id=shift.community_id,
                description=description,
                location=location,
                created_at=filed_at,
            )
            for description, location in HAZARDS
        ]
        db.session.add(report)


def seed_demo_patrols(community: Community, now: datetime | None = None) -> None:
    """Add community 1's demo shifts (see the module docstring), then the due reminders."""
    now = now or now_utc()
    _PatrolDemo(community, now).build()
    db.session.flush()
    send_reminders(now)
