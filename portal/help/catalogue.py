"""The category catalogue: the default catalogue every community starts with, and its editing.

Codes are stable and shared by every community's copy (they are the Open311 ``service_code``);
seeding adds only what a community lacks, so it can run again safely.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.orm import aliased, selectinload

from portal.core.errors import DomainError
from portal.extensions import db
from portal.help.models import HANDLERS, Category

MAX_HOURS = 8760
MAX_POINTS = 1000

# Majors whose requests speak of a person's life (neighbour help, elderly care, disability,
# health, children and family, disputes between neighbours): never public, whatever the flag.
NEVER_PUBLIC_GROUPS = ("help", "elderly", "disability", "health", "youth", "dispute")
# Public-space problems of the default catalogue (shared facilities of a building, environment,
# safety hazards): their requests may appear in Open311's public answers. Minor categories carry
# requests and so the flag. A leaking pipe may be inside a home: repair.water stays private.
# Copied, frozen, in migration c1a5e0f15a01.
PUBLIC_BY_DEFAULT = frozenset(
    {
        "repair.power", "repair.lift", "repair.lighting", "repair.door",
        "env.rubbish", "env.green", "env.noise", "env.pets",
        "safety.fire_exit", "safety.ebike", "safety.falling", "safety.suspicious",
    }
)  # fmt: skip


@dataclass(frozen=True)
class Minor:
    code: str
    name_zh: str
    name_en: str
    handler: str
    hours: int
    points: int
    description: str


@dataclass(frozen=True)
class Major:
    code: str
    name_zh: str
    name_en: str
    kind: str
    minors: tuple[Minor, ...]


def _m(code, zh, en, handler, hours, points, description) -> Minor:
    return Minor(code, zh, en, handler, hours, points, description)


GW, VP, PC, CO = HANDLERS  # grid_worker, volunteer_pool, property_company, community_office

# fmt: off
DEFAULT_CATALOGUE: tuple[Major, ...] = (
    Major("help", "家家帮", "Neighbour help", "neighbour_help", (
        _m("help.shopping", "代买代购", "Shopping for an elder", VP, 24, 10,
           "为独居、行动不便的老人代买菜、药品和日用品。"),
        _m("help.hospital", "陪同就医", "Accompany to hospital", VP, 48, 20,
           "陪同老人或病人去医院挂号、看病、取药。"),
        _m("help.repair", "小修小补", "Small repair", VP, 48, 15,
           "换灯泡、修水龙头、装挂钩等家庭小维修。"),
        _m("help.pickup", "放学接送", "Child pick-up after school", VP, 12, 10,
           "家长临时不便时，帮忙接孩子放学回家。"),
        _m("help.company", "陪伴聊天", "Companionship and a chat", VP, 72, 5,
           "上门或电话陪独居老人聊天解闷。"),
        _m("help.haircut", "上门理发", "Haircut at home", VP, 72, 10,
           "为卧床或行动不便的居民上门理发。"),
        _m("help.errand", "代办跑腿", "Running an errand", VP, 24, 8,
           "代取快递、代缴费用、代办简单事务。"),
    )),
    Major("repair", "物业报修", "Property repair", "report", (
        _m("repair.water", "水管漏水", "Water pipe leak", PC, 4, 0,
           "楼内或户外水管破裂、漏水、停水。"),
        _m("repair.power", "停电断电", "Power failure", PC, 4, 0,
           "楼道或单元停电、电表箱故障。"),
        _m("repair.lift", "电梯故障", "Lift out of order", PC, 2, 0,
           "电梯停运、困人或异响。"),
        _m("repair.lighting", "楼道灯坏", "Stair lighting broken", PC, 24, 0,
           "楼道、单元门口照明灯不亮。"),
        _m("repair.door", "门禁门锁", "Entrance door or lock", PC, 24, 0,
           "单元门、门禁、信报箱损坏。"),
    )),
    Major("env", "环境卫生", "Environment", "report", (
        _m("env.rubbish", "垃圾清运", "Rubbish not collected", PC, 24, 0,
           "垃圾桶满溢、建筑垃圾乱堆、垃圾分类问题。"),
        _m("env.green", "绿化养护", "Greening", PC, 72, 0,
           "树木倒伏、枝叶遮挡、绿地毁坏。"),
        _m("env.noise", "噪音扰民", "Noise nuisance", GW, 24, 0,
           "施工、商铺、广场舞等噪音影响休息。"),
        _m("env.pets", "宠物管理", "Pets", GW, 48, 0,
           "犬只未拴绳、宠物粪便、流浪动物。"),
    )),
    Major("safety", "安全隐患", "Public safety hazard", "report", (
        _m("safety.fire_exit", "消防通道堵塞", "Fire exit blocked", GW, 4, 0,
           "楼道堆物、消防通道被占用或车辆堵塞。"),
        _m("safety.ebike", "电动车入户充电", "E-bike charging indoors", GW, 4, 0,
           "电动自行车进楼入户、飞线充电。"),
        _m("safety.falling", "高空坠物", "Falling objects", GW, 4, 0,
           "高空抛物、外墙脱落、空调外机松动。"),
        _m("safety.suspicious", "可疑人员", "Suspicious person", GW, 2, 0,
           "小区内出现可疑人员或可疑情况。"),
    )),
    Major("dispute", "邻里纠纷", "Neighbour dispute", "report", (
        _m("dispute.noise", "邻里噪音", "Noise between neighbours", GW, 48, 0,
           "楼上楼下、隔壁之间的噪音矛盾。"),
        _m("dispute.leak", "楼上渗水", "Water leak between floors", GW, 48, 0,
           "楼上漏水渗到楼下引起的纠纷。"),
        _m("dispute.parking", "停车纠纷", "Parking dispute", GW, 48, 0,
           "车位占用、乱停车引起的纠纷。"),
    )),
    Major("policy", "政策咨询", "Policy question", "report", (
        _m("policy.pension", "养老保险", "Pension", CO, 72, 0,
           "养老保险缴费、领取、资格认证等问题。"),
        _m("policy.medical", "医疗保险", "Medical insurance", CO, 72, 0,
           "医保参保、报销、异地就医备案等问题。"),
        _m("policy.residence", "户籍居住证", "Residence registration", CO, 72, 0,
           "户口迁移、居住证办理、证明开具。"),
        _m("policy.subsidy", "补贴申请", "Subsidies", CO, 72, 0,
           "低保、高龄津贴、困难补助等申请。"),
    )),
    Major("elderly", "养老服务", "Elderly care", "report", (
        _m("elderly.meals", "助餐服务", "Meals for the elderly", CO, 48, 0,
           "老年助餐点就餐、送餐上门。"),
        _m("elderly.visit", "上门探访", "Home visit", GW, 48, 0,
           "请网格员上门看望独居、空巢老人。"),
        _m("elderly.alarm", "紧急呼叫设备", "Emergency call device", CO, 24, 0,
           "一键呼叫、烟感等适老设备安装和故障。"),
    )),
    Major("youth", "儿童青少年", "Children and youth", "report", (
        _m("youth.homework", "课后托管", "After-school care", CO, 72, 0,
           "“四点半课堂”等课后托管服务。"),
        _m("youth.protection", "未成年人保护", "Child protection", GW, 4, 0,
           "儿童无人看护、受到伤害等情况。"),
        _m("youth.activity", "假期活动", "Holiday activities", CO, 72, 0,
           "寒暑假社区活动报名和咨询。"),
    )),
    Major("jobs", "就业创业", "Employment", "report", (
        _m("jobs.seeking", "求职登记", "Job seeking", CO, 72, 0,
           "失业登记、岗位推荐、招聘信息。"),
        _m("jobs.training", "技能培训", "Skills training", CO, 72, 0,
           "职业技能培训报名与补贴。"),
        _m("jobs.wages", "欠薪求助", "Unpaid wages", CO, 48, 0,
           "被拖欠工资需要协调和法律帮助。"),
    )),
    Major("disability", "助残服务", "Disability support", "report", (
        _m("disability.aids", "辅具申请", "Assistive devices", CO, 72, 0,
           "轮椅、助行器等辅具的申请和适配。"),
        _m("disability.access", "无障碍设施", "Accessibility", PC, 72, 0,
           "坡道、扶手等无障碍设施缺失或损坏。"),
        _m("disability.card", "残疾证办理", "Disability card", CO, 72, 0,
           "残疾证申领、换证和相关补贴。"),
    )),
    Major("health", "卫生健康", "Health and epidemic", "report", (
        _m("health.vaccine", "疫苗接种", "Vaccination", CO, 72, 0,
           "疫苗接种时间、地点和预约咨询。"),
        _m("health.epidemic", "疫情报告", "Infectious disease report", GW, 2, 0,
           "发现发热、传染病等需要报告的情况。"),
        _m("health.doctor", "家庭医生签约", "Family doctor", CO, 72, 0,
           "家庭医生签约和上门随访。"),
    )),
    Major("other", "建议及其他", "Suggestion and other", "report", (
        _m("other.suggestion", "意见建议", "Suggestion", CO, 168, 0,
           "对社区工作和环境的意见建议。"),
        _m("other.praise", "表扬感谢", "Praise and thanks", CO, 168, 0,
           "表扬社区工作人员、志愿者和好邻居。"),
        _m("other.other", "其他诉求", "Other request", GW, 72, 0,
           "以上类别都不适合的诉求。"),
    )),
)
# fmt: on


def seed_catalogue(community_id: int) -> int:
    """Add the default catalogue's categories that the community lacks; returns how many.

    Matches by code, so running it again adds nothing and keeps a secretary's edits.
    """
    existing = {
        category.code: category
        for category in db.session.scalars(
            select(Category).where(Category.community_id == community_id)
        )
    }
    added = 0
    for major_position, major in enumerate(DEFAULT_CATALOGUE, start=1):
        parent = existing.get(major.code)
        if parent is None:
            parent = Category(
                community_id=community_id,
                code=major.code,
                name_zh=major.name_zh,
                name_en=major.name_en,
                kind=major.kind,
                position=major_position * 10,
            )
            db.session.add(parent)
            db.session.flush()
            added += 1
        for position, minor in enumerate(major.minors, start=1):
            if minor.code in existing:
                continue
            db.session.add(
                Category(
                    community_id=community_id,
                    parent_id=parent.id,
                    code=minor.code,
                    name_zh=minor.name_zh,
                    name_en=minor.name_en,
                    description=minor.description,
                    kind=major.kind,
                    handler=minor.handler,
                    time_limit_hours=minor.hours,
                    points=minor.points,
                    position=position * 10,
                    public=minor.code in PUBLIC_BY_DEFAULT,
                )
            )
            added += 1
    db.session.flush()
    return added


def group_code(category: Category) -> str:
    """The code of the category's major (its own code for a major): ``help`` for help.shopping."""
    return category.code.split(".", 1)[0]


