"""A deterministic synthetic city for the load benchmark (``flask seed-bench --scale small|city``).

Shape (city; ``small`` is one subdistrict with one community, i.e. 1/100 of it):
10 subdistricts x 10 communities; per community 15 grids, 10 estates of 20 buildings (2 entrances
each), 3,500 households, 10,000 residents, 650 approved volunteers (300 red armband, 150 party
members, 200 five elders), 100 shifts per grid (every 3-4 days from 300 days back to 60 ahead,
patrols and door watches alternating, capacity 5-12) with about 9.5 sign-ups each (confirmed,
cancelled, a waitlist on some full past ones; past places attended or no-show, checked in/out
and hours recorded; upcoming shifts half to nearly full), 2,000 help requests spread over the
loop with their timelines, the default category catalogue, 8 rewards. The points ledger holds
one row per award as ``portal.points.ledger`` writes it (verified sign-up, verified request,
party member's report, three years of monthly paper-ledger imports), the secretary's
adjustments for the community's own monthly volunteer days, reversals of about 3 % of the
attendance awards, and the redemptions; accounts and tallies are summed in Python from exactly
those rows; about 80 % are listed.
No PointsRule rows: the defaults apply. Staff accounts have no Person.

City totals (seed 6): 1,000,000 people, 65,000 volunteers, 150,000 shifts, ~1.42 M sign-ups,
200,000 requests, ~1.13 M timeline events, ~2.96 M ledger rows, ~1.98 M tallies (~9.5 M rows;
100 times the small build's figures).

Accounts (password ``tongxin-bench``): ``bench_sec_<c>`` (secretary) and ``bench_gw_<c>`` (grid
worker of all 15 grids) for community id ``c``; ``bench_admin_<s>`` for subdistrict id ``s``;
``bench_vol_<n>`` (volunteer, linked to their Person) for volunteer ids 1..2,000 (city) or
1..200 (small). Every grid has upcoming shifts with free places and at least five open
neighbour-help requests nobody holds; volunteers have balances and rewards have stock.

Speed: ids are assigned in Python (no RETURNING); rows are built as tuples already in the
driver's own types (UTC text for SQLite, aware datetimes for PostgreSQL) and written per
community, in foreign-key order, with the raw driver (``executemany`` on SQLite, ``COPY`` on
PostgreSQL); a person's account and tallies are summed while their ledger rows are made and
written with their community, so memory stays flat. SQLite runs with ``synchronous=OFF`` and a
large page cache during the seed. Nothing is committed here (the command commits).
Dates are relative to ``today`` (a parameter), so two builds for the same day are identical.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from sqlalchemy import func, select, text
from werkzeug.security import generate_password_hash

from portal.core.stamps import create_triggers_sql, drop_triggers_sql
from portal.core.timeutil import LOCAL_TZ, local_to_utc
from portal.demo import EMPLOYERS, GIVEN, PHONE_PREFIXES, SKILLS, SURNAMES
from portal.demo_points import REWARDS
from portal.extensions import db
from portal.help.catalogue import DEFAULT_CATALOGUE, PUBLIC_BY_DEFAULT
from portal.patrols.codes import ALPHABET as CODE_ALPHABET
from portal.volunteers.forms import AVAILABILITY
from portal.volunteers.models import FIVE_ELDER_KINDS
from portal.volunteers.services import format_armband_no

SEED = 6
BENCH_PASSWORD = "tongxin-bench"
CHUNK = 20_000


@dataclass(frozen=True)
class Scale:
    subdistricts: int
    communities_per_subdistrict: int
    bench_volunteers: int
    grids: int = 15
    estates: int = 10
    buildings_per_estate: int = 20
    households: int = 3_500
    residents: int = 10_000
    red_armband: int = 300
    party_member: int = 150
    five_elders: int = 200
    shifts_per_grid: int = 100
    requests: int = 2_000
    open_per_grid: int = 5


SCALES = {
    "city": Scale(subdistricts=10, communities_per_subdistrict=10, bench_volunteers=2_000),
    "small": Scale(subdistricts=1, communities_per_subdistrict=1, bench_volunteers=200),
}

SUBDISTRICT_NAMES = ("新城", "江北", "老城", "建民", "关庙", "五里", "大同", "张滩", "恒口", "吉河")
COMMUNITY_NAMES = ("育才", "书香", "月河", "香溪", "兴安", "金州", "汉江", "东坝", "白庙", "南苑")
ESTATE_NAMES = (
    "阳光花园",
    "书香苑",
    "月河安置小区",
    "金色家园",
    "江南名苑",
    "幸福里",
    "和谐家园",
    "翠屏小区",
    "滨江花城",
    "安居苑",
)
RESETTLEMENT = {2, 9}  # estate indexes that are resettlement estates (易地搬迁安置)
IMPORT_MONTHS = 36  # the paper ledger carried over, before the shifts began
PAST_DAYS = 300
FUTURE_DAYS = 60
PATROL = (time(19, 30), time(21, 30))
DOOR_WATCH = (time(9, 0), time(11, 0))
HELP_TEXTS = (
    "家里老人行动不便，麻烦帮忙{0}，谢谢！",
    "独居老人需要{0}，最好这两天内。",
    "孩子在外地工作，想请志愿者帮忙{0}。",
)
REPORT_TEXTS = ("{0}，已经好几天了，请尽快处理。", "发现{0}，存在安全隐患。", "反映一下：{0}。")
VOUCHER_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
# The community's monthly volunteer days (day of month, note, party members only).
SERVICE_DAYS = (
    (5, "学雷锋志愿服务日", False),
    (10, "主题党日志愿服务", True),
    (20, "环境整治志愿服务", False),
)
REVERSAL_NOTES = ("重复登记，冲正", "签到记录有误，冲正", "本人当日未到岗，冲正")

# Insert order: every table after the tables its foreign keys point to.
# fmt: off
TABLES: dict[str, tuple[str, ...]] = {
    "subdistrict": ("id", "name"),
    "community": ("id", "subdistrict_id", "name", "address", "armband_seq"),
    "grid": ("id", "community_id", "name", "description", "created_at"),
    "estate": ("id", "community_id", "name", "kind", "address", "created_at"),
    "building": ("id", "community_id", "estate_id", "grid_id", "name", "floors", "created_at"),
    "entrance": ("id", "community_id", "building_id", "name"),
    "household": ("id", "community_id", "building_id", "entrance_id", "room", "notes",
                  "created_at"),
    "person": ("id", "community_id", "household_id", "name", "phone", "sex", "birth_year",
               "lives_alone", "empty_nest", "disabled", "care_consent_at", "created_at"),
    "user": ("id", "username", "password_hash", "role", "community_id", "subdistrict_id",
             "person_id", "session_token", "active", "created_at"),
    "grid_worker": ("grid_id", "user_id"),
    "volunteer": ("id", "community_id", "person_id", "grid_id", "status", "skills",
                  "availability", "armband_no", "employer", "party_branch", "party_reported_on",
                  "five_elder_kind", "rejection_reason", "applied_at", "decided_at",
                  "decided_by_id"),
    "volunteer_type": ("id", "volunteer_id", "type"),
    "category": ("id", "community_id", "parent_id", "code", "name_zh", "name_en", "description",
                 "kind", "handler", "time_limit_hours", "points", "position", "active",
                 "public"),
    "shift": ("id", "community_id", "grid_id", "detached", "kind", "title", "meeting_point",
              "route", "starts_at", "ends_at", "capacity", "minimum", "taken", "allowed_types",
              "notes", "points_per_hour", "status", "cancel_reason", "checkin_code",
              "created_by_id", "created_at", "updated_at"),
    "signup": ("id", "community_id", "shift_id", "person_id", "status", "waitlisted_at",
               "created_at", "cancelled_at", "checked_in_at", "checked_out_at", "attendance",
               "attendance_marked_by_id", "hours", "hours_recorded_at"),
    "help_request": ("id", "community_id", "grid_id", "category_id", "requester_id",
                     "created_by_id", "description", "household_id", "building_id", "address",
                     "preferred_time", "urgency", "status", "handler_user_id", "volunteer_id",
                     "handling_unit", "due_at", "escalation_level", "source", "reject_reason",
                     "done_note", "rating", "rating_comment", "hours", "hours_recorded_at",
                     "created_at", "updated_at", "accepted_at", "dispatched_at", "done_at",
                     "verified_at", "rated_at", "closed_at", "show_publicly"),
    "request_event": ("id", "community_id", "request_id", "actor_id", "action", "from_status",
                      "to_status", "note", "at"),
    "reward": ("id", "community_id", "name", "description", "cost", "stock", "per_person_limit",
               "available_from", "available_until", "active", "created_at", "created_by_id"),
    "redemption": ("id", "community_id", "reward_id", "person_id", "cost", "voucher_code",
                   "status", "created_at", "handed_over_at", "handed_over_by_id",
                   "cancel_reason"),
    "points_ledger": ("id", "person_id", "community_id", "kind", "source_type", "source_id",
                      "points", "hours", "ranked", "occurred_on", "note", "created_by_id",
                      "created_at"),
    "points_account": ("person_id", "community_id", "balance", "earned", "hours", "listed",
                       "listed_at"),
    "points_tally": ("person_id", "period", "community_id", "subdistrict_id", "points", "hours",
                     "activities", "last_earned_at"),
}
# fmt: on
EARNING = {"patrol", "door_watch", "duty", "help", "mediation", "party_report"}


class NotEmpty(Exception):
    """The database already holds data; the city is only built into an empty one."""


def database_is_empty() -> bool:
    """True when none of the application's tables holds a row (cache stamps are no data: a
    database emptied with DELETE keeps the versions its triggers moved)."""
    for table in db.metadata.sorted_tables:
        if table.name == "cache_stamp":
            continue
        if db.session.scalar(select(func.count()).select_from(table)):
            return False
    return True


class _Writer:
    """Buffers rows per table and writes them with the raw driver, in foreign-key order."""

    def __init__(self) -> None:
        connection = db.session.connection()
        self.sqlite = connection.dialect.name == "sqlite"
        self.raw = connection.connection.dbapi_connection
        self.rows: dict[str, list[tuple]] = defaultdict(list)
        self.counts: Counter[str] = Counter()
        self.checked: set[str] = set()
        mark = "?" if self.sqlite else "%s"
        self.sql = {
            name: f'INSERT INTO "{name}" ({", ".join(columns)}) '
            f"VALUES ({', '.join(mark for _ in columns)})"
            for name, columns in TABLES.items()
        }
        if self.sqlite:
            # The safety level cannot change inside a transaction: end the session's (it has only
            # read the empty tables), switch, and hold the write lock from here to the commit.
            cursor = self.raw.cursor()
            cursor.execute("COMMIT")
            cursor.execute("PRAGMA synchronous=OFF")
            cursor.execute("PRAGMA cache_size=-400000")
            cursor.execute("BEGIN IMMEDIATE")
            cursor.close()

    # Values in the driver's own types (the models' UTCDateTime stores naive UTC on SQLite).
    def ts(self, moment: datetime | None):
        if moment is None or not self.sqlite:
            return moment
        return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")

    def day(self, value: date | None):
        if value is None or not self.sqlite:
            return value
        return value.isoformat()

    def cents(self, value: int | None):
        if value is None:
            return None
        return value / 100 if self.sqlite else Decimal(value).scaleb(-2)

    def add(self, table: str, **values) -> None:  # noqa: ANN003
        """Buffer one row; columns left out are NULL."""
        if table not in self.checked:  # a misspelt column would silently become NULL
            unknown = values.keys() - set(TABLES[table])
            assert not unknown, (table, unknown)
            self.checked.add(table)
        self.rows[table].append(tuple(map(values.get, TABLES[table])))

    def flush(self) -> None:
        cursor = self.raw.cursor()
        for table in TABLES:
            rows = self.rows.pop(table, None)
            if not rows:
                continue
            if self.sqlite:
                for start in range(0, len(rows), CHUNK):
                    cursor.executemany(self.sql[table], rows[start : start + CHUNK])
            else:
                # COPY is several times faster than executemany on PostgreSQL.
                columns = ", ".join(TABLES[table])
                with cursor.copy(f'COPY "{table}" ({columns}) FROM STDIN') as copy:
                    for row in rows:
                        copy.write_row(row)
            self.counts[table] += len(rows)
        cursor.close()


@dataclass
class _Totals:
    community_id: int
    subdistrict_id: int
    balance: int = 0
    earned: int = 0
    hours: int = 0  # cents
    early: int = 0  # spendable before the redemption window


class _City:
    def __init__(self, scale: Scale, today: date) -> None:
        self.scale = scale
        self.rng = random.Random(SEED)
        self.today = today
        # The moment the data set stands at: 02:00 UTC (10:00 in Shanghai) of ``today``.
        self.now = datetime.combine(today, time(2, 0), tzinfo=UTC)
        self.long_ago = self.now - timedelta(days=800)
        self.w = _Writer()
        self.password_hash = generate_password_hash(BENCH_PASSWORD, method="scrypt")
        self.ids: Counter[str] = Counter()
        self.phones = 0
        self.vol_rows: list[tuple[int, int, str, datetime]] = []  # this community's
        # This community's attendance awards: (entry id, person, kind, points, hours, day,
        # created).
        self.awards: list[tuple[int, int, str, int, int, date, datetime]] = []
        self.totals: dict[int, _Totals] = {}
        self.tallies: dict[tuple[int, str], list] = {}

    def next_id(self, table: str) -> int:
        self.ids[table] += 1
        return self.ids[table]

    def token(self) -> str:
        return f"{self.rng.getrandbits(144):036x}"

    # ----- people ---------------------------------------------------------------------------
    def phone(self) -> str:
        # 7919 is prime to 10**8, so the suffixes never repeat (up to 10**8 phones).
        self.phones += 1
        suffix = (self.phones * 7919 + 12345) % 10**8
        return self.rng.choice(PHONE_PREFIXES) + f"{suffix:08d}"

    def name(self, sex: str, born: int) -> str:
        generation = "old" if born < 1962 else "mid" if born < 2000 else "young"
        return self.rng.choice(SURNAMES) + self.rng.choice(GIVEN[(sex, generation)])

    def sizes(self) -> list[int]:
        """Household sizes summing exactly to the community's residents."""
        rng, s = self.rng, self.scale
        sizes = rng.choices((1, 2, 3, 4, 5), weights=(3, 5, 5, 3, 1), k=s.households)
        total = sum(sizes)
        while total != s.residents:
            i = rng.randrange(len(sizes))
            if total > s.residents and sizes[i] > 1:
                sizes[i] -= 1
                total -= 1
            elif total < s.residents and sizes[i] < 6:
                sizes[i] += 1
                total += 1
        return sizes

    def members(self, size: int) -> list[tuple[str, int, str]]:
        """(sex, age, care) of a household's members; care is '', alone, nest or disabled."""
        rng = self.rng
        if size == 1:
            if rng.random() < 0.6:
                return [(rng.choice(("female", "female", "male")), rng.randint(70, 90), "alone")]
            return [(rng.choice(("male", "female")), rng.randint(22, 60), "")]
        if size == 2 and rng.random() < 0.55:
            age = rng.randint(60, 84)
            care = "nest" if rng.random() < 0.5 else ""
            return [("male", age, care), ("female", max(age - rng.randint(0, 4), 18), care)]
        age = rng.randint(28, 54)
        people = [("male", age, ""), ("female", age - rng.randint(-2, 3), "")]
        for n in range(size - 2):
            if n == 2:  # a fifth member is a grandparent
                people.append((rng.choice(("male", "female")), age + rng.randint(25, 30), ""))
            else:
                people.append(
                    (rng.choice(("male", "female")), max(age - rng.randint(24, 33), 1), "")
                )
        return people

    # ----- build ----------------------------------------------------------------------------
    def build(self) -> Counter[str]:
        s, w = self.scale, self.w
        community_id = 0
        for sub_index in range(s.subdistricts):
            sub_id = self.next_id("subdistrict")
            w.add("subdistrict", id=sub_id, name=f"{SUBDISTRICT_NAMES[sub_index]}街道")
            self.user(f"bench_admin_{sub_id}", "subdistrict_admin", None, sub_id, None)
            for com_index in range(s.communities_per_subdistrict):
                community_id += 1
                self.community(community_id, sub_id, sub_index, com_index)
                # A person's ledger rows all come from their own community: their account and
                # tallies are final here, and memory stays flat.
                self.accounts()
                w.flush()
        return w.counts

    def user(self, username, role, community_id, subdistrict_id, person_id) -> int:
        user_id = self.next_id("user")
        self.w.add(
            "user",
            id=user_id,
            username=username,
            password_hash=self.password_hash,
            role=role,
            community_id=community_id,
            subdistrict_id=subdistrict_id,
            person_id=person_id,
            session_token=self.token(),
            active=True,
            created_at=self.w.ts(self.long_ago),
        )
        return user_id

    def community(self, cid: int, sub_id: int, sub_index: int, com_index: int) -> None:
        s, w, rng = self.scale, self.w, self.rng
        created = w.ts(self.long_ago)
        grids = []
        for n in range(1, s.grids + 1):
            grid_id = self.next_id("grid")
            grids.append(grid_id)
            w.add(
                "grid",
                id=grid_id,
                community_id=cid,
                name=f"第{n}网格",
                description="",
                created_at=created,
            )
        secretary = self.user(f"bench_sec_{cid}", "secretary", cid, None, None)
        worker = self.user(f"bench_gw_{cid}", "grid_worker", cid, None, None)
        for grid_id in grids:
            w.add("grid_worker", grid_id=grid_id, user_id=worker)
        # Places and people.
        buildings = []  # (building_id, grid_id)
        building_count = s.estates * s.buildings_per_estate
        for e in range(s.estates):
            estate_id = self.next_id("estate")
            kind = "resettlement" if e in RESETTLEMENT else "ordinary"
            w.add(
                "estate",
                id=estate_id,
                community_id=cid,
                name=ESTATE_NAMES[e],
                kind=kind,
                address="",
                created_at=created,
            )
            for b in range(s.buildings_per_estate):
                buildings.append((self.next_id("building"), estate_id, b + 1))
        per_building = [s.households // building_count] * building_count
        for i in range(s.households - sum(per_building)):
            per_building[i] += 1
        sizes = iter(self.sizes())
        residents: dict[int, list[tuple[int, int, int, int]]] = defaultdict(list)
        candidates: list[tuple[int, int, int]] = []  # (person, grid, age) of able adults
        building_rows = []
        for index, ((building_id, estate_id, number), count) in enumerate(
            zip(buildings, per_building, strict=True)
        ):
            grid_id = grids[index * s.grids // building_count]
            floors = max(math.ceil(count / 4), rng.randint(6, 11))
            building_rows.append(building_id)
            w.add(
                "building",
                id=building_id,
                community_id=cid,
                estate_id=estate_id,
                grid_id=grid_id,
                name=f"{number}号楼",
                floors=floors,
                created_at=created,
            )
            entrances = (self.next_id("entrance"), self.next_id("entrance"))
            w.add(
                "entrance", id=entrances[0], community_id=cid, building_id=building_id, name="1单元"
            )
            w.add(
                "entrance", id=entrances[1], community_id=cid, building_id=building_id, name="2单元"
            )
            for k in range(count):
                household_id = self.next_id("household")
                flat = k % 4 + 1
                w.add(
                    "household",
                    id=household_id,
                    community_id=cid,
                    building_id=building_id,
                    entrance_id=entrances[flat > 2],
                    room=f"{k // 4 + 1}{flat:02d}",
                    notes="",
                    created_at=created,
                )
                for sex, age, care in self.members(next(sizes)):
                    person_id = self.next_id("person")
                    born = self.today.year - age
                    disabled = care != "" and rng.random() < 0.2
                    consent = (
                        w.ts(self.now - timedelta(days=rng.randint(20, 400))) if care else None
                    )
                    w.add(
                        "person",
                        id=person_id,
                        community_id=cid,
                        household_id=household_id,
                        name=self.name(sex, born),
                        phone=self.phone() if age >= 16 else None,
                        sex=sex,
                        birth_year=born,
                        lives_alone=care == "alone",
                        empty_nest=care == "nest",
                        disabled=disabled,
                        care_consent_at=consent,
                        created_at=created,
                    )
                    residents[grid_id].append((person_id, household_id, building_id, age))
                    if 18 <= age <= 75 and not care:
                        candidates.append((person_id, grid_id, age))
        name = f"{SUBDISTRICT_NAMES[sub_index]}{COMMUNITY_NAMES[com_index]}社区"
        w.add(
            "community",
            id=cid,
            subdistrict_id=sub_id,
            name=name,
            address="",
            armband_seq=s.red_armband,
        )
        grid_vols = self.volunteers_of(cid, sub_id, candidates, secretary)
        categories = self.catalogue(cid)
        self.shifts(cid, grids, grid_vols, worker)
        self.requests(cid, grids, residents, grid_vols, categories, worker)
        self.imports(cid, secretary)
        self.service_days(cid, secretary)
        self.reversals(cid, secretary)
        self.shop(cid, secretary)

    def volunteers_of(self, cid, sub_id, candidates, secretary) -> dict[int, list[int]]:
        s, w, rng = self.scale, self.w, self.rng
        chosen = rng.sample(candidates, s.red_armband + s.party_member + s.five_elders)
        types = (
            ["red_armband"] * s.red_armband
            + ["party_member"] * s.party_member
            + ["five_elders"] * s.five_elders
        )
        grid_vols: dict[int, list[int]] = defaultdict(list)
        armband = 0
        self.vol_rows = []
        self.awards = []
        for (person_id, grid_id, _age), kind in zip(chosen, types, strict=True):
            vol_id = self.next_id("volunteer")
            applied = self.now - timedelta(days=rng.randint(30, 1800), hours=rng.randint(0, 10))
            decided = applied + timedelta(days=rng.randint(1, 3), hours=3)
            employer = branch = ""
            reported = elder_kind = armband_no = None
            if kind == "party_member":
                employer = rng.choice(EMPLOYERS)
                branch = f"{employer}{rng.choice(('第一', '第二', '机关'))}党支部"
                reported = decided.astimezone(LOCAL_TZ).date()
            elif kind == "five_elders":
                elder_kind = rng.choice(FIVE_ELDER_KINDS)
            else:
                armband += 1
                armband_no = format_armband_no(cid, armband)
            availability = ",".join(c for c in AVAILABILITY if rng.random() < 0.4) or "weekends"
            w.add(
                "volunteer",
                id=vol_id,
                community_id=cid,
                person_id=person_id,
                grid_id=grid_id,
                status="approved",
                skills="、".join(rng.sample(SKILLS, rng.randint(1, 2))),
                availability=availability,
                armband_no=armband_no,
                employer=employer,
                party_branch=branch,
                party_reported_on=w.day(reported),
                five_elder_kind=elder_kind,
                rejection_reason="",
                applied_at=w.ts(applied),
                decided_at=w.ts(decided),
                decided_by_id=secretary,
            )
            w.add(
                "volunteer_type", id=self.next_id("volunteer_type"), volunteer_id=vol_id, type=kind
            )
            if vol_id <= s.bench_volunteers:
                self.user(f"bench_vol_{vol_id}", "volunteer", cid, None, person_id)
            self.totals[person_id] = _Totals(cid, sub_id)
            grid_vols[grid_id].append(person_id)
            self.vol_rows.append((vol_id, person_id, kind, applied))
            if reported is not None:
                self.ledger(
                    person_id,
                    cid,
                    kind="party_report",
                    source_type="volunteer",
                    source_id=vol_id,
                    points=20,
                    hours=0,
                    day=reported,
                    note="",
                    actor=None,
                    created=decided,
                )
        return grid_vols

    def catalogue(self, cid: int) -> list[tuple[int, str, str, str, int, int, str]]:
        """The default catalogue's rows; returns the minors (id, code, kind, handler, hours,
        points, name_zh)."""
        minors = []
        for major_position, major in enumerate(DEFAULT_CATALOGUE, start=1):
            parent = self.next_id("category")
            self.w.add(
                "category",
                id=parent,
                community_id=cid,
                code=major.code,
                name_zh=major.name_zh,
                name_en=major.name_en,
                description="",
                kind=major.kind,
                points=0,
                position=major_position * 10,
                active=True,
                public=False,
            )
            for position, m in enumerate(major.minors, start=1):
                cat = self.next_id("category")
                self.w.add(
                    "category",
                    id=cat,
                    community_id=cid,
                    parent_id=parent,
                    code=m.code,
                    name_zh=m.name_zh,
                    name_en=m.name_en,
                    description=m.description,
                    kind=major.kind,
                    handler=m.handler,
                    time_limit_hours=m.hours,
                    points=m.points,
                    position=position * 10,
                    active=True,
                    public=m.code in PUBLIC_BY_DEFAULT,
                )
                minors.append((cat, m.code, major.kind, m.handler, m.hours, m.points, m.name_zh))
        return minors

    # ----- points ---------------------------------------------------------------------------
    def ledger(
        self,
        person_id: int,
        cid: int,
        *,
        kind: str,
        source_type: str,
        source_id: int | None,
        points: int,
        hours: int,
        day: date,
        note: str,
        actor: int | None,
        created: datetime,
        ranked: bool = True,
        activities: int | None = None,
    ) -> int:
        """One ledger row as ``ledger.post_entry`` writes it (hours in cents), summed into the
        person's totals and, when ranked, their all-time, year and month tallies; its id."""
        w = self.w
        entry_id = self.next_id("points_ledger")
        w.add(
            "points_ledger",
            id=entry_id,
            person_id=person_id,
            community_id=cid,
            kind=kind,
            source_type=source_type,
            source_id=source_id,
            points=points,
            hours=w.cents(hours),
            ranked=ranked,
            occurred_on=w.day(day),
            note=note,
            created_by_id=actor,
            created_at=w.ts(created),
        )
        t = self.totals[person_id]
        t.balance += points
        t.hours += hours
        if created < self.now - timedelta(days=60):
            t.early += points
        if not ranked:
            return entry_id
        t.earned += points
        if activities is None:
            activities = 1 if kind in EARNING else 0
        for period in ("all", f"{day.year:04d}", f"{day.year:04d}-{day.month:02d}"):
            tally = self.tallies.get((person_id, period))
            if tally is None:
                tally = self.tallies[(person_id, period)] = [0, 0, 0, created]
            tally[0] += points
            tally[1] += hours
            tally[2] += activities
            if points > 0 and created > tally[3]:
                tally[3] = created
        return entry_id

    def imports(self, cid: int, secretary: int) -> None:
        """The paper ledger of the year before the shifts, carried over month by month."""
        rng = self.rng
        first = self.today - timedelta(days=PAST_DAYS)
        months = []
        year, month = first.year, first.month
        for _ in range(IMPORT_MONTHS):
            month -= 1
            if month == 0:
                year, month = year - 1, 12
            months.append(date(year, month, 15))
        for _vol_id, person_id, kind, applied in self.vol_rows:
            for day in reversed(months):
                if day < applied.date() or rng.random() < 0.15:
                    continue
                hours = rng.choice((2, 2, 4, 4, 6, 8, 10))
                created = datetime.combine(day + timedelta(days=20), time(2), tzinfo=UTC)
                self.ledger(
                    person_id,
                    cid,
                    kind="patrol" if kind == "red_armband" else "duty",
                    source_type="import",
                    source_id=day.year * 100 + day.month,
                    points=hours * 10,
                    hours=hours * 100,
                    day=day,
                    note=f"{day.year}年{day.month}月纸质台账结转",
                    actor=secretary,
                    created=created,
                )

    def service_days(self, cid: int, secretary: int) -> None:
        """The community's own volunteer days of the shift year (no shift in the portal): the
        secretary enters each participant's points the next morning as an adjustment, as
        ``ledger.adjust`` writes it (ranked, no activity counted, no source)."""
        rng = self.rng
        first = self.today - timedelta(days=PAST_DAYS)
        days = []
        year, month = first.year, first.month
        while date(year, month, 1) < self.today:
            for day_of_month, note, party in SERVICE_DAYS:
                day = date(year, month, day_of_month)
                if first <= day < self.today - timedelta(days=1):
                    days.append((day, note, party))
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        for day, note, party in days:
            created = datetime.combine(day + timedelta(days=1), time(2), tzinfo=UTC)
            for _vol_id, person_id, kind, applied in self.vol_rows:
                if applied.date() >= day or (party and kind != "party_member"):
                    continue
                if rng.random() >= (0.85 if party else 0.55):
                    continue
                hours = rng.choice((2, 2, 3, 4))
                self.ledger(
                    person_id,
                    cid,
                    kind="adjustment",
                    source_type="adjustment",
                    source_id=None,
                    points=hours * 10,
                    hours=hours * 100,
                    day=created.astimezone(LOCAL_TZ).date(),
                    note=f"{day.month}月{day.day}日{note}",
                    actor=secretary,
                    created=created,
                )

    def reversals(self, cid: int, secretary: int) -> None:
        """About 3 % of the attendance awards of the year reversed by the secretary a few days
        later, as ``ledger.reverse`` writes it; only before the redemption window, so that no
        balance ever goes below zero."""
        rng = self.rng
        window = self.now - timedelta(days=60)
        for entry_id, person_id, kind, points, hours, day, created in self.awards:
            reversed_at = created + timedelta(days=rng.randint(1, 6), hours=rng.randint(0, 8))
            if reversed_at >= window or rng.random() >= 0.03:
                continue
            self.ledger(
                person_id,
                cid,
                kind="reversal",
                source_type="entry",
                source_id=entry_id,
                points=-points,
                hours=-hours,
                day=day,
                note=rng.choice(REVERSAL_NOTES),
                actor=secretary,
                created=reversed_at,
                activities=-1 if kind in EARNING else 0,
            )
        self.awards = []

    def shop(self, cid: int, secretary: int) -> None:
        """The community's rewards, and redemptions paid from points earned before them."""
        w, rng = self.w, self.rng
        rewards = []
        for name, description, cost, stock, limit, active, window in REWARDS:
            rewards.append(
                {
                    "id": self.next_id("reward"),
                    "community_id": cid,
                    "name": name,
                    "description": description,
                    "cost": cost,
                    "stock": stock * 50,
                    "per_person_limit": limit,
                    "available_from": w.day(self.today + timedelta(days=window[0]))
                    if window
                    else None,
                    "available_until": w.day(self.today + timedelta(days=window[1]))
                    if window
                    else None,
                    "active": active,
                    "created_at": w.ts(self.long_ago),
                    "created_by_id": secretary,
                }
            )
        # On offer today: active, in stock, and no availability window (one opens tomorrow).
        offered = [r for r in rewards if r["active"] and r["stock"] and not r["available_from"]]
        for _vol_id, person_id, _kind, _applied in self.vol_rows:
            if rng.random() < 0.5:
                continue
            held: Counter[int] = Counter()
            totals = self.totals[person_id]
            for _ in range(rng.randint(1, 4)):
                reward = rng.choice(offered)
                limit = reward["per_person_limit"]
                if reward["stock"] <= 0 or totals.early < reward["cost"]:
                    continue
                if limit is not None and held[reward["id"]] >= limit:
                    continue
                held[reward["id"]] += 1
                reward["stock"] -= 1
                totals.early -= reward["cost"]
                red_id = self.next_id("redemption")
                created = self.now - timedelta(days=rng.randint(2, 59), hours=rng.randint(0, 8))
                handed = rng.random() < 0.6
                w.add(
                    "redemption",
                    id=red_id,
                    community_id=cid,
                    reward_id=reward["id"],
                    person_id=person_id,
                    cost=reward["cost"],
                    voucher_code=self.voucher(red_id),
                    status="handed_over" if handed else "issued",
                    created_at=w.ts(created),
                    handed_over_at=w.ts(created + timedelta(days=1)) if handed else None,
                    handed_over_by_id=secretary if handed else None,
                    cancel_reason="",
                )
                self.ledger(
                    person_id,
                    cid,
                    kind="redemption",
                    source_type="redemption",
                    source_id=red_id,
                    points=-reward["cost"],
                    hours=0,
                    day=created.astimezone(LOCAL_TZ).date(),
                    note=reward["name"],
                    actor=None,
                    created=created,
                    ranked=False,
                )
        for reward in rewards:  # written last, with the stock the redemptions left
            w.add("reward", **reward)

    def voucher(self, redemption_id: int) -> str:
        # An odd multiplier prime to 31 permutes 0..31**8-1: codes never repeat.
        n = (redemption_id * 1_000_003 + 7) % 31**8
        chars = []
        for _ in range(8):
            n, r = divmod(n, 31)
            chars.append(VOUCHER_ALPHABET[r])
        return "".join(chars)

    # ----- shifts ---------------------------------------------------------------------------
    def shifts(self, cid, grids, grid_vols, worker) -> None:
        s, w, rng = self.scale, self.w, self.rng
        first = self.today - timedelta(days=PAST_DAYS)
        span = PAST_DAYS + FUTURE_DAYS
        for g, grid_id in enumerate(grids, start=1):
            vols = grid_vols[grid_id]
            for k in range(s.shifts_per_grid):
                day = first + timedelta(days=k * span // s.shifts_per_grid)
                patrol = (k + g) % 2 == 0
                kind = "patrol" if patrol else "door_watch"
                start, end = PATROL if patrol else DOOR_WATCH
                starts_at, ends_at = local_to_utc(day, start), local_to_utc(day, end)
                title = f"第{g}网格{'夜间巡逻' if patrol else '挨户防'}"
                pph = 10 if patrol else 12
                capacity = rng.randint(5, 12)
                past = ends_at <= self.now
                if past:
                    confirmed = capacity - rng.choice((0, 0, 0, 1, 2))
                else:  # upcoming shifts keep free places for the sign-up benchmark
                    confirmed = rng.randint(capacity // 2, capacity - 2)
                cancelled = rng.choice((0, 1, 2, 2, 3))
                people = rng.sample(vols, min(len(vols), confirmed + cancelled))
                confirmed = min(confirmed, len(people))
                shift_id = self.next_id("shift")
                code = "".join(rng.choice(CODE_ALPHABET) for _ in range(6))
                created = w.ts(starts_at - timedelta(days=14))
                w.add(
                    "shift",
                    id=shift_id,
                    community_id=cid,
                    grid_id=grid_id,
                    detached=False,
                    kind=kind,
                    title=title,
                    meeting_point="",
                    route="[]",
                    starts_at=w.ts(starts_at),
                    ends_at=w.ts(ends_at),
                    capacity=capacity,
                    minimum=1,
                    taken=confirmed,
                    allowed_types="",
                    notes="",
                    points_per_hour=pph,
                    status="scheduled",
                    cancel_reason="",
                    checkin_code=code,
                    created_by_id=worker,
                    created_at=created,
                    updated_at=created,
                )
                # Full past shifts keep a waitlist that never moved up.
                waiting = rng.choice((0, 0, 1, 2)) if past and confirmed == capacity else 0
                extra = [p for p in vols if p not in people][:waiting]
                for i, person_id in enumerate(people + extra):
                    signup_id = self.next_id("signup")
                    signed = starts_at - timedelta(days=rng.randint(1, 10), hours=rng.randint(0, 9))
                    row = dict(
                        id=signup_id,
                        community_id=cid,
                        shift_id=shift_id,
                        person_id=person_id,
                        status="confirmed",
                        created_at=w.ts(signed),
                    )
                    if i >= len(people):
                        row.update(status="waitlisted", waitlisted_at=w.ts(signed))
                    elif i >= confirmed:
                        row.update(
                            status="cancelled", cancelled_at=w.ts(signed + timedelta(hours=5))
                        )
                    elif past and rng.random() < 0.08:
                        row.update(attendance="no_show", attendance_marked_by_id=worker)
                    elif past:
                        recorded = ends_at + timedelta(minutes=30)
                        checked_in = starts_at + timedelta(minutes=rng.randint(0, 10))
                        row.update(
                            checked_in_at=w.ts(checked_in),
                            checked_out_at=w.ts(ends_at),
                            attendance="present",
                            attendance_marked_by_id=worker,
                            hours=w.cents(200),
                            hours_recorded_at=w.ts(recorded),
                        )
                        entry_id = self.ledger(
                            person_id,
                            cid,
                            kind=kind,
                            source_type="signup",
                            source_id=signup_id,
                            points=2 * pph,
                            hours=200,
                            day=day,
                            note=title[:120],
                            actor=None,
                            created=recorded,
                        )
                        self.awards.append((entry_id, person_id, kind, 2 * pph, 200, day, recorded))
                    w.add("signup", **row)

    # ----- help requests --------------------------------------------------------------------
    def requests(self, cid, grids, residents, grid_vols, categories, worker) -> None:
        s, rng = self.scale, self.rng
        helps = [c for c in categories if c[2] == "neighbour_help"]
        reports = [c for c in categories if c[2] == "report"]
        per_grid = [s.requests // len(grids)] * len(grids)
        for i in range(s.requests - sum(per_grid)):
            per_grid[i] += 1
        for grid_id, count in zip(grids, per_grid, strict=True):
            people = residents[grid_id]
            moments = sorted(
                self.now - timedelta(minutes=rng.randint(60, PAST_DAYS * 1440))
                for _ in range(count)
            )
            for n, created in enumerate(moments):
                open_one = n >= count - s.open_per_grid
                if open_one:  # on the board: a neighbour-help request nobody holds yet
                    created = self.now - timedelta(hours=rng.randint(1, 40))
                help_kind = open_one or rng.random() < 0.4
                category = rng.choice(helps if help_kind else reports)
                self.request(
                    cid,
                    grid_id,
                    category,
                    rng.choice(people),
                    grid_vols[grid_id],
                    worker,
                    created,
                    open_one,
                )

    def request(self, cid, grid_id, category, requester, vols, worker, created, open_one) -> None:
        w, rng = self.w, self.rng
        cat_id, code, kind, handler, limit_hours, points, name = category
        person_id, household_id, building_id, _age = requester
        req_id = self.next_id("help_request")
        events = [
            ("submit", None, "submitted", worker, created, ""),
            ("route", "submitted", "submitted", None, created, f"第{grid_id}网格"),
        ]
        stamps: dict[str, datetime] = {}
        status, at = "submitted", created
        volunteer = unit = None
        handler_user = None
        hours = recorded = rating = None
        reject_reason = done_note = ""
        if open_one:
            plan = ["accept"] if rng.random() < 0.5 else []
        else:
            end = rng.choices(
                ("rated", "verified", "rejected", "cancelled", "open"), weights=(40, 35, 8, 7, 10)
            )[0]
            if end == "rejected":
                plan = ["accept", "reject"]
            elif end == "cancelled":
                plan = ["cancel"]
            elif end == "open":
                plan = ["accept", "dispatch", "complete"][: rng.randint(0, 3)]
            else:
                plan = ["accept", "dispatch", "complete", "verify", "rate"][
                    : 5 if end == "rated" else 4
                ]
        targets = {
            "accept": "accepted",
            "dispatch": "dispatched",
            "complete": "done",
            "verify": "verified",
            "rate": "rated",
            "reject": "rejected",
            "cancel": "cancelled",
        }
        for action in plan:
            step = at + timedelta(minutes=rng.randint(20, 36 * 60))
            if step >= self.now:
                break
            note = ""
            actor = worker
            if action == "accept":
                handler_user = worker
            elif action == "dispatch":
                if kind == "neighbour_help" and vols:
                    volunteer = rng.choice(vols)
                elif handler in ("property_company", "community_office"):
                    unit = handler
            elif action == "complete":
                done_note = note = "已处理完毕。"
            elif action == "reject":
                reject_reason = note = "不属于社区受理范围，已告知居民向相关部门反映。"
            elif action == "rate":
                actor = None
                rating = rng.choices((5, 4, 3, 2), weights=(60, 25, 10, 5))[0]
            elif action == "cancel":
                actor = None
                note = "问题已自行解决。"
            events.append((action, status, targets[action], actor, step, note))
            status, at = targets[action], step
            stamps[status] = step
            if action == "verify" and volunteer is not None:
                hours = rng.choice((100, 150, 200, 300))
                recorded = step
                done_at = stamps["done"]
                request_kind = "mediation" if code.startswith("dispute.") else "help"
                self.ledger(
                    volunteer,
                    cid,
                    kind=request_kind,
                    source_type="request",
                    source_id=req_id,
                    points=points,
                    hours=hours,
                    day=done_at.astimezone(LOCAL_TZ).date(),
                    note="",
                    actor=None,
                    created=step,
                )
        closed = at if status in ("verified", "rated", "rejected", "cancelled") else None
        if status == "rated":
            closed = stamps["verified"]
        text = rng.choice(HELP_TEXTS if kind == "neighbour_help" else REPORT_TEXTS).format(name)
        w.add(
            "help_request",
            id=req_id,
            community_id=cid,
            grid_id=grid_id,
            category_id=cat_id,
            requester_id=person_id,
            created_by_id=worker,
            description=text,
            household_id=household_id,
            building_id=building_id,
            address="",
            preferred_time="",
            urgency="urgent" if rng.random() < 0.1 else "normal",
            status=status,
            handler_user_id=handler_user,
            volunteer_id=volunteer,
            handling_unit=unit,
            due_at=w.ts(created + timedelta(hours=limit_hours)),
            escalation_level=0,
            source="web",
            reject_reason=reject_reason,
            done_note=done_note,
            rating=rating,
            rating_comment="谢谢！" if rating and rating >= 4 else "",
            hours=w.cents(hours),
            hours_recorded_at=w.ts(recorded),
            created_at=w.ts(created),
            updated_at=w.ts(at),
            accepted_at=w.ts(stamps.get("accepted")),
            dispatched_at=w.ts(stamps.get("dispatched")),
            done_at=w.ts(stamps.get("done")),
            verified_at=w.ts(stamps.get("verified")),
            rated_at=w.ts(stamps.get("rated")),
            closed_at=w.ts(closed),
            # A third of the public-space reports were ticked "may be shown publicly" (by id,
            # not by the generator: the rest of the city stays the same).
            show_publicly=code in PUBLIC_BY_DEFAULT and req_id % 3 == 0,
        )
        for action, before, after, actor, moment, note in events:
            w.add(
                "request_event",
                id=self.next_id("request_event"),
                community_id=cid,
                request_id=req_id,
                actor_id=actor,
                action=action,
                from_status=before,
                to_status=after,
                note=note,
                at=w.ts(moment),
            )

    # ----- accounts and tallies -------------------------------------------------------------
    def accounts(self) -> None:
        """Cached totals summed from the community's ledger rows just built; ~80 % listed."""
        w, rng = self.w, self.rng
        for person_id in sorted(self.totals):
            t = self.totals[person_id]
            listed = rng.random() < 0.8
            since = self.now - timedelta(days=rng.randint(1, 300)) if listed else None
            w.add(
                "points_account",
                person_id=person_id,
                community_id=t.community_id,
                balance=t.balance,
                earned=t.earned,
                hours=w.cents(t.hours),
                listed=listed,
                listed_at=w.ts(since),
            )
        for (person_id, period), (points, hours, activities, last) in sorted(self.tallies.items()):
            t = self.totals[person_id]
            w.add(
                "points_tally",
                person_id=person_id,
                period=period,
                community_id=t.community_id,
                subdistrict_id=t.subdistrict_id,
                points=points,
                hours=w.cents(hours),
                activities=activities,
                last_earned_at=w.ts(last),
            )
        self.totals.clear()
        self.tallies.clear()


def seed_bench(scale: str, today: date | None = None) -> Counter[str]:
    """Build the synthetic city into the (empty) database; returns rows written per table.
    Raises NotEmpty when the database holds data. Never commits."""
    if not database_is_empty():
        raise NotEmpty("the database is not empty; seed-bench only fills an empty database")
    if today is None:
        # The data stand at 02:00 UTC of ``today``: never later than the real now.
        today = (datetime.now(UTC) - timedelta(hours=2)).date()
    city = _City(SCALES[scale], today)  # on SQLite, begins the write transaction
    # Millions of rows would bump the stamps millions of times: the triggers are off while the
    # city is built, in the same transaction (a failed build puts them back). The stamps stay
    # as they were (none: version 0), which is right, nothing was cached before.
    dialect = db.session.connection().dialect.name
    for statement in drop_triggers_sql(dialect):
        db.session.execute(text(statement))
    counts = city.build()
    for statement in create_triggers_sql(dialect):
        db.session.execute(text(statement))
    if dialect == "postgresql":
        # Ids were given in Python: move each id sequence past them, or the app's next insert
        # would collide with a seeded row.
        for name, columns in TABLES.items():
            if columns[0] == "id":
                db.session.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('\"{name}\"', 'id'),"
                        f' (SELECT coalesce(max(id), 0) + 1 FROM "{name}"), false)'
                    )
                )
        db.session.execute(text("ANALYZE"))
    return counts


def digest(tables: tuple[str, ...] = ("person", "signup", "help_request", "points_ledger")) -> str:
    """A hash of a few tables' key columns in id order (proves two builds are the same)."""
    columns = {
        "person": "id, name, phone, birth_year, household_id",
        "signup": "id, shift_id, person_id, status, attendance",
        "help_request": "id, category_id, requester_id, status, volunteer_id, rating",
        "points_ledger": "id, person_id, kind, source_id, points, occurred_on",
    }
    sha = hashlib.sha256()
    for table in tables:
        for row in db.session.execute(text(f"SELECT {columns[table]} FROM {table} ORDER BY id")):
            sha.update(json.dumps([str(v) for v in row]).encode())
    return sha.hexdigest()
