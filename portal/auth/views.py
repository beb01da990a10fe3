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
        try:
            user = services.authenticate(
                form.identifier.data, form.password.data, request.remote_addr or "-"
            )
        except DomainError as error:
            db.session.commit()  # keep the failure record: it is what throttles guessing
            error.apply_to(form)
        else:
            # A new session (new CSRF token) at every sign-in. Staff sessions end after idling,
            # so staff get no remember-me cookie, which would outlive that.
            fresh_session()
            login_user(user, remember=bool(form.remember.data) and not user.is_staff)
            mark_seen()
            db.session.commit()
            target = form.next.data
            return redirect(target if is_safe_next(target) else url_for("core.home"), code=303)
    return render("auth/login.html", form=form)


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
            )
        except DomainError as error:
            error.apply_to(form)
        else:
            fresh_session()
            login_user(user)
            mark_seen()
            db.session.commit()
            flash(_("Welcome! Your account is ready."), "success")
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