def may_be_public(category: Category) -> bool:
    """Whether the category may be made public: a report category outside the groups that are
    never public (neighbour help, care, disability, health, children and family, disputes)."""
    return category.kind == "report" and group_code(category) not in NEVER_PUBLIC_GROUPS


def _never_public() -> str:
    return _(
        "Requests of this category speak of residents' lives (help, care, health, family or"
        " disputes): they can never be public."
    )


def set_public(category: Category, public: bool) -> Category:
    """Let (or stop) the category's requests appear in Open311's public answers; flushes.

    Raises DomainError({"public": ...}) for a category that may never be public.
    """
    if public and not may_be_public(category):
        raise DomainError({"public": _never_public()})
    category.public = bool(public)
    db.session.flush()
    return category


# --- reading -----------------------------------------------------------------------------------


def list_majors(community_id: int) -> list[Category]:
    """The community's major categories in order, each with ``minors`` (in order) attached."""
    majors = list(
        db.session.scalars(
            select(Category)
            .where(Category.community_id == community_id, Category.parent_id.is_(None))
            .order_by(Category.position, Category.id)
        )
    )
    minors = db.session.scalars(
        select(Category)
        .where(Category.community_id == community_id, Category.parent_id.is_not(None))
        .order_by(Category.position, Category.id)
    )
    by_parent: dict[int, list[Category]] = {major.id: [] for major in majors}
    for minor in minors:
        by_parent.setdefault(minor.parent_id, []).append(minor)
    for major in majors:
        major.minors = by_parent[major.id]
    return majors


