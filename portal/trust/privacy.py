"""Personal data under PIPL: consents, guardians of minors, revealing a phone, downloading one's
data and erasure.

Services add and flush, never commit; each writes its own audit row. Consents are rows that
are never deleted: withdrawing sets ``withdrawn_at``, and its effect (care flags cleared,
leaderboard listing stopped) happens in the same transaction.
"""

from __future__ import annotations

import secrets
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import or_, select, update
from sqlalchemy.orm import joinedload
from werkzeug.security import generate_password_hash

from portal.auth.models import User
from portal.certificates.models import Certificate
from portal.core.errors import DomainError
from portal.core.timeutil import local_today
from portal.core.validators import mask_name, normalise_phone
from portal.database import utcnow
from portal.extensions import db
from portal.help.models import Category, HelpRequest, RequestEvent
from portal.notifications.models import Notification
from portal.patrols.models import DoorVisit, PatrolReport, Shift, Signup
from portal.people.models import CARE_FLAGS, Person
from portal.places.models import Building, Household
from portal.points.models import PointsAccount, PointsEntry
from portal.rewards.models import Redemption, Reward
from portal.trust import audit
from portal.trust.models import Consent
from portal.volunteers.models import Volunteer

# The privacy notice a consent was given under (templates/trust/privacy/_notice.html).
NOTICE_VERSION = "2026-12"
# PIPL art. 28/31: personal information of a child under 14 is handled with a guardian's consent.
MINOR_AGE = 14
ADULT_AGE = 18
# Stored, not shown through gettext: the anonymised name is data, the same in every language.
ERASED_NAME = "已注销"
# Who may erase their own record at once; staff accounts are work accounts, closed by the office.
SELF_ERASING_ROLES = ("resident", "volunteer")


# --- minors and guardians ---------------------------------------------------------------------


def may_be_minor(birth_year: int | None, today: date | None = None) -> bool:
    """True when a person born in ``birth_year`` may still be under 14 on ``today``.

    Only the year is known, so someone who turns 14 this year counts as a minor until the
    next year (the cautious reading: a guardian is asked for rather than missed)."""
    if birth_year is None:
        return False
    year = (today or local_today()).year
    return year - birth_year <= MINOR_AGE


def _may_be_under_18(birth_year: int | None) -> bool:
    return birth_year is not None and local_today().year - birth_year <= ADULT_AGE


def find_guardian(community_id: int, query: str, *, exclude_person_id: int | None) -> Person:
    """The adult of the community named by ``query`` (a full phone number or an exact name).

    Raises DomainError on the ``guardian`` field when nobody or several people match, or when
    the match is the minor themselves, erased, or not an adult."""
    query = (query or "").strip()
    digits = normalise_phone(query)
    candidates = list(
        db.session.scalars(
            select(Person)
            .where(
                Person.community_id == community_id,
                Person.erased_at.is_(None),
                or_(Person.phone == digits, Person.name == query),
            )
            .limit(3)
        )
    )
    if not candidates:
        raise DomainError({"guardian": _("No resident of this community has this phone or name.")})
    if len(candidates) > 1:
        raise DomainError(
            {"guardian": _("Several residents have this name: enter the guardian's phone number.")}
        )
    guardian = candidates[0]
    if exclude_person_id is not None and guardian.id == exclude_person_id:
        raise DomainError({"guardian": _("A resident cannot be their own guardian.")})
    if _may_be_under_18(guardian.birth_year):
        raise DomainError({"guardian": _("The guardian must be an adult.")})
    return guardian


def guardian_error(birth_year: int | None, guardian_person_id: int | None) -> dict[str, str]:
    """The form error for a minor without a guardian, or nothing."""
    if may_be_minor(birth_year) and guardian_person_id is None:
        return {
            "guardian": _(
                "A resident under 14 is registered only with a guardian: enter the phone or"
                " name of an adult of this community."
            )
        }
    return {}


def guarded_minors(person: Person) -> list[Person]:
    """The people this person is the guardian of (not erased)."""
    return list(
        db.session.scalars(
            select(Person)
            .where(Person.guardian_person_id == person.id, Person.erased_at.is_(None))
            .order_by(Person.name, Person.id)
        )
    )


# --- consents ---------------------------------------------------------------------------------


def active_consent(person_id: int, purpose: str) -> Consent | None:
    return db.session.scalar(
        select(Consent)
        .where(
            Consent.person_id == person_id,
            Consent.purpose == purpose,
            Consent.withdrawn_at.is_(None),
        )
        .order_by(Consent.id.desc())
        .limit(1)
    )


