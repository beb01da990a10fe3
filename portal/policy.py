"""The access policy: one table naming, for every endpoint, who may call it and on what.

Each entry is either ``PUBLIC`` or ``allow(roles, scope)``; where GET and POST differ the entry is a
``{method: rule}`` dict. A ``before_request`` hook enforces the roles before any view runs:
anonymous on a non-public endpoint is sent to sign in, a role not listed answers 403, and an
endpoint missing here answers 403 (a loud error under testing or debug: fail closed). The views keep
their own decorators and scoped lookups (defence in depth); the scope column states which records
the view then lets the role touch:

- ``self``: the signed-in account itself;
- ``own``: the user's own records (their person, sign-ups, requests, points, vouchers, ...);
- ``party``: records the user stands in a relation to (the shift they lead, the request they made,
  hold or handle); every signed-in role may ask, the view decides by the relation (403 to a
  non-party of the community, 404 outside it);
- ``community``: the user's communities (a subdistrict admin's: their subdistrict's), a grid
  worker limited to their grids where the view says so (``access.require_grid``);
- ``secret``: whoever holds the secret in the URL (a calendar token, a certificate number, an
  Open311 API key).

Adding an endpoint means adding one line below; ``tests/security/test_policy.py`` fails on any
endpoint of the URL map missing here and on any line naming no endpoint.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, abort, current_app, request
from flask_login import current_user

from portal.extensions import login_manager

RESIDENT, VOLUNTEER, GRID_WORKER = "resident", "volunteer", "grid_worker"
SECRETARY, SUBDISTRICT_ADMIN = "secretary", "subdistrict_admin"
ROLES = frozenset({RESIDENT, VOLUNTEER, GRID_WORKER, SECRETARY, SUBDISTRICT_ADMIN})

EVERYONE = ROLES  # every signed-in account
PEOPLE = ROLES - {SUBDISTRICT_ADMIN}  # accounts with a person record of a community
STAFF = frozenset({GRID_WORKER, SECRETARY, SUBDISTRICT_ADMIN})
HANDLERS = frozenset({GRID_WORKER, SECRETARY})  # staff who act in a community
OVERSEERS = frozenset({SECRETARY, SUBDISTRICT_ADMIN})  # staff who read a community's accounts
HELPERS = frozenset({VOLUNTEER, GRID_WORKER, SECRETARY})  # may hold an approved registration
SECRETARIES = frozenset({SECRETARY})

SCOPES = frozenset({"public", "secret", "self", "own", "party", "community"})


@dataclass(frozen=True)
class Rule:
    """Who may call an endpoint (``roles``; empty and ``public`` for anyone) and on what."""

    roles: frozenset[str]
    scope: str
    public: bool = False

    def allows(self, role: str | None) -> bool:
        return self.public or (role is not None and role in self.roles)


PUBLIC = Rule(frozenset(), "public", public=True)
SECRET_LINK = Rule(frozenset(), "secret", public=True)


def allow(*groups: frozenset[str] | str, scope: str = "community") -> Rule:
    """A rule for the union of ``groups`` (role names or sets of them) within ``scope``."""
    roles: set[str] = set()
    for group in groups:
        roles |= {group} if isinstance(group, str) else set(group)
    if not roles <= ROLES or scope not in SCOPES:
        raise ValueError(f"bad rule: {sorted(roles)} {scope}")
    return Rule(frozenset(roles), scope)


# fmt: off
POLICY: dict[str, Rule | dict[str, Rule]] = {
    "static":                       PUBLIC,
    # core and accounts
    "core.healthz":                 PUBLIC,
    "core.home":                    allow(EVERYONE, scope="own"),
    "auth.login":                   PUBLIC,
    "auth.signup":                  PUBLIC,
    "auth.language":                PUBLIC,
    "auth.logout":                  allow(EVERYONE, scope="self"),
    "auth.password":                allow(EVERYONE, scope="self"),
    "accounts.index":               allow(OVERSEERS),
    "accounts.change_role":         allow(OVERSEERS),
    "accounts.disable":             allow(OVERSEERS),
    "accounts.enable":              allow(OVERSEERS),
    # trust: the audit log, my privacy (consents, my data, erasure)
    "audit.index":                  allow(OVERSEERS),
    "audit.export":                 allow(OVERSEERS),
    "privacy.index":                allow(EVERYONE, scope="own"),
    "privacy.withdraw":             allow(EVERYONE, scope="own"),
    "privacy.download":             allow(EVERYONE, scope="own"),
    "privacy.erase":                allow(RESIDENT, VOLUNTEER, scope="self"),
    # places
    "places.index":                 allow(STAFF),
    "places.community":             allow(OVERSEERS),
    "places.grid":                  allow(STAFF),
    "places.grid_new":              allow(SECRETARIES),
    "places.grid_edit":             allow(SECRETARIES),
    "places.grid_delete":           allow(SECRETARIES),
    "places.estate":                allow(STAFF),
    "places.estate_new":            allow(SECRETARIES),
    "places.estate_edit":           allow(SECRETARIES),
    "places.estate_delete":         allow(SECRETARIES),
    "places.building":              allow(STAFF),
    "places.building_new":          allow(SECRETARIES),
    "places.building_edit":         allow(SECRETARIES),
    "places.building_delete":       allow(SECRETARIES),
    "places.entrance_create":       allow(SECRETARIES),
    "places.entrance_edit":         allow(SECRETARIES),
    "places.entrance_delete":       allow(SECRETARIES),
    "places.household":             allow(STAFF),
    "places.household_new":         allow(SECRETARIES),
    "places.household_edit":        allow(SECRETARIES),
    "places.household_delete":      allow(SECRETARIES),
    # people
    "people.index":                 allow(STAFF),
    "people.detail":                allow(STAFF),
    "people.new":                   allow(HANDLERS),
    "people.edit":                  allow(HANDLERS),
    "people.check_phone":           allow(HANDLERS),
    "people.reveal_phone":          allow(HANDLERS),  # audited
    "people.account":               allow(SECRETARIES),
    "people.unverified":            allow(HANDLERS),
    "people.match":                 allow(HANDLERS),
    # volunteers
    "volunteers.mine":              allow(PEOPLE, scope="own"),
    "volunteers.queue":             allow(HANDLERS),
    "volunteers.pending_count":     allow(HANDLERS),
    "volunteers.approve":           allow(HANDLERS),
    "volunteers.reject":            allow(HANDLERS),
    "volunteers.roster":            allow(STAFF),
    "volunteers.detail":            allow(STAFF),
    "volunteers.reveal_phone":      allow(HANDLERS),  # audited
    "volunteers.export":            allow(STAFF),
    # patrols: scheduling
    "schedule.shift_new":           allow(HANDLERS),
    "schedule.shift_edit":          allow(HANDLERS),
    "schedule.shift_cancel":        allow(HANDLERS),
    "schedule.route_stops":         allow(HANDLERS),
    "schedule.series_new":          allow(HANDLERS),
    "schedule.series":              allow(STAFF),
    "schedule.series_edit":         allow(HANDLERS),
    "schedule.series_cancel":       allow(HANDLERS),
    "schedule.coverage":            allow(STAFF),
    # patrols: shifts and sign-ups
    "shifts.index":                 allow(EVERYONE),
    "shifts.detail":                allow(EVERYONE),
    "shifts.ics":                   allow(EVERYONE),
    "shifts.signup":                allow(PEOPLE, scope="own"),
    "shifts.cancel":                allow(PEOPLE, scope="own"),
    "shifts.mine":                  allow(PEOPLE, scope="own"),
    "shifts.calendar_reset":        allow(PEOPLE, scope="self"),
    "shifts.calendar_feed":         SECRET_LINK,
    # patrols: on duty (the shift's leader, its grid's worker, the secretary; the view answers
    # 403 to anyone else of the community and 404 outside it)
    "duty.lead":                    allow(EVERYONE, scope="party"),
    "duty.qr":                      allow(EVERYONE, scope="party"),
    "duty.attendance":              allow(EVERYONE, scope="party"),
    "duty.door_watch":              allow(EVERYONE, scope="party"),
    "duty.door_visit":              allow(EVERYONE, scope="party"),
    "duty.report":                  allow(EVERYONE, scope="party"),
    "duty.hazard_add":              allow(EVERYONE, scope="party"),
    "duty.hazard_photo":            allow(EVERYONE, scope="party"),
    "duty.checkin":                 allow(EVERYONE, scope="own"),
    "duty.checkin_code":            allow(EVERYONE, scope="own"),
    "duty.checkout":                allow(EVERYONE, scope="own"),
    # notifications
    "notifications.index":          allow(EVERYONE, scope="own"),
    "notifications.bell":           allow(EVERYONE, scope="own"),
    "notifications.open":           allow(EVERYONE, scope="own"),
    "notifications.read_all":       allow(EVERYONE, scope="own"),
    # help: intake, the request page, handling, the board, the catalogue
    "help.new":                     allow(PEOPLE, scope="own"),
    "help.minors":                  allow(PEOPLE, scope="own"),
    "help.index":                   allow(EVERYONE, scope="own"),
    "help.mine":                    allow(EVERYONE, scope="own"),
    "help.detail":                  allow(EVERYONE, scope="party"),
    "help.timeline":                allow(EVERYONE, scope="party"),
    "help.photo":                   allow(EVERYONE, scope="party"),
    "help.act":                     allow(EVERYONE, scope="party"),
    "handling.queue":               allow(STAFF),
    "handling.figures":             allow(STAFF),
    "handling.dispatch":            allow(HANDLERS),
    "handling.act":                 allow(EVERYONE, scope="party"),
    "handling.board":               allow(HELPERS, scope="own"),
    "handling.board_mine":          allow(HELPERS, scope="own"),
    "catalogue.index":              allow(STAFF),
    "catalogue.new_major":          allow(SECRETARIES),
    "catalogue.new_minor":          allow(SECRETARIES),
    "catalogue.edit":               allow(SECRETARIES),
    "catalogue.set_public":         allow(SECRETARIES),
    "catalogue.keys":               allow(SECRETARIES),
    "catalogue.revoke_key":         allow(SECRETARIES),
    # Open311 GeoReport v2: public by the standard, scoped by jurisdiction_id or api_key
    "open311.discovery":            PUBLIC,
    "open311.services":             SECRET_LINK,
    "open311.service_definition":   SECRET_LINK,
    "open311.requests_index":       SECRET_LINK,
    "open311.request_detail":       SECRET_LINK,
    "open311.token_detail":         SECRET_LINK,
    "open311.create":               SECRET_LINK,
    # points
    "points.mine":                  allow(EVERYONE, scope="own"),  # no person record: 404
    "points.listing":               allow(EVERYONE, scope="own"),
    "points.leaderboard":           allow(EVERYONE),
    "points_admin.rules":           {"GET": allow(OVERSEERS), "POST": allow(SECRETARIES)},
    "points_admin.person":          allow(OVERSEERS),
    "points_admin.adjust":          allow(SECRETARIES),
    "points_admin.reverse":         allow(SECRETARIES),
    "points_admin.ledger":          allow(OVERSEERS),
    "points_admin.ledger_export":   allow(OVERSEERS),
    "points_admin.leaderboard_export": allow(OVERSEERS),
    "points_admin.party":           allow(OVERSEERS),
    "points_admin.party_export":    allow(OVERSEERS),
    # rewards
    "rewards.index":                allow(PEOPLE, scope="own"),
    "rewards.detail":               allow(PEOPLE, scope="own"),
    "rewards.redeem":               allow(PEOPLE, scope="own"),
    "rewards.voucher":              allow(PEOPLE, scope="own"),
    "rewards.mine":                 allow(PEOPLE, scope="own"),
    "rewards.photo":                allow(EVERYONE),
    "rewards_manage.index":         allow(OVERSEERS),
    "rewards_manage.new":           allow(SECRETARIES),
    "rewards_manage.edit":          allow(SECRETARIES),
    "rewards_manage.redemptions":   allow(OVERSEERS),
    "rewards_manage.hand_over":     allow(SECRETARIES),
    "rewards_manage.cancel":        allow(SECRETARIES),
    "rewards_manage.export":        allow(OVERSEERS),
    # certificates
    "certificates.mine":            allow(PEOPLE, scope="own"),
    "certificates.issue":           allow(PEOPLE, scope="own"),
    "certificates.pdf":             allow(EVERYONE, scope="party"),  # the holder, or managers
    "certificates.verify":          SECRET_LINK,
    # scheduled household help
    "care.enrol":                   allow(HANDLERS),
    "care.household":               allow(STAFF),
    "care.preference":              allow(HANDLERS),
    "care.card":                    allow(HANDLERS),
    "care.task_new":                allow(HANDLERS),
    "care.tasks":                   allow(PEOPLE),
    "care.task":                    allow(EVERYONE),
    "care.take":                    allow(PEOPLE, scope="own"),
    "care.leave":                   allow(PEOPLE, scope="own"),
    "care.end":                     allow(HANDLERS),
    "care.coverage":                allow(STAFF),
    "care.checkin":                 allow(PEOPLE, scope="own"),
    "care.report":                  allow(PEOPLE, scope="own"),
    "care.confirm":                 allow(EVERYONE, scope="party"),  # the household, or staff
    "care.mine":                    allow(PEOPLE, scope="own"),
}
# fmt: on


# What a self-registered account may call before staff match it to a household (besides the
# public endpoints): its own account and privacy, its own requests, its notifications. Anyone
# can open such an account, so nothing of the community (shifts, care tasks, the help board,
# the roster, leaderboards) is shown to it; every other endpoint answers 403.
UNVERIFIED_ENDPOINTS = frozenset(
    {
        "core.home",
        "auth.logout",
        "auth.password",
        "privacy.index",
        "privacy.withdraw",
        "privacy.download",
        "privacy.erase",
        "help.new",
        "help.minors",
        "help.index",
        "help.mine",
        "help.detail",
        "help.timeline",
        "help.photo",
        "help.act",
        "notifications.index",
        "notifications.bell",
        "notifications.open",
        "notifications.read_all",
    }
)


class PolicyMissing(LookupError):
    """An endpoint has no line in POLICY (raised under testing and debug; 403 in production)."""


def rule_for(endpoint: str, method: str) -> Rule | None:
    """The rule for ``endpoint`` called with ``method`` (HEAD as GET), or None if undeclared."""
    entry = POLICY.get(endpoint)
    if isinstance(entry, dict):
        return entry.get("GET" if method == "HEAD" else method)
    return entry


def enforce():
    """The ``before_request`` check: login redirect, 403, or nothing (the view runs)."""
    endpoint = request.endpoint
    # No endpoint: the URL or method matched nothing, and the 404/405 handlers answer.
    # OPTIONS runs no view: Flask answers it with the allowed methods.
    if endpoint is None or request.method == "OPTIONS":
        return None
    rule = rule_for(endpoint, request.method)
    if rule is None:
        if current_app.testing or current_app.debug:
            raise PolicyMissing(f"{endpoint} {request.method} is not in portal/policy.py POLICY")
        abort(403)
    if rule.public:
        return None
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    if not rule.allows(current_user.role):
        abort(403)
    if not current_user.verified and endpoint not in UNVERIFIED_ENDPOINTS:
        abort(403)
    return None


def init_app(app: Flask) -> None:
    app.before_request(enforce)