def active_minors(community_id: int) -> list[Category]:
    """Minor categories offered for new requests: active, under an active major."""
    parent = aliased(Category)
    return list(
        db.session.scalars(
            select(Category)
            .join(parent, parent.id == Category.parent_id)
            .options(selectinload(Category.parent))
            .where(
                Category.community_id == community_id,
                Category.active.is_(True),
                parent.active.is_(True),
            )
            .order_by(parent.position, parent.id, Category.position, Category.id)
        )
    )


# --- editing -----------------------------------------------------------------------------------


def _check_fields(
    name_zh: str, name_en: str, description: str, errors: dict[str, str]
) -> tuple[str, str, str]:
    name_zh, name_en, description = name_zh.strip(), name_en.strip(), description.strip()
    if not name_zh:
        errors["name_zh"] = _("Enter the Chinese name.")
    elif len(name_zh) > 60:
        errors["name_zh"] = _("At most %(n)d characters.", n=60)
    if not name_en:
        errors["name_en"] = _("Enter the English name.")
    elif len(name_en) > 80:
        errors["name_en"] = _("At most %(n)d characters.", n=80)
    if len(description) > 300:
        errors["description"] = _("At most %(n)d characters.", n=300)
    return name_zh, name_en, description


def _check_minor(handler: str | None, hours: int | None, points: int | None, errors: dict) -> None:
    if handler not in HANDLERS:
        errors["handler"] = _("Choose who handles requests of this category.")
    if hours is None or not 1 <= hours <= MAX_HOURS:
        errors["time_limit_hours"] = _(
            "The time limit must be between 1 and %(max)d hours.", max=MAX_HOURS
        )
    if points is None or not 0 <= points <= MAX_POINTS:
        errors["points"] = _("Points must be between 0 and %(max)d.", max=MAX_POINTS)


