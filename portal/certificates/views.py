"""Hours certificates: one's own list and the request form, the public verification page and the
PDF for the holder and the community's secretary or subdistrict admin."""

from __future__ import annotations

from flask import Blueprint, Response, abort, current_app, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from portal.access import community_ids
from portal.certificates import pdf, services
from portal.certificates.forms import CertificateForm
from portal.certificates.models import Certificate
from portal.core.errors import DomainError
from portal.core.timeutil import local_today
from portal.core.urls import external_url
from portal.extensions import db
from portal.htmx import render
from portal.people.models import Person

bp = Blueprint("certificates", __name__, url_prefix="/certificates")

# Besides the holder, who may open a certificate's PDF (within their communities).
MANAGERS = ("secretary", "subdistrict_admin")
MAX_PAGE = 100_000


def _holder() -> Person:
    """The signed-in user as a possible holder; accounts without a person have no hours."""
    person = current_user.person
    if person is None:
        abort(403)
    return person


def _page() -> int:
    return min(max(request.args.get("page", 1, type=int) or 1, 1), MAX_PAGE)


def _mine_page(form: CertificateForm, person_id: int):
    pagination = db.paginate(
        services.certificates_query(person_id),
        page=_page(),
        per_page=current_app.config["PAGE_SIZE"],
        error_out=False,
    )
    return render(
        "certificates/mine.html",
        "certificates/_list.html",
        form=form,
        pagination=pagination,
    )


@bp.get("")
@login_required
def mine():
    person = _holder()
    today = local_today()
    form = CertificateForm(
        data={"period_start": today.replace(month=1, day=1), "period_end": today}
    )
    return _mine_page(form, person.id)


@bp.post("")
@login_required
def issue():
    person = _holder()
    form = CertificateForm()
    if form.validate():
        try:
            certificate = services.issue_certificate(
                person,
                period_start=form.period_start.data,
                period_end=form.period_end.data,
                id_number=form.id_number.data,
                actor_id=current_user.id,
            )
        except DomainError as error:
            db.session.rollback()
            error.apply_to(form)
        else:
            number = certificate.number
            db.session.commit()
            flash(
                _("Certificate %(number)s was issued. Download the PDF below.", number=number),
                "success",
            )
            return redirect(url_for("certificates.verify", number=number), code=303)
    return _mine_page(form, person.id)


def _may_download(certificate: Certificate) -> bool:
    if not current_user.is_authenticated:
        return False
    if current_user.person_id is not None and certificate.person_id == current_user.person_id:
        return True
    return current_user.role in MANAGERS and certificate.community_id in community_ids()


def _not_found():
    response = render("certificates/not_found.html", status=404)
    response.headers["X-Robots-Tag"] = "noindex"
    return response


@bp.get("/<number>")
def verify(number: str):
    """Public: anyone holding a certificate can check its number and what it states."""
    cleaned = services.clean_number(number)
    certificate = services.find_by_number(cleaned) if cleaned else None
    if certificate is None:
        return _not_found()
    response = render(
        "certificates/verify.html",
        cert=certificate,
        may_download=_may_download(certificate),
    )
    response.headers["X-Robots-Tag"] = "noindex"
    return response


@bp.get("/<number>/pdf", endpoint="pdf")
@login_required
def pdf_file(number: str):
    cleaned = services.clean_number(number)
    certificate = services.find_by_number(cleaned) if cleaned else None
    # Not the holder nor a manager of its community: as if it did not exist.
    if certificate is None or not _may_download(certificate):
        abort(404)
    verify_url = external_url("certificates.verify", number=certificate.number)
    body = pdf.render_certificate(certificate, verify_url)
    response = Response(body, mimetype="application/pdf")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="certificate-{certificate.number}.pdf"'
    )
    response.headers["Cache-Control"] = "no-store"
    return response
