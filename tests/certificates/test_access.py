"""Who may do what: every role and anonymous, the holder against other volunteers, and
community B (404)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from portal.certificates.models import Certificate
from portal.extensions import db
from tests import factories
from tests.certificates.conftest import CERT_HX, CERT_PERIOD, cert_make

ROLES = ("resident", "volunteer", "grid_worker", "secretary", "subdistrict_admin")
HOLDERS = ("resident", "volunteer", "grid_worker", "secretary")  # accounts with a person
A_NUMBER = "TX2026-AAAA-CCCC"
B_NUMBER = "TX2026-DDDD-EEEE"


@pytest.fixture
def certs(cert_scene):
    a = cert_make(cert_scene.a.volunteer.person, A_NUMBER, community=cert_scene.a.community)
    b = cert_make(cert_scene.b.volunteer.person, B_NUMBER, community=cert_scene.b.community)
    return a, b


def _count() -> int:
    db.session.commit()
    return db.session.scalar(select(func.count()).select_from(Certificate))


@pytest.mark.parametrize("role", ROLES)
def test_own_certificates_page_by_role(client, auth, cert_scene, certs, role):
    auth.login(cert_scene.a.users[role].username)
    response = client.get("/certificates")
    if role in HOLDERS:
        assert response.status_code == 200
        body = response.get_data(as_text=True)
        # Each sees only their own: volunteer_a holds A's certificate; nobody sees B's.
        assert (A_NUMBER in body) is (role == "volunteer")
        assert B_NUMBER not in body
    else:
        assert response.status_code == 403


@pytest.mark.parametrize("role", ROLES)
def test_issue_by_role(client, auth, cert_scene, role):
    auth.login(cert_scene.a.users[role].username)
    response = client.post("/certificates", data=CERT_PERIOD)
    if role == "volunteer":
        assert response.status_code == 303 and _count() == 1
    elif role in HOLDERS:  # no hours of their own: told so, nothing saved
        assert response.status_code == 200 and _count() == 0
    else:
        assert response.status_code == 403 and _count() == 0


def test_anonymous_is_sent_to_sign_in(client, cert_scene, certs):
    for method, url in (
        ("GET", "/certificates"),
        ("POST", "/certificates"),
        ("GET", f"/certificates/{A_NUMBER}/pdf"),
    ):
        response = client.open(url, method=method, data=CERT_PERIOD)
        assert response.status_code == 302, url
        assert response.headers["Location"].startswith("/login")
        response = client.open(url, method=method, data=CERT_PERIOD, headers=CERT_HX)
        assert response.headers["HX-Redirect"].startswith("/login"), url
    assert _count() == 2


# role -> answer for A's certificate (held by volunteer_a)
PDF_A = {
    "resident": 404,
    "volunteer": 200,  # the holder
    "grid_worker": 404,
    "secretary": 200,
    "subdistrict_admin": 200,
}


@pytest.mark.parametrize("role", ROLES)
def test_pdf_by_role(client, auth, cert_scene, certs, role):
    auth.login(cert_scene.a.users[role].username)
    response = client.get(f"/certificates/{A_NUMBER}/pdf")
    assert response.status_code == PDF_A[role]
    if response.status_code == 200:
        assert response.get_data().startswith(b"%PDF")
    # Another community's certificate is not there for anyone of A.
    response = client.get(f"/certificates/{B_NUMBER}/pdf")
    assert response.status_code == 404
    assert b"%PDF" not in response.get_data()


@pytest.mark.parametrize("role", ROLES)
def test_verify_is_public_for_every_role(client, auth, cert_scene, certs, role):
    auth.login(cert_scene.a.users[role].username)
    for number in (A_NUMBER, B_NUMBER):
        assert client.get(f"/certificates/{number}").status_code == 200


def test_anonymous_can_verify(client, certs):
    assert client.get(f"/certificates/{B_NUMBER}").status_code == 200


def test_another_volunteer_of_the_community_cannot_download(client, auth, cert_scene, certs):
    other = factories.make_user("volunteer", cert_scene.a.community, username="volunteer_a2")
    factories.make_volunteer(other.person, grid_id=cert_scene.a.grid.id)
    auth.login("volunteer_a2")
    assert client.get(f"/certificates/{A_NUMBER}/pdf").status_code == 404
    assert A_NUMBER not in client.get("/certificates").get_data(as_text=True)


def test_a_secretary_who_holds_a_certificate_of_their_own(client, auth, cert_scene, certs):
    secretary = cert_scene.a.secretary
    cert_make(secretary.person, "TX2026-CCCC-EEEE", community=cert_scene.a.community)
    auth.login("secretary_a")
    assert "TX2026-CCCC-EEEE" in client.get("/certificates").get_data(as_text=True)
    assert client.get("/certificates/TX2026-CCCC-EEEE/pdf").status_code == 200


def test_unknown_or_malformed_pdf_numbers_are_not_found(client, auth, cert_scene, certs):
    auth.login("secretary_a")
    for number in ("TX2026-AAAA-AAAA", "nonsense", "TX2026-AAAA-CCC0"):
        assert client.get(f"/certificates/{number}/pdf").status_code == 404


def test_htmx_errors_go_to_the_flash_area(client, auth, cert_scene, certs):
    auth.login("resident_a")
    response = client.get(f"/certificates/{A_NUMBER}/pdf", headers=CERT_HX)
    assert response.headers.get("HX-Retarget") == "#flash"
    auth.logout()
    auth.login("admin_a")
    response = client.get("/certificates", headers=CERT_HX)
    assert response.headers.get("HX-Retarget") == "#flash"


def test_the_verification_link_ignores_a_forged_host(app, client, auth, cert_scene, monkeypatch):
    from portal.certificates import pdf

    cert_make(cert_scene.a.volunteer.person, A_NUMBER, community=cert_scene.a.community)
    app.config["SERVER_NAME"] = None  # url_for would then follow the Host header
    links = []
    render = pdf.render_certificate
    monkeypatch.setattr(
        pdf, "render_certificate", lambda c, url: links.append(url) or render(c, url)
    )
    auth.login("volunteer_a")
    cookie = client.get_cookie("session", domain="localhost")
    client.set_cookie("session", cookie.value, domain="evil.example")
    response = client.get(f"/certificates/{A_NUMBER}/pdf", headers={"Host": "evil.example"})
    assert response.status_code == 200
    assert links == [f"http://localhost/certificates/{A_NUMBER}"]