def _new_code(community_id: int, prefix: str) -> str:
    """A code not used in the community yet: ``<prefix>.custom<n>``."""
    count = db.session.scalar(
        select(func.count(Category.id)).where(Category.community_id == community_id)
    )
    n = (count or 0) + 1
    while db.session.scalar(
        select(Category.id).where(
            Category.community_id == community_id, Category.code == f"{prefix}.custom{n}"
        )
    ):
        n += 1
    return f"{prefix}.custom{n}"


def update_category(
    category: Category,
    *,
    name_zh: str,
    name_en: str,
    description: str,
    handler: str | None,
    time_limit_hours: int | None,
    points: int | None,
    active: bool,
    public: bool | None = None,
) -> Category:
    """Change a category; a major keeps no handler, time limit or points; ``public`` None
    leaves the Open311 flag as it is.

    Raises DomainError naming each invalid field. Deactivating only hides it from new requests.
    """
    errors: dict[str, str] = {}
    name_zh, name_en, description = _check_fields(name_zh, name_en, description, errors)
    if category.parent_id is not None:
        _check_minor(handler, time_limit_hours, points, errors)
    if public and not may_be_public(category):
        errors["public"] = _never_public()
    if errors:
        raise DomainError(errors)
    category.name_zh, category.name_en, category.description = name_zh, name_en, description
    category.active = active
    if category.parent_id is not None:
        category.handler = handler
        category.time_limit_hours = time_limit_hours
        category.points = points or 0
    if public is not None:
        category.public = public
    db.session.flush()
    return category


def add_minor(
    major: Category,
    *,
    name_zh: str,
    name_en: str,
    description: str,
    handler: str | None,
    time_limit_hours: int | None,
    points: int | None,
    public: bool = False,
) -> Category:
    """Add a minor category at the end of ``major``; it takes the major's kind.

    Raises DomainError naming each invalid field.
    """
    if major.parent_id is not None:
        raise DomainError({"_": _("Minor categories can only be added under a major category.")})
    errors: dict[str, str] = {}
    name_zh, name_en, description = _check_fields(name_zh, name_en, description, errors)
    _check_minor(handler, time_limit_hours, points, errors)
    if public and not may_be_public(major):
        errors["public"] = _never_public()
    if errors:
        raise DomainError(errors)
    last = db.session.scalar(
        select(func.max(Category.position)).where(Category.parent_id == major.id)
    )
    category = Category(
        community_id=major.community_id,
        parent_id=major.id,
        code=_new_code(major.community_id, major.code),
        name_zh=name_zh,
        name_en=name_en,
        description=description,
        kind=major.kind,
        handler=handler,
        time_limit_hours=time_limit_hours,
        points=points or 0,
        position=(last or 0) + 10,
        public=bool(public),
    )
    db.session.add(category)
    db.session.flush()
    return category


def add_major(
    community_id: int, *, name_zh: str, name_en: str, description: str, kind: str
) -> Category:
    """Add a major category at the end of the community's catalogue.

    Raises DomainError naming each invalid field.
    """
    errors: dict[str, str] = {}
    name_zh, name_en, description = _check_fields(name_zh, name_en, description, errors)
    if kind not in ("neighbour_help", "report"):
        errors["kind"] = _("Choose the kind of requests.")
    if errors:
        raise DomainError(errors)
    last = db.session.scalar(
        select(func.max(Category.position)).where(
            Category.community_id == community_id, Category.parent_id.is_(None)
        )
    )
    category = Category(
        community_id=community_id,
        code=_new_code(community_id, "major"),
        name_zh=name_zh,
        name_en=name_en,
        description=description,
        kind=kind,
        position=(last or 0) + 10,
    )
    db.session.add(category)
    db.session.flush()
    return category


HANDLER_LABELS = {
    "grid_worker": _l("Grid worker"),
    "volunteer_pool": _l("Volunteer pool"),
    "property_company": _l("Property company"),
    "community_office": _l("Community office"),
}
KIND_LABELS = {"neighbour_help": _l("Neighbour help"), "report": _l("Report a problem")}


def category_name(category: Category) -> str:
    """The name in the UI language: English when it is English, else Chinese."""
    return category.name_en if str(get_locale()).startswith("en") else category.name_zh