def give_consent(person: Person, purpose: str, *, recorded_by: User | None) -> Consent:
    """Record consent for ``purpose`` under the current notice (the active one if it exists)."""
    consent = active_consent(person.id, purpose)
    if consent is not None:
        return consent
    consent = Consent(
        person_id=person.id,
        community_id=person.community_id,
        purpose=purpose,
        notice_version=NOTICE_VERSION,
        granted_at=utcnow(),
        recorded_by_user_id=recorded_by.id if recorded_by is not None else None,
    )
    db.session.add(consent)
    db.session.flush()
    audit.record(
        "consent_given",
        target_type="person",
        target_id=person.id,
        detail=purpose,
        community_id=person.community_id,
    )
    return consent


def end_consents(person: Person, purpose: str) -> int:
    """Mark every active consent of ``purpose`` withdrawn (the caller has already undone its
    effect); the number of rows withdrawn."""
    ended = 0
    now = utcnow()
    for consent in db.session.scalars(
        select(Consent).where(
            Consent.person_id == person.id,
            Consent.purpose == purpose,
            Consent.withdrawn_at.is_(None),
        )
    ):
        consent.withdrawn_at = now
        ended += 1
    if ended:
        audit.record(
            "consent_withdrawn",
            target_type="person",
            target_id=person.id,
            detail=purpose,
            community_id=person.community_id,
        )
    db.session.flush()
    return ended


def clear_care_flags(person: Person) -> None:
    person.care_consent_at = None
    for flag in CARE_FLAGS:
        setattr(person, flag, False)


def _stop_listing(person: Person) -> None:
    from portal.points import queries

    if db.session.get(PointsAccount, person.id) is not None:
        queries.set_listed(person.id, False)


def sync_leaderboard_consent(person: Person, listed: bool, *, recorded_by: User | None) -> None:
    """Keep the leaderboard consent rows in step with the account's ``listed`` flag."""
    if listed:
        give_consent(person, "leaderboard", recorded_by=recorded_by)
    else:
        end_consents(person, "leaderboard")


def consents_of(person_ids: list[int]) -> dict[int, list[Consent]]:
    """Every consent of these people, newest first, grouped by person."""
    grouped: dict[int, list[Consent]] = {pid: [] for pid in person_ids}
    if not person_ids:
        return grouped
    for consent in db.session.scalars(
        select(Consent)
        .where(Consent.person_id.in_(person_ids))
        .order_by(Consent.granted_at.desc(), Consent.id.desc())
    ):
        grouped[consent.person_id].append(consent)
    return grouped


def withdrawable_consent(user: User, consent_id: int | None) -> Consent | None:
    """The consent if it is the user's own or a minor's they are guardian of, else None."""
    if user.person is None or consent_id is None or not 0 < consent_id < 2**63:
        return None
    consent = db.session.get(Consent, consent_id)
    if consent is None:
        return None
    if consent.person_id == user.person.id:
        return consent
    subject = db.session.get(Person, consent.person_id)
    if subject is not None and subject.guardian_person_id == user.person.id:
        return consent
    return None


def withdraw_consent(consent: Consent) -> None:
    """Withdraw ``consent`` with its effect at once: care flags are cleared, the leaderboard
    stops showing the person, regular help visits to their household stop. Withdrawing an
    already withdrawn consent changes nothing."""
    if consent.withdrawn_at is not None:
        return
    person = db.session.get(Person, consent.person_id)
    if consent.purpose == "care_flags":
        clear_care_flags(person)
    elif consent.purpose == "leaderboard":
        _stop_listing(person)
    elif consent.purpose == "regular_help":
        from portal.care.services import stop_household_help

        stop_household_help(person)
    end_consents(person, consent.purpose)


# --- reveal -----------------------------------------------------------------------------------


def reveal_phone(person: Person) -> str | None:
    """The person's full phone for a permitted viewer; writes the audit row (no number in it)."""
    audit.record(
        "reveal",
        target_type="person",
        target_id=person.id,
        detail="phone",
        community_id=person.community_id,
    )
    return person.phone


# --- download my data -------------------------------------------------------------------------


