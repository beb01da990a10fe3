"""Demo requests for both communities: every state of the loop 下—接—派—验—评, some overdue.

Each request is submitted through ``portal.help.intake.create_request`` (so routing and the clock
work as in the app) and moved on through ``portal.help.actions.perform`` by the people who would
act: the grid worker or secretary, the volunteer holding it, the resident. Every step has a fixed
time in the past, so the timelines read naturally. The open help board of the demo ``volunteer``'s
grid has a few neighbour-help requests, ``volunteer`` holds one, and the demo ``resident`` has a
request done and waiting for their confirmation. Overdue requests are escalated (督办) at the end.

Deterministic choices (``random.Random(2026)``); adds and flushes, never commits.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select

from portal.auth.models import User
from portal.core.timeutil import now_utc
from portal.extensions import db
from portal.help.actions import escalate_overdue, perform
from portal.help.intake import create_request
from portal.help.models import Category, HelpRequest
from portal.people.models import Person
from portal.places.models import Building, Community, Grid, Household
from portal.volunteers.models import Volunteer

SEED = 2026
BEHALF = "behalf"  # submitted by the grid worker for a resident of grid 1 without an account


@dataclass(frozen=True)
class Step:
    after: int  # minutes after the previous step
    action: str
    actor: str  # "staff", "requester", "holder", or a username
    data: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Scene:
    requester: str  # a username, or BEHALF
    code: str
    description: str
    preferred_time: str
    hours_ago: int
    steps: tuple[Step, ...] = ()
    urgency: str = "normal"
    show_publicly: bool = False  # the resident ticked "may be shown publicly"


def _s(after: int, action: str, actor: str = "staff", **data: str) -> Step:
    return Step(after, action, actor, tuple(data.items()))


# fmt: off
# Community 1 (育才社区): the grid worker works grids 1 and 2; grid 3 is the secretary's.
FIRST: tuple[Scene, ...] = (
    # The help board of grid 1 (the demo volunteer's grid): open and unheld.
    Scene(BEHALF, "help.shopping",
          "独居老人，腿脚不便下不了楼，想请邻居帮忙买点青菜、鸡蛋和一袋米，钱当面给。",
          "今天下午", 5),
    Scene(BEHALF, "help.company",
          "老伴去年走了，子女在外地打工，老人想有人每周来陪着说说话、读读报。",
          "工作日上午", 30, (_s(40, "accept"),)),
    Scene(BEHALF, "help.errand",
          "帮老人去邮政网点取一个包裹，再代缴这个月的燃气费，老人不会用手机支付。",
          "这周末", 2),
    # Held by the demo volunteer, taken from the board.
    Scene(BEHALF, "help.hospital",
          "老人周四上午要去市中心医院复查血压，子女不在身边，想请人陪同挂号、取药。",
          "周四上午8点", 20, (_s(90, "claim", "volunteer"),)),
    # The demo resident: one waiting for their confirmation, one rated, one just sent.
    Scene("resident", "help.repair",
          "卫生间水龙头一直滴水，怎么拧都拧不紧，想请会修的邻居帮忙换个阀芯。",
          "晚上7点以后", 26,
          (_s(35, "accept"), _s(25, "dispatch", volunteer="volunteer03"),
           _s(150, "complete", "holder", note="已更换阀芯，放水试了十分钟，不再滴水。"))),
    Scene("resident", "help.pickup",
          "周三我要加班，想请邻居下午4点到育才小学门口接孩子回家，孩子上二年级，叫乐乐。",
          "周三下午4点", 200,
          (_s(20, "accept"), _s(30, "dispatch", volunteer="volunteer"),
           _s(75, "complete", "holder", note="4点准时接到孩子，已送到家，交给了奶奶。"),
           _s(60, "confirm", "requester"),
           _s(10, "rate", "requester", rating="5", comment="志愿者很准时，孩子安全到家，谢谢！"))),
    Scene("resident", "repair.lighting",
          "3号楼2单元三楼楼道灯不亮好几天了，晚上老人上下楼看不清，怕摔跤。",
          "白天都可以", 3, show_publicly=True),
    # Reports from other residents.
    Scene("applicant01", "repair.water",
          "厨房下水管接口漏水，楼下邻居说天花板都渗水了，请物业尽快来看看。",
          "越快越好", 9,
          (_s(15, "accept"), _s(10, "dispatch", unit="property_company")), "urgent"),
    Scene("applicant02", "env.noise",
          "小区门口的烧烤摊每天营业到凌晨一两点，吵得老人和孩子睡不着觉。",
          "晚上10点后可以来看", 52, (_s(60, "accept"),)),
    Scene("applicant03", "dispute.noise",
          "楼上住户晚上十一点后经常拖动桌椅、蹦跳，已经沟通过两次没有改善，希望有人出面调解。",
          "周末", 130,
          (_s(45, "accept"), _s(30, "dispatch", volunteer="elder"),
           _s(180, "complete", "holder",
              note="双方坐下来谈了，楼上答应晚上十点后铺地垫、不再拖动桌椅。"),
           _s(300, "verify", note="回访楼下住户，这两天晚上安静多了。"))),
    Scene("applicant04", "policy.pension",
          "我今年刚满60岁，想问养老金领取资格认证要带哪些材料，能不能在手机上办？",
          "上午", 100,
          (_s(50, "accept"), _s(15, "dispatch", unit="community_office"),
           _s(40, "complete",
              note="已电话告知：带身份证和社保卡到社区便民服务站办理，也可以用手机App刷脸认证。"),
           _s(120, "confirm", "requester"),
           _s(5, "rate", "requester", rating="4", comment="说得很清楚，就是电话等了一会儿。"))),
    Scene("applicant05", "other.other",
          "小区西门外路边停着一辆旧面包车，半年没人动过，想请社区帮忙拖走。",
          "", 80,
          (_s(90, "reject",
              reason="车辆停在市政道路上，归交警部门管理；已告知可拨打12122反映。"),)),
    Scene("applicant06", "help.haircut",
          "父亲中风后卧床，头发很长了，想请会理发的志愿者上门帮忙理一下。",
          "周六上午", 60,
          (_s(30, "accept"),
           _s(600, "cancel", "requester", reason="家里人已经请理发师上门理过了，谢谢。"))),
    Scene("applicant07", "repair.lift",
          "A栋电梯这两天总在12楼停住不开门，昨天有人被困了十几分钟。",
          "尽快", 30,
          (_s(10, "accept"), _s(10, "dispatch", unit="property_company"),
           _s(200, "complete", note="物业已更换门机控制板，电梯经检测合格，恢复运行。"),
           _s(90, "verify")), "urgent", show_publicly=True),
    Scene("applicant08", "elderly.visit",
          "隔壁的老奶奶一个人住，这三天没见她出门，敲门也没人应，担心她出什么事。",
          "今天", 240,
          (_s(10, "accept"), _s(10, "dispatch", volunteer="volunteer05"),
           _s(55, "complete", "holder", note="老人感冒在床，已陪她吃了药，联系上了她女儿。"),
           _s(90, "confirm", "requester"),
           _s(20, "rate", "requester", rating="5", comment="太及时了，老人没事就好。")),
          "urgent"),
    Scene("applicant09", "env.rubbish",
          "月河安置小区东门的垃圾桶满了两天没人清运，味道很大，苍蝇也多。",
          "", 60, show_publicly=True),
    Scene("applicant10", "youth.homework",
          "孩子放学后家里没人，想报名社区的“四点半课堂”，请问还有名额吗？",
          "工作日下午", 1),
)

# Community 2 (兴安社区): no grid worker; the secretary handles everything.
SECOND: tuple[Scene, ...] = (
    Scene("applicant11", "repair.lighting",
          "5号楼1单元四楼到六楼的楼道灯都不亮了，晚上只能打手机电筒上楼。",
          "", 150,
          (_s(30, "accept"), _s(20, "dispatch", unit="property_company"),
           _s(240, "complete", note="物业已更换3个声控灯。"),
           _s(180, "confirm", "requester"),
           _s(15, "rate", "requester", rating="4", comment="修得挺快，就是第一次打电话没人接。")),
          show_publicly=True),
    Scene("applicant11", "help.shopping",
          "家里老人发烧在床，我在外地出差，想请邻居帮忙买盒退烧药送上门。",
          "今天", 4, (), "urgent"),
    Scene("applicant11", "env.pets",
          "楼下有人遛狗不拴绳，孩子被吓哭了好几次。",
          "", 90,
          (_s(120, "reject", reason="同一问题已有另一条诉求在处理，本条不再重复办理。"),)),
    Scene("applicant12", "dispute.parking",
          "我家的车位经常被外来车辆占用，下班回来没地方停，打电话也找不到车主。",
          "晚上", 70, (_s(180, "accept"),)),
    Scene("applicant12", "help.repair",
          "家里卧室的灯泡坏了，老人够不着，想请人帮忙换一下。",
          "下午", 10, (_s(30, "accept"), _s(20, "dispatch", volunteer="*"))),
    Scene("applicant12", "env.green",
          "小区门口大树的树枝挡住了路灯，晚上路上很黑，想请人修剪一下。",
          "", 120,
          (_s(60, "accept"), _s(1400, "cancel", "requester", reason="物业已经来修剪了。")),
          show_publicly=True),
    Scene("applicant13", "policy.medical",
          "母亲在西安住院，想问异地就医备案怎么办理，回来能不能报销？",
          "上午", 48,
          (_s(40, "accept"), _s(10, "dispatch", unit="community_office"),
           _s(90, "complete",
              note="已告知：在手机上办理异地就医备案，带上住院发票和病历回来报销。"))),
    Scene("applicant13", "help.company",
          "父亲一个人住，平时爱下象棋，想请志愿者每周来陪他下两盘。",
          "周末下午", 170,
          (_s(60, "accept"), _s(30, "dispatch", volunteer="*"),
           _s(140, "complete", note="陪老人下了两个钟头象棋，约好下周六再来。"),
           _s(200, "verify"))),
)
# fmt: on


class _HelpDemo:
    def __init__(self, community: Community, scenes: tuple[Scene, ...], rng: random.Random):
        self.community = community
        self.scenes = scenes
        self.rng = rng
        self.now = now_utc().replace(second=0, microsecond=0)
        users = db.session.scalars(
            select(User).where(User.community_id == community.id).order_by(User.id)
        ).all()
        self.by_name = {u.username: u for u in users}
        self.by_person = {u.person_id: u for u in users if u.person_id is not None}
        self.secretary = next(u for u in users if u.role == "secretary")
        self.gridworker = next((u for u in users if u.role == "grid_worker"), None)
        self.categories = {
            c.code: c
            for c in db.session.scalars(
                select(Category).where(Category.community_id == community.id)
            )
        }
        self.volunteers = db.session.scalars(
            select(Volunteer)
            .where(Volunteer.community_id == community.id, Volunteer.status == "approved")
            .order_by(Volunteer.id)
        ).all()
        self.behalf = self._behalf_residents()

    def _behalf_residents(self) -> list[Person]:
        """Grid 1's oldest residents without an account (alone first), for the grid worker."""
        if self.gridworker is None:
            return []
        first_grid = db.session.scalar(
            select(Grid.id).where(Grid.community_id == self.community.id).order_by(Grid.id)
        )
        people = db.session.scalars(
            select(Person)
            .join(Household, Household.id == Person.household_id)
            .join(Building, Building.id == Household.building_id)
            .where(Building.grid_id == first_grid, Person.phone.is_not(None))
            .order_by(Person.lives_alone.desc(), Person.birth_year, Person.id)
        ).all()
        people = [p for p in people if p.id not in self.by_person]
        return people[:6]

    def user(self, actor: str, req: HelpRequest) -> User:
        if actor == "staff":
            handler = db.session.get(User, req.handler_user_id) if req.handler_user_id else None
            return handler or self.secretary
        if actor == "requester":
            return self.by_person.get(req.requester_id) or db.session.get(User, req.created_by_id)
        if actor == "holder":
            return self.by_person[req.volunteer_id]
        return self.by_name[actor]

    def dispatch_data(self, data: dict[str, str]) -> dict[str, str]:
        if "unit" in data:
            return data
        name = data["volunteer"]
        if name == "*":
            volunteer = self.rng.choice(self.volunteers)
        else:
            person_id = self.by_name[name].person_id
            volunteer = next(v for v in self.volunteers if v.person_id == person_id)
        return {"volunteer_id": str(volunteer.id)}

    def play(self, scene: Scene) -> HelpRequest:
        at = self.now - timedelta(hours=scene.hours_ago)
        if scene.requester == BEHALF:
            submitter, resident = self.gridworker, self.behalf.pop(0).name
        else:
            submitter, resident = self.by_name[scene.requester], ""
        req, _photos = create_request(
            submitter,
            category_id=self.categories[scene.code].id,
            description=scene.description,
            where="household",
            preferred_time=scene.preferred_time,
            urgency=scene.urgency,
            resident=resident,
            now=at,
            show_publicly=scene.show_publicly,
        )
        for step in scene.steps:
            at += timedelta(minutes=step.after)
            if at >= self.now:
                raise ValueError(f"demo request {scene.code}: step {step.action} in the future")
            data = dict(step.data)
            if step.action == "dispatch":
                data = self.dispatch_data(data)
            perform(req, step.action, self.user(step.actor, req), data, now=at)
        return req

    def build(self) -> None:
        for scene in self.scenes:
            self.play(scene)


def seed_help_demo() -> None:
    """Add the demo requests of both communities, then escalate the overdue ones once."""
    rng = random.Random(SEED)
    communities = db.session.scalars(select(Community).order_by(Community.id)).all()[:2]
    for community, scenes in zip(communities, (FIRST, SECOND), strict=True):
        _HelpDemo(community, scenes, rng).build()
    db.session.flush()
    escalate_overdue(now_utc().replace(second=0, microsecond=0))
    db.session.flush()
