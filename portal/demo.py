"""Demo data: a believable pair of communities in one subdistrict, with every role signed in.

Deterministic (``random.Random(2026)``), so the same names and rooms appear on every machine.
``seed_demo()`` adds and flushes; the caller (``flask seed-demo`` / ``flask start``) commits.
Every demo account's password is ``tongxin-demo``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import timedelta

from werkzeug.security import generate_password_hash

from portal.auth.models import User
from portal.core.timeutil import LOCAL_TZ
from portal.database import utcnow
from portal.demo_care import seed_care_demo
from portal.demo_help import seed_help_demo
from portal.demo_patrols import seed_demo_patrols
from portal.demo_points import seed_points_demo
from portal.extensions import db
from portal.help.catalogue import seed_catalogue
from portal.people.models import Person
from portal.places.models import (
    Building,
    Community,
    Entrance,
    Estate,
    Grid,
    Household,
    Subdistrict,
)
from portal.volunteers.forms import AVAILABILITY
from portal.volunteers.models import FIVE_ELDER_KINDS, Volunteer, VolunteerType
from portal.volunteers.services import format_armband_no

DEMO_PASSWORD = "tongxin-demo"
SEED = 2026
RED_ARMBAND_VOLUNTEERS = 30  # volunteer01 … volunteer30


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程"
    "苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛段雷侯龙史陶贺顾毛郝龚邵"
)
# Given names by generation: what a grandmother, a parent and a child are typically called.
GIVEN = {
    ("male", "old"): _words(
        "建国 国强 志刚 德明 振华 卫东 建华 永福 文斌 国庆 长林 宝山 金生 世荣 春生 "
        "玉林 明德 有才 根生 福来 家富 学文 洪亮 铁军"
    ),
    ("female", "old"): _words(
        "秀英 桂兰 玉梅 淑芬 凤英 秀兰 丽华 桂英 玉兰 秀珍 翠英 素芳 金凤 淑珍 "
        "月娥 冬梅 春兰 玉珍 桂芳 秀芝 爱华 彩霞"
    ),
    ("male", "mid"): _words(
        "伟 强 磊 军 勇 涛 斌 超 明 刚 鹏 杰 健 波 辉 海军 建军 晓东 志强 立新 "
        "红军 小龙 宏伟 亚军 振宇 文龙"
    ),
    ("female", "mid"): _words(
        "丽娟 晓燕 海燕 静 敏 艳 娟 霞 丽 婷婷 红梅 秀梅 雪梅 春燕 丽萍 晓红 "
        "玉洁 慧 琳 芳 小红 亚萍"
    ),
    ("male", "young"): _words(
        "浩然 子轩 宇航 俊杰 博文 梓豪 皓轩 一鸣 思远 明轩 嘉豪 天佑 子墨 雨泽 晨阳 浩宇 泽宇 俊熙"
    ),
    ("female", "young"): _words(
        "欣怡 梓涵 诗琪 雨萱 思彤 佳怡 子涵 可馨 一诺 梦瑶 若曦 语嫣 紫萱 欣悦 雨桐 佳琪 诗涵 梓萱"
    ),
}
PHONE_PREFIXES = _words(
    "133 135 136 137 138 139 150 151 152 155 156 157 158 159 166 173 176 177 180 181 "
    "182 183 185 186 187 188 189 191 198 199"
)
EMPLOYERS = (
    "安康市中心医院",
    "汉滨区人民法院",
    "安康市第一中学",
    "国网安康供电公司",
    "汉滨区税务局",
    "安康市自来水公司",
    "中国建设银行安康分行",
    "安康学院",
    "汉滨区市场监督管理局",
    "陕西安康高新区管委会",
)
SKILLS = (
    "水电维修",
    "理发",
    "心理疏导",
    "法律咨询",
    "医疗护理",
    "教老人用智能手机",
    "书法",
    "家电维修",
    "陪诊",
    "辅导作业",
    "急救（持证）",
    "驾驶",
)
REJECTION_REASONS = (
    "所留手机号无法接通，请核实后重新报名。",
    "本人户籍和居住地均不在本社区，请到居住地社区报名。",
    "同一时段已在其他社区登记为志愿者，请勿重复报名。",
)

COMMUNITIES = (
    {
        "name": "育才社区",
        "address": "陕西省安康市汉滨区新城街道育才路88号",
        "short": "育才",
        # (estate, kind, address, ((building, floors, index of its grid), ...))
        "estates": (
            (
                "育才花园",
                "ordinary",
                "育才路66号",
                (("1号楼", 6, 0), ("2号楼", 6, 0), ("3号楼", 7, 0)),
            ),
            ("书香苑", "ordinary", "育才路102号", (("1号楼", 11, 1), ("2号楼", 11, 1))),
            (
                "月河安置小区",
                "resettlement",
                "月河路18号",
                (("A栋", 18, 2), ("B栋", 18, 2), ("C栋", 18, 1)),
            ),
        ),
        "households_per_building": 6,
    },
    {
        "name": "兴安社区",
        "address": "陕西省安康市汉滨区新城街道兴安中路20号",
        "short": "兴安",
        "estates": (
            ("兴安家园", "ordinary", "兴安中路36号", (("1号楼", 7, 0), ("2号楼", 7, 0))),
            ("滨江小区", "ordinary", "滨江大道9号", (("5号楼", 11, 1), ("6号楼", 11, 1))),
            ("东坝安置区", "resettlement", "东坝路3号", (("1栋", 16, 2), ("2栋", 16, 2))),
        ),
        "households_per_building": 5,
    },
)
GRID_NAMES = ("第一网格", "第二网格", "第三网格")


@dataclass
class _Resident:
    """A generated person and where they live, kept while picking who plays which part."""

    person: Person
    grid: Grid
    building: Building
    frail: bool  # living alone or disabled: looked after, not recruited


@dataclass
class _Place:
    community: Community
    grids: list[Grid]
    buildings: list[Building] = field(default_factory=list)
    residents: list[_Resident] = field(default_factory=list)
    secretary: User | None = None
    armbands: int = 0


class _Demo:
    """Builds the demo rows; one instance per ``seed_demo()`` call, all choices from one RNG."""

    def __init__(self) -> None:
        self.rng = random.Random(SEED)
        self.now = utcnow().replace(hour=2, minute=0, second=0, microsecond=0)
        self.today = self.now.date()
        self.password_hash = generate_password_hash(DEMO_PASSWORD, method="scrypt")
        self.phones: set[str] = set()
        self.names: set[str] = set()

    # ----- people -------------------------------------------------------------------------
    def phone(self) -> str:
        while True:
            number = self.rng.choice(PHONE_PREFIXES) + f"{self.rng.randrange(10**8):08d}"
            if number not in self.phones:
                self.phones.add(number)
                return number

    def name(self, sex: str, birth_year: int) -> str:
        generation = "old" if birth_year < 1962 else "mid" if birth_year < 2000 else "young"
        while True:
            candidate = self.rng.choice(SURNAMES) + self.rng.choice(GIVEN[(sex, generation)])
            if candidate not in self.names:
                self.names.add(candidate)
                return candidate

    def person(self, community: Community, household: Household, sex: str, born: int) -> Person:
        person = Person(
            community_id=community.id,
            household=household,
            name=self.name(sex, born),
            # Children under sixteen have no phone of their own on record.
            phone=self.phone() if born <= self.today.year - 16 else None,
            sex=sex,
            birth_year=born,
        )
        db.session.add(person)
        return person

    def family(self, community: Community, household: Household) -> list[Person]:
        """One household's residents: elderly alone or as a couple, families, young couples.

        Ages, not birth years, are drawn, so the mix stays the same whatever the year.
        """
        rng, year = self.rng, self.today.year

        def member(sex: str, age: int) -> Person:
            return self.person(community, household, sex, year - age)

        either = ("male", "female")
        kind = rng.choices(
            ("alone", "elder_couple", "family", "three_generations", "couple", "single"),
            weights=(2, 4, 5, 2, 2, 1),
        )[0]
        if kind == "alone":
            elder = member(rng.choice(("female", "female", "male")), rng.randint(72, 90))
            elder.lives_alone = True
            elder.disabled = rng.random() < 0.25
            people = [elder]
        elif kind == "elder_couple":
            age = rng.randint(62, 84)
            people = [member("male", age), member("female", age - rng.randint(0, 4))]
            if rng.random() < 0.5:  # the children moved away: an empty nest
                for elder in people:
                    elder.empty_nest = True
                people[0].disabled = rng.random() < 0.2
        elif kind in ("family", "three_generations"):
            age = rng.randint(34, 54)
            people = [member("male", age), member("female", age - rng.randint(-2, 3))]
            for _ in range(rng.choice((1, 1, 2))):
                people.append(member(rng.choice(either), max(age - rng.randint(24, 33), 1)))
            if kind == "three_generations":
                people.append(member(rng.choice(either), age + rng.randint(25, 30)))
        elif kind == "couple":
            age = rng.randint(26, 38)
            people = [member("male", age), member("female", age - rng.randint(-1, 2))]
        else:
            people = [member(rng.choice(either), rng.randint(24, 61))]
        for person in people:
            if person.lives_alone or person.empty_nest or person.disabled:
                person.care_consent_at = self.now - timedelta(days=rng.randint(20, 400))
        return people

    # ----- places -------------------------------------------------------------------------
    def places(self, subdistrict: Subdistrict, spec: dict) -> _Place:
        community = Community(subdistrict=subdistrict, name=spec["name"], address=spec["address"])
        db.session.add(community)
        db.session.flush()
        grids = [Grid(community=community, name=spec["short"] + name) for name in GRID_NAMES]
        db.session.add_all(grids)
        place = _Place(community=community, grids=grids)
        for estate_name, kind, address, buildings in spec["estates"]:
            estate = Estate(community=community, name=estate_name, kind=kind, address=address)
            db.session.add(estate)
            for building_name, floors, grid_index in buildings:
                building = Building(
                    community_id=community.id,
                    estate=estate,
                    grid=grids[grid_index],
                    name=building_name,
                    floors=floors,
                )
                building.entrances = [
                    Entrance(community_id=community.id, name=f"{n}单元") for n in (1, 2)
                ]
                place.buildings.append(building)
                self.households(place, building, floors, spec["households_per_building"])
        for grid in grids:
            # "书香苑1号楼、2号楼；月河安置小区C栋": the buildings a grid covers, by estate.
            by_estate: dict[str, list[str]] = {}
            for building in place.buildings:
                if building.grid is grid:
                    by_estate.setdefault(building.estate.name, []).append(building.name)
            grid.description = "；".join(
                estate + "、".join(names) for estate, names in by_estate.items()
            )
        return place

    def households(self, place: _Place, building: Building, floors: int, count: int) -> None:
        """Registered dwellings: two flats a floor on each entrance (x01, x02 | x03, x04)."""
        rooms = [
            (entrance, f"{floor}{flat:02d}")
            for floor in range(1, floors + 1)
            for entrance, flats in zip(building.entrances, ((1, 2), (3, 4)), strict=True)
            for flat in flats
        ]
        for entrance, room in sorted(self.rng.sample(rooms, count), key=lambda r: r[1].zfill(5)):
            household = Household(
                community_id=place.community.id, building=building, entrance=entrance, room=room
            )
            db.session.add(household)
            for person in self.family(place.community, household):
                place.residents.append(
                    _Resident(
                        person=person,
                        grid=building.grid,
                        building=building,
                        frail=bool(person.lives_alone or person.disabled),
                    )
                )

    def age(self, oldest: int, youngest: int) -> tuple[int, int]:
        """Birth-year range for people aged ``youngest`` to ``oldest`` this year."""
        return self.today.year - oldest, self.today.year - youngest

    # ----- picking people for their parts ------------------------------------------------
    def take(
        self,
        place: _Place,
        born: tuple[int, int],
        grids: tuple[Grid, ...] | None = None,
        building: Building | None = None,
    ) -> _Resident:
        """Remove and return a random free adult born in range (and in a grid or building).

        Raises LookupError when nobody fits: the demo's sizes are then too small.
        """
        fits = [
            index
            for index, resident in enumerate(place.residents)
            if not resident.frail
            and resident.person.phone
            and born[0] <= resident.person.birth_year <= born[1]
            and (grids is None or resident.grid in grids)
            and (building is None or resident.building is building)
        ]
        if not fits:
            raise LookupError(f"no free resident born {born} in {place.community.name}")
        return place.residents.pop(self.rng.choice(fits))

    def account(self, username: str, role: str, place: _Place, resident: _Resident) -> User:
        user = User(
            username=username,
            role=role,
            community_id=place.community.id,
            person=resident.person,
            password_hash=self.password_hash,
        )
        db.session.add(user)
        return user

    def volunteer(
        self,
        place: _Place,
        resident: _Resident,
        types: tuple[str, ...],
        *,
        status: str = "approved",
        five_elder_kind: str | None = None,
        rejection_reason: str = "",
    ) -> Volunteer:
        rng = self.rng
        applied_at = self.now - timedelta(
            days=rng.randint(1, 6) if status == "pending" else rng.randint(30, 700),
            hours=rng.randint(0, 10),
        )
        volunteer = Volunteer(
            community_id=place.community.id,
            person=resident.person,
            grid=resident.grid,
            status=status,
            skills="、".join(rng.sample(SKILLS, rng.randint(1, 2))),
            availability=",".join(c for c in AVAILABILITY if rng.random() < 0.4) or "weekends",
            five_elder_kind=five_elder_kind,
            rejection_reason=rejection_reason,
            applied_at=applied_at,
        )
        volunteer.type_links = [VolunteerType(type=t) for t in types]
        if "party_member" in types:
            volunteer.employer = rng.choice(EMPLOYERS)
            volunteer.party_branch = (
                f"{volunteer.employer}{rng.choice(('第一', '第二', '机关'))}党支部"
            )
        if status != "pending":
            volunteer.decided_at = applied_at + timedelta(days=rng.randint(1, 3), hours=3)
            volunteer.decided_by = place.secretary
        # As on approval in the app: a party member's report is dated, an armband numbered.
        if status == "approved" and "party_member" in types:
            volunteer.party_reported_on = volunteer.decided_at.astimezone(LOCAL_TZ).date()
        if status == "approved" and "red_armband" in types:
            place.armbands += 1
            volunteer.armband_no = format_armband_no(place.community.id, place.armbands)
        db.session.add(volunteer)
        return volunteer


def seed_demo() -> None:
    """Add the demo subdistrict, its two communities, their people, volunteers and accounts."""
    demo = _Demo()
    subdistrict = Subdistrict(name="汉滨区新城街道")
    db.session.add(subdistrict)
    first, second = (demo.places(subdistrict, spec) for spec in COMMUNITIES)
    db.session.add(
        User(
            username="admin",
            role="subdistrict_admin",
            subdistrict=subdistrict,
            password_hash=demo.password_hash,
        )
    )
    db.session.flush()
    for place in (first, second):
        seed_catalogue(place.community.id)
    captains = _first_community(demo, first) + _second_community(demo, second)
    for place in (first, second):
        place.community.armband_seq = place.armbands
    db.session.flush()
    # A new building cannot name a new resident of its own households as captain in the same
    # flush (each row would wait for the other), so captains are set once both exist.
    for building, person in captains:
        building.captain = person
    db.session.flush()
    seed_demo_patrols(first.community)
    seed_help_demo()
    seed_points_demo()
    seed_care_demo()
    _self_registered(demo, first)


def _self_registered(demo: _Demo, place: _Place) -> None:
    """Two people who opened an account themselves and wait for the grid worker or the
    secretary to match it to a household (Manage -> Accounts to match); until then they see
    only their own requests. Their numbers are not on record."""
    for username, name, phone in (
        ("newcomer1", "陈思远", "19900001111"),
        ("newcomer2", "林晓雯", "19900002222"),
    ):
        person = Person(community_id=place.community.id, name=name)
        db.session.add(
            User(
                username=username,
                role="resident",
                community_id=place.community.id,
                person=person,
                password_hash=demo.password_hash,
                verified=False,
                signup_phone=phone,
            )
        )
    db.session.flush()


def _first_community(demo: _Demo, place: _Place) -> list[tuple[Building, Person]]:
    """Community 1: every documented account except ``admin`` and ``secretary2`` lives here.

    People who must live in a given building or grid are chosen before the rest.
    """
    age = demo.age
    g1, g2, g3 = place.grids
    place.secretary = demo.account("secretary", "secretary", place, demo.take(place, age(52, 38)))
    captains = _pick_captains(demo, place)
    for username, types, born, grid, kind in (
        ("volunteer", ("red_armband",), age(60, 30), g1, None),
        ("partymember", ("party_member",), age(50, 28), g2, None),
        ("elder", ("five_elders", "mediator"), age(80, 62), g1, "veteran"),
    ):
        resident = demo.take(place, born, grids=(grid,))
        demo.volunteer(place, resident, types, five_elder_kind=kind)
        demo.account(username, "volunteer", place, resident)

    # Pending registrations come from residents who signed up, so each has an account; six of
    # them live in the grid worker's grids, four in grid 3 which only the secretary handles.
    for n, types in enumerate(
        (
            ("red_armband",),
            ("party_member",),
            ("red_armband",),
            ("five_elders",),
            ("red_armband", "building_captain"),
            ("mediator",),
            ("party_member", "red_armband"),
            ("red_armband",),
            ("five_elders", "mediator"),
            ("red_armband",),
        ),
        start=1,
    ):
        elderly = "five_elders" in types
        resident = demo.take(
            place, age(78, 62) if elderly else age(58, 22), grids=(g1, g2) if n <= 6 else (g3,)
        )
        kind = ("teacher", "model_worker")[n % 2] if elderly else None
        demo.volunteer(place, resident, types, status="pending", five_elder_kind=kind)
        demo.account(f"applicant{n:02d}", "resident", place, resident)

    _volunteers_without_accounts(demo, place)
    gridworker = demo.account("gridworker", "grid_worker", place, demo.take(place, age(45, 26)))
    gridworker.grids = [g1, g2]
    # A plain resident: an account and a household, no volunteer record.
    demo.account("resident", "resident", place, demo.take(place, age(50, 22)))
    for n in range(1, RED_ARMBAND_VOLUNTEERS + 1):
        resident = demo.take(place, age(72, 20))
        demo.volunteer(place, resident, ("red_armband",))
        demo.account(f"volunteer{n:02d}", "volunteer", place, resident)
    return captains


def _second_community(demo: _Demo, place: _Place) -> list[tuple[Building, Person]]:
    """Community 2: its own secretary, a smaller corps of volunteers and three applicants."""
    age = demo.age
    place.secretary = demo.account("secretary2", "secretary", place, demo.take(place, age(55, 35)))
    captains = _pick_captains(demo, place)
    for _n in range(8):
        demo.volunteer(place, demo.take(place, age(70, 22)), ("red_armband",))
    _volunteers_without_accounts(demo, place)
    for n, types in enumerate((("red_armband",), ("party_member",), ("mediator",)), start=11):
        resident = demo.take(place, age(60, 22))
        demo.volunteer(place, resident, types, status="pending")
        demo.account(f"applicant{n:02d}", "resident", place, resident)
    return captains


def _volunteers_without_accounts(demo: _Demo, place: _Place) -> None:
    """Party members, the five elders, mediators and rejected applicants registered on paper."""
    age = demo.age
    for index in range(4):
        resident = demo.take(place, age(50, 25), grids=(place.grids[index % 3],))
        demo.volunteer(place, resident, ("party_member",))
    for kind in FIVE_ELDER_KINDS:
        types = (
            ("five_elders", "mediator")
            if kind in ("retired_cadre", "teacher")
            else ("five_elders",)
        )
        demo.volunteer(place, demo.take(place, age(82, 62)), types, five_elder_kind=kind)
    for _n in range(2):
        demo.volunteer(place, demo.take(place, age(65, 40)), ("mediator",))
    for reason in demo.rng.sample(REJECTION_REASONS, 2):
        resident = demo.take(place, age(60, 20))
        demo.volunteer(
            place, resident, ("red_armband",), status="rejected", rejection_reason=reason
        )


def _pick_captains(demo: _Demo, place: _Place) -> list[tuple[Building, Person]]:
    """Two buildings in three get a captain who lives there and is registered as such."""
    pairs = []
    for index, building in enumerate(place.buildings):
        if index % 3 == 2:
            continue
        resident = demo.take(place, demo.age(70, 30), building=building)
        demo.volunteer(place, resident, ("building_captain",))
        pairs.append((building, resident.person))
    return pairs
