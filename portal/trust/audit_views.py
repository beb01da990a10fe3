"""The audit log for staff who answer for it: a secretary reads their community's rows, a
subdistrict admin those of every community of the subdistrict. Read-only, and its export is
itself audited."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select
from wtforms import DateField, SelectField, StringField
from wtforms.validators import Optional

from portal.access import community_ids, roles_required
from portal.core.exports import FORMATS, export_response
from portal.core.forms import PortalForm
from portal.core.labels import LABELS, label
from portal.core.timeutil import local_today, to_local
from portal.extensions import db
from portal.htmx import render
from portal.places.models import Community
from portal.trust import audit
from portal.volunteers.forms import options

bp = Blueprint("audit", __name__, url_prefix="/audit")

READERS = ("secretary", "subdistrict_admin")
MAX_ID = 2**63


def _safe_int(value: object) -> int | None:
    """A select's value as an id; blank or nonsense means none."""
    try:
        number = int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if 0 < number < MAX_ID else None


class AuditFilterForm(PortalForm):
    """Read from the query string; a value that does not parse simply means "any"."""

    class Meta:
        csrf = False

    action = SelectField(
        _l("Action"),
        choices=options([("", _l("All actions")), *LABELS["audit_action"].items()]),
        validate_choice=False,
    )
    outcome = SelectField(
        _l("Result"),
        choices=options([("", _l("All results")), *LABELS["audit_outcome"].items()]),
        validate_choice=False,
    )
    actor = StringField(_l("Account"))
    date_from = DateField(_l("From"), validators=[Optional()])
    date_to = DateField(_l("To"), validators=[Optional()])
    community = SelectField(_l("Community"), coerce=_safe_int, validate_choice=False)


def _filters() -> tuple[AuditFilterForm, audit.AuditFilters]:
    form = AuditFilterForm(formdata=request.args)
    form.validate()  # a date that does not parse is left out, with its message shown
    filters = audit.AuditFilters.clean(
        form.action.data,
        form.outcome.data,
        form.actor.data,
        form.date_from.data if not form.date_from.errors else None,
        form.date_to.data if not form.date_to.errors else None,
        form.community.data,
    )
    return form, filters


def _cursor(name: str) -> int | None:
    raw = request.args.get(name, "")
    return int(raw) if raw.isdigit() and int(raw) < MAX_ID else None


def _communities() -> list[Community]:
    """The communities the reader may pick from (only when there are several)."""
    ids = community_ids()
    if len(ids) < 2:
        return []
    return list(
        db.session.scalars(select(Community).where(Community.id.in_(ids)).order_by(Community.name))
    )


def _query(filters: audit.AuditFilters):
    """The reader's rows: a secretary's community, or an admin's subdistrict and its admins."""
    subdistrict_id = (
        current_user.subdistrict_id if current_user.role == "subdistrict_admin" else None
    )
    return audit.log_query(filters, community_ids(), subdistrict_id)


@bp.get("")
@roles_required(*READERS)
def index():
    form, filters = _filters()
    communities = _communities()
    form.community.choices = options(
        [("", _l("All communities")), *((c.id, c.name) for c in communities)]
    )
    page = audit.log_page(
        _query(filters),
        before=_cursor("before"),
        after=_cursor("after"),
        per_page=current_app.config["PAGE_SIZE"],
    )
    return render(
        "trust/audit.html",
        "trust/_audit_list.html",
        form=form,
        filters=filters,
        log_page=page,
        communities=communities,
        community_names={c.id: c.name for c in communities},
        utc_text=audit.utc_text,
    )


def _export_header() -> list[str]:
    return [
        _("No."),
        _("Time (Beijing)"),
        _("Time (UTC)"),
        _("Community"),
        _("Account"),
        _("Address"),
        _("Action"),
        _("Result"),
        _("Target"),
        _("Target No."),
        _("Detail"),
    ]


@bp.get("/export.<fmt>")
@roles_required(*READERS)
def export(fmt: str):
    if fmt not in FORMATS:
        abort(404)
    _form, filters = _filters()
    names = dict(
        db.session.execute(
            select(Community.id, Community.name).where(Community.id.in_(community_ids()))
        ).all()
    )
    actions = {code: label("audit_action", code) for code in LABELS["audit_action"]}
    outcomes = {code: label("audit_outcome", code) for code in LABELS["audit_outcome"]}
    rows = (
        (
            row.id,
            to_local(row.created_at).strftime("%Y-%m-%d %H:%M:%S"),
            audit.utc_text(row.created_at),
            names.get(row.community_id, ""),
            row.actor_name,
            row.address,
            actions.get(row.action, row.action),
            outcomes.get(row.outcome, row.outcome),
            row.target_type or "",
            row.target_id,
            row.detail,
        )
        for row in audit.export_rows(_query(filters))
    )
    return export_response(f"audit-log-{local_today().isoformat()}", fmt, _export_header(), rows)