def _when(value: datetime | date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _num(value: Decimal | None) -> str | None:
    return str(value) if value is not None else None


def _address(household: Household | None) -> dict[str, Any] | None:
    if household is None:
        return None
    building = household.building
    return {
        "estate": building.estate.name,
        "building": building.name,
        "entrance": household.entrance.name if household.entrance else None,
        "room": household.room,
        "grid": building.grid.name,
    }


def _account(user: User | None) -> dict[str, Any] | None:
    # Never the password hash, the session token or the calendar feed secret.
    if user is None:
        return None
    return {
        "username": user.username,
        "role": user.role,
        "active": user.active,
        "created_at": _when(user.created_at),
        "last_login_at": _when(user.last_login_at),
        "has_calendar_feed": user.calendar_token is not None,
        "verified": user.verified,
        "phone_given_at_sign_up": user.signup_phone,
    }


def _volunteer(volunteer: Volunteer | None) -> dict[str, Any] | None:
    if volunteer is None:
        return None
    return {
        "status": volunteer.status,
        "types": volunteer.types,
        "grid": volunteer.grid.name if volunteer.grid else None,
        "skills": volunteer.skills,
        "availability": volunteer.availability,
        "armband_no": volunteer.armband_no,
        "employer": volunteer.employer,
        "party_branch": volunteer.party_branch,
        "party_reported_on": _when(volunteer.party_reported_on),
        "five_elder_kind": volunteer.five_elder_kind,
        "rejection_reason": volunteer.rejection_reason,
        "applied_at": _when(volunteer.applied_at),
        "decided_at": _when(volunteer.decided_at),
    }


def _help_requests(person: Person, user: User | None) -> list[dict[str, Any]]:
    """Requests the person made, was helped in, or handled as the volunteer; other people in
    them appear only by masked name."""
    conditions = [HelpRequest.requester_id == person.id, HelpRequest.volunteer_id == person.id]
    if user is not None:
        conditions.append(HelpRequest.created_by_id == user.id)
    rows = list(
        db.session.scalars(
            select(HelpRequest)
            .where(or_(*conditions))
            .options(joinedload(HelpRequest.requester), joinedload(HelpRequest.volunteer))
            .order_by(HelpRequest.id)
        ).unique()
    )
    wanted = {req.category_id for req in rows}
    categories = {
        c.id: c for c in db.session.scalars(select(Category).where(Category.id.in_(wanted)))
    }
    result = []
    for req in rows:
        own = req.requester_id == person.id
        part = "requester" if own else "submitted_for_someone"
        if not own and req.volunteer_id == person.id:
            part = "volunteer"
        category = categories.get(req.category_id)
        item: dict[str, Any] = {
            "id": req.id,
            "my_part": part,
            "category": category.name_zh if category else None,
            "status": req.status,
            "created_at": _when(req.created_at),
            "closed_at": _when(req.closed_at),
        }
        if own or req.created_by_id == (user.id if user else None):
            item.update(
                description=req.description,
                address=req.address,
                preferred_time=req.preferred_time,
                urgency=req.urgency,
                rating=req.rating,
                rating_comment=req.rating_comment,
            )
        if not own and req.requester is not None:
            item["requester"] = mask_name(req.requester.name)
        if req.volunteer is not None and req.volunteer_id != person.id:
            item["volunteer"] = mask_name(req.volunteer.name)
        if own:
            item["timeline"] = [
                {"action": e.action, "from": e.from_status, "to": e.to_status, "at": _when(e.at)}
                for e in db.session.scalars(
                    select(RequestEvent)
                    .where(RequestEvent.request_id == req.id)
                    .order_by(RequestEvent.at, RequestEvent.id)
                )
            ]
        result.append(item)
    return result


def _regular_help(person_id: int) -> dict[str, Any]:
    """Scheduled household help: the enrolment resting on my consent, the tasks I take every
    visit of, and the visits I reported as a volunteer."""
    from portal.care.models import CareHousehold, HelpVisit, TaskCommitment

    enrolled = db.session.scalars(
        select(CareHousehold).where(CareHousehold.consent_person_id == person_id)
    ).all()
    return {
        "households_enrolled_on_my_consent": [
            {
                "household": _address(db.session.get(Household, c.household_id)),
                "volunteer_sex": c.volunteer_sex,
                "enrolled_at": _when(c.created_at),
            }
            for c in enrolled
        ],
        "tasks_i_help_with_every_visit": list(
            db.session.scalars(
                select(TaskCommitment.task_id)
                .where(TaskCommitment.person_id == person_id)
                .order_by(TaskCommitment.task_id)
            )
        ),
        "visits_i_reported": [
            {"shift_id": v.shift_id, "status": v.status, "note": v.note,
             "reported_at": _when(v.reported_at)}
            for v in db.session.scalars(
                select(HelpVisit)
                .where(HelpVisit.reported_by_id == person_id)
                .order_by(HelpVisit.id)
            )
        ],
    }  # fmt: skip


def personal_data(user: User) -> dict[str, Any]:
    """Everything that references the user and their person record, for download.

    Other people in shared objects (a request's volunteer, a guardian) appear masked or not at
    all; secrets (password hash, session and calendar tokens) never."""
    person = user.person
    data: dict[str, Any] = {
        "generated_at": _when(utcnow()),
        "notice_version": NOTICE_VERSION,
        "account": _account(user),
        "person": None,
    }
    if person is None:
        return data
    person_id = person.id
    guardian = (
        db.session.get(Person, person.guardian_person_id) if person.guardian_person_id else None
    )
    data["person"] = {
        "id": person.id,
        "name": person.name,
        "phone": person.phone,
        "sex": person.sex,
        "birth_year": person.birth_year,
        "care_flags": person.care_flags,
        "care_consent_at": _when(person.care_consent_at),
        "guardian": mask_name(guardian.name) if guardian else None,
        "created_at": _when(person.created_at),
    }
    data["household"] = _address(person.household)
    data["building_captain_of"] = [
        f"{b.estate.name} {b.name}"
        for b in db.session.scalars(select(Building).where(Building.captain_id == person_id))
    ]
    data["volunteer"] = _volunteer(person.volunteer)
    data["sign_ups"] = [
        {
            "shift": s.shift.title,
            "starts_at": _when(s.shift.starts_at),
            "status": s.status,
            "signed_up_at": _when(s.created_at),
            "cancelled_at": _when(s.cancelled_at),
            "checked_in_at": _when(s.checked_in_at),
            "checked_out_at": _when(s.checked_out_at),
            "attendance": s.attendance,
            "hours": _num(s.hours),
        }
        for s in db.session.scalars(
            select(Signup)
            .where(Signup.person_id == person_id)
            .options(joinedload(Signup.shift))
            .order_by(Signup.id)
        )
    ]
    data["shifts_led"] = [
        {"shift": s.title, "starts_at": _when(s.starts_at)}
        for s in db.session.scalars(
            select(Shift).where(Shift.leader_id == person_id).order_by(Shift.starts_at)
        )
    ]
    visits_home = []
    if person.household_id is not None:
        visits_home = [
            {"outcome": v.outcome, "visited_at": _when(v.visited_at)}
            for v in db.session.scalars(
                select(DoorVisit)
                .where(DoorVisit.household_id == person.household_id)
                .order_by(DoorVisit.visited_at)
            )
        ]
    data["door_visits_to_my_household"] = visits_home
    data["door_visits_i_made"] = []
    data["patrol_reports_i_filed"] = []
    data["request_events_i_made"] = []
    data["notifications"] = []
    if user.id is not None:
        data["door_visits_i_made"] = [
            {"outcome": v.outcome, "note": v.note, "visited_at": _when(v.visited_at)}
            for v in db.session.scalars(
                select(DoorVisit).where(DoorVisit.visited_by_id == user.id).order_by(DoorVisit.id)
            )
        ]
        data["patrol_reports_i_filed"] = [
            {
                "filed_at": _when(r.filed_at),
                "summary": r.summary,
                "hazards": [
                    {"description": h.description, "location": h.location} for h in r.hazards
                ],
            }
            for r in db.session.scalars(
                select(PatrolReport)
                .where(PatrolReport.filed_by_id == user.id)
                .order_by(PatrolReport.id)
            )
        ]
        data["request_events_i_made"] = [
            {"request_id": e.request_id, "action": e.action, "note": e.note, "at": _when(e.at)}
            for e in db.session.scalars(
                select(RequestEvent)
                .where(RequestEvent.actor_id == user.id)
                .order_by(RequestEvent.id)
            )
        ]
        data["notifications"] = [
            {
                "kind": n.kind,
                "params": n.params,
                "link": n.link,
                "created_at": _when(n.created_at),
                "read_at": _when(n.read_at),
            }
            for n in db.session.scalars(
                select(Notification)
                .where(Notification.user_id == user.id)
                .order_by(Notification.id)
            )
        ]
    data["help_requests"] = _help_requests(person, user)
    data["regular_help"] = _regular_help(person_id)
    account = db.session.get(PointsAccount, person_id)
    data["points_account"] = (
        {
            "balance": account.balance,
            "earned": account.earned,
            "hours": _num(account.hours),
            "on_leaderboards": account.listed,
        }
        if account
        else None
    )
    data["points_ledger"] = [
        {
            "kind": e.kind,
            "points": e.points,
            "hours": _num(e.hours),
            "occurred_on": _when(e.occurred_on),
            "note": e.note,
            "created_at": _when(e.created_at),
        }
        for e in db.session.scalars(
            select(PointsEntry).where(PointsEntry.person_id == person_id).order_by(PointsEntry.id)
        )
    ]
    data["redemptions"] = [
        {
            "reward": reward_name,
            "cost": r.cost,
            "voucher_code": r.voucher_code,
            "status": r.status,
            "created_at": _when(r.created_at),
            "handed_over_at": _when(r.handed_over_at),
            "cancelled_at": _when(r.cancelled_at),
            "cancel_reason": r.cancel_reason,
        }
        for r, reward_name in db.session.execute(
            select(Redemption, Reward.name)
            .join(Reward, Redemption.reward_id == Reward.id)
            .where(Redemption.person_id == person_id)
            .order_by(Redemption.id)
        )
    ]
    data["certificates"] = [
        {
            "number": c.number,
            "holder_name": c.holder_name,
            "id_number_masked": c.id_number_masked,
            "period_start": _when(c.period_start),
            "period_end": _when(c.period_end),
            "total_hours": _num(c.total_hours),
            "activity_count": c.activity_count,
            "activities": c.activities,
            "issued_at": _when(c.issued_at),
        }
        for c in db.session.scalars(
            select(Certificate).where(Certificate.person_id == person_id).order_by(Certificate.id)
        )
    ]
    data["consents"] = [
        {
            "purpose": c.purpose,
            "notice_version": c.notice_version,
            "granted_at": _when(c.granted_at),
            "withdrawn_at": _when(c.withdrawn_at),
            "recorded_by": "me" if c.recorded_by_user_id == user.id else "someone else",
        }
        for c in consents_of([person_id])[person_id]
    ]
    data["minors_i_am_guardian_of"] = [
        {"name": mask_name(minor.name)} for minor in guarded_minors(person)
    ]
    return data


def record_download(user: User) -> None:
    audit.record(
        "data_download",
        target_type="person" if user.person_id else "user",
        target_id=user.person_id or user.id,
        community_id=user.community_id,
    )


# --- erasure ----------------------------------------------------------------------------------


def erase_self(user: User, password: str) -> Person:
    """Erase the user's person record at once, after the password is confirmed.

    Personal fields are anonymised, the account is disabled (its session token rotated, its
    username replaced), consents withdrawn; ledger rows, balances and tallies stay. Raises
    DomainError on a wrong password or a role that may not erase itself."""
    if user.role not in SELF_ERASING_ROLES or user.person is None:
        raise DomainError({"_": _("Staff accounts are closed by the community office.")})
    if not password or not user.check_password(password):
        raise DomainError({"password": _("The password is wrong.")})
    person = user.person
    for purpose in {c.purpose for c in consents_of([person.id])[person.id] if not c.withdrawn_at}:
        end_consents(person, purpose)
    _stop_listing(person)
    from portal.care.services import stop_household_help

    stop_household_help(person)  # visits resting on their consent stop with it
    anonymous = f"{ERASED_NAME}{person.id}"[:40]
    person.name = anonymous
    person.phone = None
    person.sex = None
    person.birth_year = None
    clear_care_flags(person)
    person.household = None
    person.guardian_person_id = None
    person.erased_at = utcnow()
    db.session.execute(
        update(Person)
        .where(Person.guardian_person_id == person.id)
        .values(guardian_person_id=None)
        .execution_options(synchronize_session=False)
    )
    db.session.execute(
        update(Building)
        .where(Building.captain_id == person.id)
        .values(captain_id=None)
        .execution_options(synchronize_session=False)
    )
    db.session.execute(
        update(Certificate)
        .where(Certificate.person_id == person.id)
        .values(holder_name=anonymous, id_number_masked="")
        .execution_options(synchronize_session=False)
    )
    volunteer = person.volunteer
    if volunteer is not None:
        volunteer.skills = volunteer.availability = ""
        volunteer.employer = volunteer.party_branch = volunteer.rejection_reason = ""
        volunteer.armband_no = None
        volunteer.five_elder_kind = None
        volunteer.party_reported_on = None
    db.session.execute(Notification.__table__.delete().where(Notification.user_id == user.id))
    user.username = f"erased-{user.id}"
    # A random password nobody knows (not set_password: its rules are for chosen passwords).
    user.password_hash = generate_password_hash(secrets.token_urlsafe(32), method="scrypt")
    user.calendar_token = None
    user.signup_phone = None
    user.active = False
    user.rotate_session_token()
    db.session.flush()
    audit.record(
        "erasure",
        target_type="person",
        target_id=person.id,
        community_id=person.community_id,
        actor_user_id=user.id,
        actor_name=user.username,
    )
    return person
