"""Tongxin (同心): the application factory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask

ROOT = Path(__file__).resolve().parent.parent


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the app: configuration, extensions, blueprints, hooks. No I/O happens here."""
    app = Flask(
        __name__,
        instance_path=str(ROOT / "instance"),
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    _configure(app, config)
    from portal.core import widgets

    widgets.install()
    _init_extensions(app)
    _register_blueprints(app)
    _register_hooks(app)
    hops = int(app.config.get("TRUSTED_PROXIES") or app.config.get("PROXY_HOPS") or 0)
    if hops:
        from werkzeug.middleware.proxy_fix import ProxyFix

        # Trust X-Forwarded-* only from the configured number of proxies in front of us.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
    return app


def _configure(app: Flask, config: dict[str, Any] | None) -> None:
    from flask.helpers import get_debug_flag

    from portal.config import (
        DEFAULT_PUBLIC_URL,
        Config,
        ConfigError,
        ProductionConfig,
        ProductionConfigError,
        default_database_url,
        production_problems,
        production_selected,
        public_url_problem,
        trusted_hosts,
    )

    app.config.from_object(Config)
    if production_selected():
        app.config.from_object(ProductionConfig)
    if config:
        app.config.update(config)
    if app.config.get("PRODUCTION"):
        # FLASK_DEBUG also turns on the Werkzeug debugger of `flask run`, whatever DEBUG says.
        problems = production_problems(app.config, app.debug or get_debug_flag())
        if problems:
            raise ProductionConfigError("refusing to start in production: " + "; ".join(problems))
    if not app.config.get("PUBLIC_URL"):
        app.config["PUBLIC_URL"] = DEFAULT_PUBLIC_URL
    problem = public_url_problem(app.config["PUBLIC_URL"])
    if problem:
        raise ConfigError(problem)
    if app.config.get("PRODUCTION"):
        # Any other Host (also one a trusted proxy forwards) is answered 400 by Flask.
        app.config["TRUSTED_HOSTS"] = trusted_hosts(
            app.config["PUBLIC_URL"],
            [*(app.config.get("EXTRA_HOSTS") or []), *(app.config.get("TRUSTED_HOSTS") or [])],
        )
    if not app.config.get("SQLALCHEMY_DATABASE_URI"):
        app.config["SQLALCHEMY_DATABASE_URI"] = default_database_url(app.instance_path)
    uri = app.config["SQLALCHEMY_DATABASE_URI"]
    if uri.startswith("postgresql://"):
        app.config["SQLALCHEMY_DATABASE_URI"] = (
            "postgresql+psycopg://" + uri[len("postgresql://") :]
        )
    if uri.startswith("sqlite:///"):
        Path(uri[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)


def _init_extensions(app: Flask) -> None:
    from portal import i18n, models  # noqa: F401  (all tables known to the metadata)
    from portal.database import configure_sqlite, ping_after_idle
    from portal.extensions import csrf, db, login_manager, migrate

    db.init_app(app)
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            configure_sqlite(db.engine)
        else:
            ping_after_idle(db.engine)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), render_as_batch=True)
    csrf.init_app(app)
    login_manager.init_app(app)
    i18n.init_app(app)


def _register_blueprints(app: Flask) -> None:
    from portal.auth.account_views import bp as accounts_bp
    from portal.auth.views import bp as auth_bp
    from portal.care.views import bp as care_bp
    from portal.certificates.views import bp as certificates_bp
    from portal.core.views import bp as core_bp
    from portal.help.catalogue_views import bp as catalogue_bp
    from portal.help.handling_views import bp as handling_bp
    from portal.help.open311 import bp as open311_bp
    from portal.help.views import bp as help_bp
    from portal.notifications.views import bp as notifications_bp
    from portal.patrols.duty_views import bp as duty_bp
    from portal.patrols.schedule_views import bp as schedule_bp
    from portal.patrols.shift_views import bp as shifts_bp
    from portal.people.views import bp as people_bp
    from portal.places.views import bp as places_bp
    from portal.points.admin_views import bp as points_admin_bp
    from portal.points.views import bp as points_bp
    from portal.rewards.manage_views import bp as rewards_manage_bp
    from portal.rewards.views import bp as rewards_bp
    from portal.trust.audit_views import bp as audit_bp
    from portal.trust.privacy_views import bp as privacy_bp
    from portal.volunteers.views import bp as volunteers_bp

    for bp in (
        core_bp,
        auth_bp,
        accounts_bp,
        places_bp,
        people_bp,
        volunteers_bp,
        schedule_bp,  # before shifts: /shifts/new must not be read as /shifts/<id>
        shifts_bp,
        duty_bp,
        notifications_bp,
        help_bp,
        handling_bp,
        catalogue_bp,
        open311_bp,
        points_bp,
        points_admin_bp,
        rewards_manage_bp,  # before rewards: /rewards/manage must not be read as /rewards/<id>
        rewards_bp,
        certificates_bp,
        privacy_bp,
        audit_bp,
        care_bp,
    ):
        app.register_blueprint(bp)


def _register_hooks(app: Flask) -> None:
    from portal import cli, errors, policy, security
    from portal.auth import session as auth_session
    from portal.core import labels, pagecache, photos, querycount, urls

    auth_session.init_app(app)
    policy.init_app(app)  # after the session hooks, before any view: portal/policy.py
    photos.init_app(app)  # after policy: a photo decodes only for a user allowed to send it
    querycount.init_app(app)
    pagecache.init_app(app)
    labels.init_app(app)
    urls.init_app(app)
    errors.init_app(app)
    security.init_app(app)
    cli.init_app(app)
    from portal.trust import idempotency, limits  # after auth_session: SQLite's lock first

    limits.init_app(app)
    idempotency.init_app(app)
