"""Demo household help for community 1 (育才社区): care households, regular tasks, visits.

Seven households are enrolled for regular help on a resident's consent, recorded by the grid's
staff (``portal.care.services.enrol_household``): an elder woman living alone who asked for women
volunteers only (a weekly shop, every Saturday, taken as a standing place by one volunteer); an
elder living alone and disabled (a short visit every day, some days still open); a young family
(walking the child home from school every weekday at 4 pm, the first week taken); a disabled
resident and his wife, the demo ``applicant01`` (a weekly escort to physiotherapy); an empty-nest
couple in the demo ``volunteer``'s grid (company twice a week, two places a time); an elder in
grid 3 (a one-off hospital escort, not yet taken); and a couple enrolled last week with no help
planned yet, so that the coverage page shows every case.

The tasks are made by ``create_task`` from today on. Their history (the services refuse dates in
the past) is added as past occurrences of the tasks, then played through the services with the
clock of the day: sign-up, check-in at the door with the household's code, the volunteer's report,
the household's (or the grid worker's) confirmation with a rating, hours written once into the
points ledger. One visit said "something is wrong" (its request was handled by the grid worker),
one was missed (flagged by ``flag_missed_visits``), and the latest visit to ``applicant01``'s
household waits for their confirmation.

Deterministic choices (``random.Random(2026)``); dates follow the local date at seed time.
Runs after the patrols, help and points demos (the points rules are in place). Adds and flushes;
the caller commits.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import select

from portal.auth.models import User
from portal.care import services as care
from portal.care.models import CareHousehold, HelpTask
from portal.core.errors import DomainError
from portal.core.timeutil import local_to_utc, now_utc, to_local
from portal.extensions import db
from portal.help.actions import perform
from portal.help.models import Category, HelpRequest
from portal.notifications.services import send_reminders
from portal.patrols import signups
from portal.patrols.models import Shift
from portal.patrols.scheduling import WEEKDAYS, ShiftPlan
from portal.people.models import Person
from portal.places.models import Building, Community, Household
from portal.trust.privacy import active_consent
from portal.volunteers.models import Volunteer

SEED = 2026
DAYS_AHEAD = 14  # the coverage page's window: filled and unfilled places in it


@dataclass(frozen=True)
class TaskSpec:
    key: str  # which household (see _CareDemo.households)
    code: str  # a minor neighbour-help category
    title: str
    times: tuple[time, time]
    weekdays: tuple[str, ...] = ()  # empty: one date, ``day`` days from today
    weeks: int = 13  # how long the series runs
    day: int = 0
    capacity: int = 1
    volunteer_sex: str | None = None
    notes: str = ""
    meeting_point: str = ""  # empty: the household's building


# fmt: off
TASKS: tuple[TaskSpec, ...] = (
    TaskSpec("shopping", "help.shopping", "每周六代买菜", (time(9, 0), time(10, 0)), ("SA",),
             volunteer_sex="female",
             notes="老人一个人住，只让女志愿者进门。菜单前一天晚上老人会打电话告诉你，"
                   "钱当面结清，小票带回。老人耳背，敲门要用力，多等一会儿。"),
    TaskSpec("daily", "help.company", "每日上门问候", (time(18, 0), time(18, 30)),
             tuple(WEEKDAYS), weeks=8,
             notes="老人腿脚不便、独居，每天傍晚上门看看：问问吃饭、吃药了没有，"
                   "看看燃气是否关好。老人有高血压，桌上有血压计，可以帮她量一下。"),
    TaskSpec("school", "help.pickup", "放学接孩子回家", (time(16, 0), time(16, 30)),
             ("MO", "TU", "WE", "TH", "FR"), weeks=10, meeting_point="育才小学东门",
             notes="孩子上一年级，在育才小学东门等；家长的电话和孩子照片在登记表里，"
                   "接到后发消息给家长，送到家交给爸爸或妈妈。家里没人时带到社区服务站等候。"),
    TaskSpec("rehab", "help.hospital", "每周三陪同康复训练", (time(9, 0), time(11, 0)), ("WE",),
             weeks=12,
             notes="推轮椅陪同到市中心医院康复科，医保卡在老人随身包里。"
                   "下楼时请另一位邻居帮忙抬一下轮椅。"),
    TaskSpec("company", "help.company", "陪老人聊天读报", (time(10, 0), time(11, 0)),
             ("TU", "FR"), weeks=9, capacity=2,
             notes="两位老人爱听新闻，可以读读报纸、陪着下楼晒晒太阳。"),
    TaskSpec("hospital", "help.hospital", "陪同去市中心医院复查", (time(8, 30), time(11, 30)),
             day=5,
             notes="复查眼睛（白内障术后），挂号单在老人那里；需要打车，车费老人自己出。"),
)
RATINGS = (
    (5, "每次都准时，还帮我把菜放进冰箱，谢谢！"),
    (5, ""),
    (4, "人很好，就是来得稍晚了一点。"),
    (5, "孩子很喜欢这位阿姨。"),
    (5, "非常耐心，老人很高兴。"),
    (4, ""),
    (None, ""),
)
DONE_NOTES = {
    "shopping": ("青菜、鸡蛋、挂面和两斤排骨都买了，小票放在桌上。",
                 "按清单买齐了，找零已当面点清。"),
    "daily": ("老人精神不错，已吃过晚饭和降压药。", "帮老人量了血压，130/85，正常。",
              "陪老人聊了一会儿，燃气已关好。", ""),
    "school": ("孩子已安全到家，交给了妈妈。", "四点准时接到孩子，已送到家。"),
    "rehab": ("康复训练做完了，医生说恢复得不错。", "陪同做完理疗，约好下周三同一时间。"),
    "company": ("给两位老人读了报纸，陪他们在楼下坐了半小时。", "陪老人下了两盘象棋。"),
}
PROBLEM_NOTE = "老人说这两天头晕，量了血压160/100，已提醒按时吃药，请网格员联系社区医生上门看看。"
FOLLOW_UP = "社区卫生服务站医生已上门，调整了降压药，约好一周后复查。"
# fmt: on


class _CareDemo:
    def __init__(self, community: Community, now: datetime) -> None:
        self.rng = random.Random(SEED)
        self.community = community
        self.now = now
        self.today = to_local(now).date()
        users = db.session.scalars(
            select(User).where(User.community_id == community.id).order_by(User.id)
        ).all()
        self.user_of = {u.person_id: u for u in users if u.person_id is not None}
        self.secretary = next(u for u in users if u.role == "secretary")
        self.gridworker = next((u for u in users if u.role == "grid_worker"), None)
        self.demo_volunteer = next((u.person for u in users if u.username == "volunteer"), None)
        volunteers = db.session.scalars(
            select(Volunteer)
            .where(Volunteer.community_id == community.id, Volunteer.status == "approved")
            .order_by(Volunteer.id)
        ).all()
        # Volunteers with an account (they report their visits in the portal), but not the demo
        # ``volunteer``, whose past the patrols demo sets; their grid, to prefer the nearest.
        self.helpers = [
            (v.person, v.grid_id)
            for v in volunteers
            if v.person_id in self.user_of and v.person is not self.demo_volunteer
        ]
        self.specs: dict[int, TaskSpec] = {}
        # The standing volunteers of the weekly shop and the physiotherapy escort.
        self.shopper: Person | None = None
        self.escort: Person | None = None
        self.categories = {
            c.code: c
            for c in db.session.scalars(
                select(Category).where(Category.community_id == community.id)
            )
        }

    # ----- who is looked after ----------------------------------------------------------------
    def staff(self, grid_id: int) -> User:
        """Who enrols, plans and confirms for a grid: its grid worker, else the secretary."""
        if self.gridworker is not None and grid_id in {g.id for g in self.gridworker.grids}:
            return self.gridworker
        return self.secretary

    def residents(self) -> dict[int, list[Person]]:
        people = db.session.scalars(
            select(Person)
            .join(Household, Household.id == Person.household_id)
            .where(Household.community_id == self.community.id, Person.erased_at.is_(None))
            .order_by(Household.id, Person.id)
        ).all()
        found: dict[int, list[Person]] = {}
        for person in people:
            found.setdefault(person.household_id, []).append(person)
        return found

    def households(self) -> dict[str, tuple[Household, Person]]:
        """The household of each task (and ``none``: enrolled, nothing planned yet), each with
        the resident whose consent the enrolment rests on."""
        year = self.today.year
        homes = self.residents()
        grid_of = {
            h.id: h.building.grid_id
            for h in db.session.scalars(
                select(Household).where(Household.community_id == self.community.id)
            )
        }
        staffed = {g.id for g in self.gridworker.grids} if self.gridworker else set()
        approved = dict(
            db.session.execute(
                select(Volunteer.person_id, Volunteer.grid_id).where(
                    Volunteer.community_id == self.community.id, Volunteer.status == "approved"
                )
            ).all()
        )
        volunteer_grid = approved.get(getattr(self.demo_volunteer, "id", None))
        chosen: dict[str, tuple[Household, Person]] = {}

        def pick(
            key: str, fits: Callable[[list[Person]], Person | None], first: Callable[[int], bool]
        ) -> None:
            """The first household (``first`` ones before the rest) for which ``fits`` names
            the consenting resident."""
            taken = {h.id for h, _p in chosen.values()}
            ids = sorted((h for h in homes if h not in taken), key=lambda h: (not first(h), h))
            for household_id in ids:
                person = fits(homes[household_id])
                if person is not None:
                    chosen[key] = (db.session.get(Household, household_id), person)
                    return
            raise LookupError(f"demo care: no household fits {key!r}")

        def alone(people: list[Person], disabled: bool | None = None) -> Person | None:
            if len(people) != 1 or not people[0].lives_alone:
                return None
            if disabled is not None and bool(people[0].disabled) != disabled:
                return None
            return people[0]

        def elder_woman_alone(people: list[Person]) -> Person | None:
            person = alone(people, disabled=False)
            return person if person is not None and person.sex == "female" else None

        def young_family(people: list[Person]) -> Person | None:
            """A first-year pupil whose parents both work, none of them a volunteer."""
            if len(people) < 3 or any(
                p.lives_alone or p.disabled or p.empty_nest or p.id in approved for p in people
            ):
                return None
            if not any(5 <= year - p.birth_year <= 8 for p in people):
                return None
            return min(people, key=lambda p: p.birth_year)

        def disabled_with_family(people: list[Person]) -> Person | None:
            """A disabled resident living with family, one of whom confirms in the portal."""
            if not any(p.id in self.user_of for p in people):
                return None
            return next((p for p in people if p.disabled and not p.lives_alone), None)

        def empty_nest(people: list[Person]) -> Person | None:
            if not all(p.empty_nest and p.id not in approved for p in people):
                return None
            return min(people, key=lambda p: p.birth_year)

        def old_couple(people: list[Person]) -> Person | None:
            if not all(year - p.birth_year >= 70 for p in people):
                return None
            if not any(p.id in self.user_of for p in people):
                return None
            return min(people, key=lambda p: p.birth_year)

        def staffed_grid(household_id: int) -> bool:
            return grid_of[household_id] in staffed

        pick("shopping", elder_woman_alone, staffed_grid)
        pick("daily", lambda p: alone(p, disabled=True) or alone(p), staffed_grid)
        pick("school", young_family, staffed_grid)
        pick("rehab", disabled_with_family, staffed_grid)
        pick("company", empty_nest, lambda h: grid_of[h] == volunteer_grid)
        pick("hospital", alone, lambda h: not staffed_grid(h))
        pick("none", old_couple, staffed_grid)
        return chosen

    def enrol(self, household: Household, person: Person, sex: str | None, days_ago: int):
        staff = self.staff(household.building.grid_id)
        enrolled = care.enrol_household(household, person.id, sex, staff, consent_given=True)
        # The paper form was signed when the household joined, before its first visits.
        at = self.now - timedelta(days=days_ago, hours=self.rng.randint(0, 6))
        active_consent(person.id, care.CONSENT_PURPOSE).granted_at = at
        enrolled.created_at = at
        return enrolled

    # ----- tasks --------------------------------------------------------------------------------
    def task(self, spec: TaskSpec, household: Household, created_days_ago: int) -> HelpTask:
        grid_id = household.building.grid_id
        plan = ShiftPlan(
            kind="help_visit",
            title="",
            grid_id=None,
            start_time=spec.times[0],
            end_time=spec.times[1],
            capacity=spec.capacity,
            minimum=1,
            meeting_point=spec.meeting_point or _address(household.building),
            points_per_hour=None,  # the community's rule
        )
        data = care.TaskInput(
            household_ids=[household.id],
            category_id=self.categories[spec.code].id,
            title=spec.title,
            private_notes=spec.notes,
            volunteer_sex=spec.volunteer_sex,
            repeat="weekly" if spec.weekdays else "once",
            plan=plan,
            day=self.today + timedelta(days=spec.day) if not spec.weekdays else None,
            weekdays=list(spec.weekdays),
            starts_on=self.today if spec.weekdays else None,
            ends_on=self.today + timedelta(weeks=spec.weeks) if spec.weekdays else None,
        )
        task = care.create_task(self.community.id, self.staff(grid_id), data, now=self.now)
        task.created_at = self.now - timedelta(days=created_days_ago)
        self.specs[task.id] = spec
        return task

    def coming(self, task: HelpTask, days: int = DAYS_AHEAD) -> list[Shift]:
        return list(
            db.session.scalars(
                select(Shift)
                .where(
                    Shift.help_task_id == task.id,
                    Shift.starts_at > self.now,
                    Shift.starts_at <= self.now + timedelta(days=days),
                )
                .order_by(Shift.starts_at)
            )
        )

    def template(self, task: HelpTask) -> Shift:
        return db.session.scalars(
            select(Shift).where(Shift.help_task_id == task.id).order_by(Shift.starts_at)
        ).first()

    def past_occurrence(self, task: HelpTask, day: date) -> Shift:
        """An occurrence before the task was scheduled here: as its coming ones, on ``day``."""
        like = self.template(task)
        start, end = to_local(like.starts_at).time(), to_local(like.ends_at).time()
        starts_at = local_to_utc(day, start)
        shift = Shift(
            community_id=task.community_id,
            grid_id=task.grid_id,
            kind="help_visit",
            title=like.title,
            meeting_point=like.meeting_point,
            route=list(like.route),
            starts_at=starts_at,
            ends_at=local_to_utc(day, end),
            capacity=like.capacity,
            minimum=like.minimum,
            taken=0,
            allowed_types=like.allowed_types,
            notes=like.notes,
            points_per_hour=like.points_per_hour,
            status="scheduled",
            checkin_code=care.task_checkin_code(task.id),
            help_task_id=task.id,
            created_by_id=task.created_by_id,
            created_at=starts_at - timedelta(days=7),
        )
        db.session.add(shift)
        db.session.flush()
        return shift

    # ----- volunteers ---------------------------------------------------------------------------
    def pool(self, task: HelpTask, *, exclude: Iterable[int] = ()) -> list[Person]:
        """Volunteers who may visit (the household's wish), the task's grid first, shuffled."""
        skip = set(exclude)
        fits = [
            (p, g)
            for p, g in self.helpers
            if p.id not in skip and (task.volunteer_sex is None or p.sex == task.volunteer_sex)
        ]
        self.rng.shuffle(fits)
        fits.sort(key=lambda pg: pg[1] != task.grid_id)
        return [p for p, _g in fits]

    def sign_up(self, shift: Shift, people: Iterable[Person], at: datetime) -> Person | None:
        """The first of ``people`` the sign-up rules accept (a clash moves on to the next)."""
        for person in people:
            try:
                outcome = signups.sign_up(shift, person, at)
            except DomainError:
                continue
            if outcome.status == "confirmed":
                return person
            signups.cancel_signup(shift, person, at)
        return None

    # ----- visits -------------------------------------------------------------------------------
    def visit(
        self,
        task: HelpTask,
        key: str,
        day: date,
        people: list[Person],
        *,
        confirm_by: User | None,
        problem: bool = False,
        rated: bool = True,
    ) -> Shift:
        """A past visit played through the services at the times it happened."""
        rng = self.rng
        shift = self.past_occurrence(task, day)
        volunteer = self.sign_up(
            shift, people, shift.starts_at - timedelta(days=rng.randint(2, 6), hours=3)
        )
        if volunteer is None:
            raise LookupError(f"demo care: nobody free for {task.title} on {day}")
        arrived = shift.starts_at + timedelta(minutes=rng.randint(-8, 4))
        care.check_in_at_door(shift, volunteer.id, shift.checkin_code, arrived)
        reported = shift.ends_at + timedelta(minutes=rng.randint(0, 15))
        care.report_visit(
            shift,
            volunteer,
            note=PROBLEM_NOTE if problem else rng.choice(DONE_NOTES[key]),
            problem=problem,
            actor=self.user_of[volunteer.id],
            now=reported,
        )
        if confirm_by is not None:
            rating, comment = rng.choice(RATINGS) if rated else (None, "")
            care.confirm_visit(
                shift,
                confirm_by,
                came=[volunteer.id],
                rating=rating,
                comment=comment,
                now=reported + timedelta(hours=rng.randint(1, 20)),
            )
        return shift

    def missed(self, task: HelpTask, day: date, people: list[Person]) -> Shift:
        """Signed up, never came, nobody reported: the cron job flags it."""
        shift = self.past_occurrence(task, day)
        self.sign_up(shift, people, shift.starts_at - timedelta(days=2))
        return shift

    def follow_up(self, shift: Shift) -> None:
        """The grid worker's handling of the request a problem visit opened."""
        visit = care.visit_of(shift.id)
        req = db.session.get(HelpRequest, visit.request_id)
        staff = self.staff(shift.grid_id)
        at = visit.reported_at
        for minutes, action, data in (
            (20, "accept", {}),
            (15, "dispatch", {"unit": "community_office"}),
            (600, "complete", {"note": FOLLOW_UP}),
            (60, "verify", {}),
        ):
            at += timedelta(minutes=minutes)
            if at >= self.now:
                return
            perform(req, action, staff, data, now=at)

    # ----- the whole ----------------------------------------------------------------------------
    def build(self) -> None:
        homes = self.households()
        enrolled_days = {"shopping": 120, "daily": 60, "school": 40, "rehab": 90, "company": 30,
                         "hospital": 20, "none": 6}  # fmt: skip
        for key, (household, person) in homes.items():
            sex = "female" if key == "shopping" else None
            self.enrol(household, person, sex, enrolled_days[key])
        tasks = {
            spec.key: self.task(spec, homes[spec.key][0], enrolled_days[spec.key] - 2)
            for spec in TASKS
        }
        db.session.flush()
        self.history(tasks, {k: h for k, (h, _p) in homes.items()})
        self.ahead(tasks)
        db.session.flush()

    def days_back(self, task: HelpTask, count_days: int) -> list[date]:
        """The task's weekdays among the ``count_days`` days before today, oldest first."""
        codes = set(self.specs[task.id].weekdays)
        days = [self.today - timedelta(days=n) for n in range(count_days, 0, -1)]
        return [d for d in days if WEEKDAYS[d.weekday()] in codes]

    def history(self, tasks: dict[str, HelpTask], homes: dict[str, Household]) -> None:
        # The weekly shop: the same woman volunteer for the past four Saturdays.
        shopping = tasks["shopping"]
        self.shopper = self.pool(shopping)[0]
        staff = self.staff(shopping.grid_id)
        for day in self.days_back(shopping, 28):
            people = [self.shopper, *self.pool(shopping)]
            self.visit(shopping, "shopping", day, people, confirm_by=staff)

        # The daily visit: two weeks of it by neighbours; one problem, one missed.
        daily = tasks["daily"]
        staff = self.staff(daily.grid_id)
        days = self.days_back(daily, 14)
        regulars = self.pool(daily)[:5]
        for n, day in enumerate(days):
            people = [*self.rng.sample(regulars, len(regulars)), *self.pool(daily)]
            if n == len(days) - 4:
                shift = self.visit(daily, "daily", day, people, confirm_by=staff, problem=True)
                self.follow_up(shift)
            elif n == len(days) - 2:
                self.missed(daily, day, people)
            else:
                self.visit(daily, "daily", day, people, confirm_by=staff, rated=n % 3 == 0)

        # Walking the child home: the last two weeks of school days, by two volunteers in turn.
        school = tasks["school"]
        staff = self.staff(school.grid_id)
        walkers = self.pool(school)[:2]
        for n, day in enumerate(self.days_back(school, 14)):
            people = [walkers[n % 2], walkers[(n + 1) % 2], *self.pool(school)]
            self.visit(school, "school", day, people, confirm_by=staff, rated=n % 4 == 0)

        # Physiotherapy: the family confirms (the demo ``applicant01``); the latest waits.
        rehab = tasks["rehab"]
        family = self.family_user(homes["rehab"])
        self.escort = self.pool(rehab)[0]
        days = self.days_back(rehab, 21)
        for n, day in enumerate(days):
            last = n == len(days) - 1
            self.visit(
                rehab, "rehab", day, [self.escort, *self.pool(rehab)],
                confirm_by=None if last else family,
            )  # fmt: skip

        # Company twice a week, the last two weeks.
        company = tasks["company"]
        staff = self.staff(company.grid_id)
        for day in self.days_back(company, 14):
            self.visit(company, "company", day, self.pool(company), confirm_by=staff)

    def family_user(self, household: Household) -> User:
        return next(
            self.user_of[p.id] for p in self.residents()[household.id] if p.id in self.user_of
        )

    def ahead(self, tasks: dict[str, HelpTask]) -> None:
        at = self.now
        # Standing places: the shopper and the escort take every coming occurrence.
        care.take_series(tasks["shopping"], self.shopper, now=at)
        care.take_series(tasks["rehab"], self.escort, now=at)
        # The daily visit: about half of the next two weeks taken, one by one.
        daily = tasks["daily"]
        coming = self.coming(daily)
        for n, shift in enumerate(coming):
            if n % 3 != 2 and (n < 3 or self.rng.random() < 0.5):
                self.sign_up(shift, self.pool(daily), at)
        # Walking home: the first week taken, the next still open.
        school = tasks["school"]
        for shift in self.coming(school)[:5]:
            self.sign_up(shift, self.pool(school), at)
        # Company: the demo volunteer holds two (when free), others one; a place of two left.
        company = tasks["company"]
        held = 0
        for n, shift in enumerate(self.coming(company)):
            mine = held < 2 and self.demo_volunteer is not None
            if mine and self.sign_up(shift, [self.demo_volunteer], at) is not None:
                held += 1
                continue
            if n % 2 == 0:
                self.sign_up(shift, self.pool(company), at)
        # The one-off hospital escort is left for a volunteer to take.


def _address(building: Building) -> str:
    """Where the volunteers go: the estate and building, not the room (shown to those who hold
    a place, with the private notes)."""
    return f"{building.estate.name}{building.name}"


def seed_care_demo(now: datetime | None = None) -> None:
    """Add community 1's care households, tasks and visits (see the module docstring), flag the
    missed visit, and store the reminders now due. Does nothing if care households exist."""
    now = (now or now_utc()).replace(second=0, microsecond=0)
    community = db.session.scalars(select(Community).order_by(Community.id)).first()
    if community is None or db.session.scalar(select(CareHousehold.id).limit(1)) is not None:
        return
    _CareDemo(community, now).build()
    care.flag_missed_visits(now)
    send_reminders(now)
    db.session.flush()
