"""My privacy: the notice, my consents (and my minors'), downloading my data, erasing my record."""

from __future__ import annotations

import json

from flask import Blueprint, Response, abort, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required, logout_user
from wtforms import PasswordField
from wtforms.validators import InputRequired, Length

from portal.auth.session import fresh_session
from portal.core.errors import DomainError
from portal.core.forms import PortalForm
from portal.core.timeutil import local_today
from portal.extensions import db
from portal.htmx import render, wants_fragment
from portal.trust import privacy

bp = Blueprint("privacy", __name__, url_prefix="/me")

CONSENTS_EVENT = "consents-changed"


class EraseForm(PortalForm):
    password = PasswordField(_l("Your password"), validators=[InputRequired(), Length(max=128)])


def _consents_context(message: str | None = None) -> dict:
    person = current_user.person
    minors = privacy.guarded_minors(person) if person is not None else []
    ids = ([person.id] if person is not None else []) + [m.id for m in minors]
    return {
        "person": person,
        "minors": minors,
        "consents": privacy.consents_of(ids),
        "message": message,
        "notice_version": privacy.NOTICE_VERSION,
    }


@bp.get("/privacy")
@login_required
def index():
    return render(
        "trust/privacy/index.html",
        may_erase=current_user.role in privacy.SELF_ERASING_ROLES and current_user.person,
        **_consents_context(),
    )


@bp.post("/privacy/withdraw")
@login_required
def withdraw():
    """Withdraw one consent of mine or of a minor I am guardian of; anyone else's is not found."""
    consent = privacy.withdrawable_consent(
        current_user._get_current_object(), request.form.get("consent_id", type=int)
    )
    if consent is None:
        abort(404)
    privacy.withdraw_consent(consent)
    db.session.commit()
    message = _("The consent is withdrawn: the data it covered is no longer used.")
    if wants_fragment():
        return render(
            "trust/privacy/index.html",
            "trust/privacy/_consents.html",
            trigger=CONSENTS_EVENT,
            **_consents_context(message),
        )
    flash(message, "success")
    return redirect(url_for("privacy.index") + "#consents", code=303)


@bp.get("/data")
@login_required
def download():
    """Everything the portal holds that references me, as one JSON file (audited)."""
    user = current_user._get_current_object()
    data = privacy.personal_data(user)
    privacy.record_download(user)
    db.session.commit()
    body = json.dumps(data, ensure_ascii=False, indent=2, default=str)
    response = Response(body, mimetype="application/json")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="my-data-{local_today().isoformat()}.json"'
    )
    return response


@bp.route("/erase", methods=["GET", "POST"])
@login_required
def erase():
    """Self-service erasure, confirmed with the password; immediate, no office approval."""
    if current_user.role not in privacy.SELF_ERASING_ROLES or current_user.person is None:
        abort(403)
    form = EraseForm()
    if form.validate_on_submit():
        try:
            privacy.erase_self(current_user._get_current_object(), form.password.data)
        except DomainError as error:
            error.apply_to(form)
        else:
            db.session.commit()
            logout_user()
            fresh_session()  # nothing of the account stays; the chosen language does
            flash(_("Your personal data is erased and your account is closed."), "success")
            return redirect(url_for("auth.login"), code=303)
    return render("trust/privacy/erase.html", form=form)
