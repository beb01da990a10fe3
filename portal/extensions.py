"""Extension objects, created unbound and initialised in create_app()."""

from __future__ import annotations

from functools import cached_property

from flask.globals import _cv_app
from flask_babel import Babel, Domain, get_locale
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()


class CachingDomain(Domain):
    """Flask-Babel's domain, with the current locale's catalogue kept for the context.

    Flask-Babel looks the catalogue up on every gettext (rebuilding the locale's identifier each
    time: ~20 us; a page makes a hundred calls, lazy labels and form labels included). The
    catalogue is kept on ``g._flask_babel`` next to the locale Flask-Babel keeps there, tied to
    that locale object, so a changed locale is never served a stale catalogue."""

    def get_translations(self):  # noqa: ANN201 (Flask-Babel's signature)
        # The app context's g, read without the LocalProxy (a hundred calls a page).
        app_ctx = _cv_app.get(None)
        holder = getattr(app_ctx.g, "_flask_babel", None) if app_ctx is not None else None
        if holder is None:
            return super().get_translations()
        locale = getattr(holder, "babel_locale", None) or get_locale()
        cached = getattr(holder, "tongxin_translations", None)
        if cached is not None and cached[0] is locale:
            return cached[1]
        translations = super().get_translations()
        holder.tongxin_translations = (locale, translations)
        return translations


class PortalBabel(Babel):
    @cached_property
    def domain_instance(self) -> Domain:
        return CachingDomain(domain=self.domain)


babel = PortalBabel()
