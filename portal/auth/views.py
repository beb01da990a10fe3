from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy import select

from portal.auth import services
from portal.auth.forms import LoginForm, PasswordChangeForm, SignupForm
from portal.auth.session import fresh_session, mark_seen
from portal.core.errors import DomainError
from portal.extensions import db
from portal.htmx import render
from portal.places.models import Community
from portal.security import is_safe_next

bp = Blueprint("auth", __name__)


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("core.home"))
    form = LoginForm()
    if request.method == "GET":
        form.next.data = request.args.get("next", "")
    if form.validate_on_submit():
        device = services.read_device(request.cookies.get(services.DEVICE_COOKIE))
        try:
            user = services.authenticate(
                form.identifier.data, form.password.data, request.remote_addr or "-", device
            )
        except DomainError as error:
            db.session.commit()  # keep the counted attempt: it is what throttles guessing
            error.apply_to(form)
        else:
            # A new session (new CSRF token) at every sign-in. Staff sessions end after idling,
            # so staff get no remember-me cookie, which would outlive that.
            fresh_session()
            login_user(user, remember=bool(form.remember.data) and not user.is_staff)
            mark_seen()
            db.session.commit()
            target = form.next.data
            response = redirect(target if is_safe_next(target) else url_for("core.home"), code=303)
            _remember_device(response, user, device)
            return response
    return render("auth/login.html", form=form)


def _remember_device(response, user, device) -> None:  # noqa: ANN001
    """Mark this browser as a known device of ``user``: its sign-ins skip the account's delay
    and other addresses' locks. Sent only to the sign-in page; a new password voids it."""
    days = current_app.config["KNOWN_DEVICE_DAYS"]
    response.set_cookie(
        services.DEVICE_COOKIE,
        services.device_token(user, device if device and device.user_id == user.id else None),
        max_age=days * 24 * 60 * 60,
        path=url_for("auth.login"),
        secure=current_app.config["SESSION_COOKIE_SECURE"],
        httponly=True,
        samesite="Lax",
    )


@bp.post("/logout")
@login_required
def logout():
    services.sign_out(current_user._get_current_object())
    db.session.commit()
    # This order keeps logout_user's note to delete a remember-me cookie.
    fresh_session()
    logout_user()
    flash(_("You have signed out."), "info")
    return redirect(url_for("auth.login"), code=303)


@bp.route("/signup", methods=["GET", "POST"])
def signup():
    if current_user.is_authenticated:
        return redirect(url_for("core.home"))
    form = SignupForm()
    form.community_id.choices = [
        (c.id, c.name) for c in db.session.scalars(select(Community).order_by(Community.name))
    ]
    if form.validate_on_submit():
        try:
            user = services.register_account(
                community_id=form.community_id.data,
                name=form.name.data,
                phone=form.phone.data,
                username=form.username.data,
                password=form.password.data,
                address=request.remote_addr or "-",
            )
        except DomainError as error:
            db.session.commit()  # keep the counted attempts: they limit probing
            error.apply_to(form)
        else:
            fresh_session()
            login_user(user)
            mark_seen()
            db.session.commit()
            flash(
                _(
                    "Welcome! Your account is ready. Sign in with your username. A grid worker"
                    " or the community office will match it to your household; until then you"
                    " can submit and follow your own requests."
                ),
                "success",
            )
            return redirect(url_for("core.home"), code=303)
    return render("auth/signup.html", form=form)


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
def password():
    form = PasswordChangeForm()
    if form.validate_on_submit():
        user = current_user._get_current_object()
        try:
            services.change_password(user, form.current.data, form.password.data)
        except DomainError as error:
            error.apply_to(form)
        else:
            # The token changed: sign this session in again with it (a new session and CSRF
            # token, like any sign-in); all others have ended.
            fresh_session()
            login_user(user)
            mark_seen()
            db.session.commit()
            flash(_("Your password has been changed."), "success")
            return redirect(url_for("core.home"), code=303)
    return render("auth/password.html", form=form)


@bp.post("/language")
def language():
    lang = request.form.get("lang", "")
    if lang in current_app.config["LANGUAGES"]:
        session["lang"] = lang
    target = request.form.get("next", "")
    return redirect(target if is_safe_next(target) else url_for("core.home"), code=303)
