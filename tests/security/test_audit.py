"""The audit log: refusals, exports and approval decisions are recorded; secretaries and
subdistrict admins read their own scope of it; nobody can change or delete a row; and no log
holds a secret or a full personal number."""

from __future__ import annotations

import ast
import csv
import io
import logging
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from portal.auth.models import User
from portal.extensions import db
from portal.people.models import Person
from portal.places.models import Community
from portal.trust import audit
from portal.trust.models import AuditEntry
from portal.volunteers.models import Volunteer
from tests import factories
from tests.helpers import count_queries

ROOT = Path(__file__).resolve().parents[2]
HX = {"HX-Request": "true"}


def rows(**where) -> list[AuditEntry]:
    db.session.commit()  # end the test's read snapshot: read what the requests wrote
    query = select(AuditEntry).order_by(AuditEntry.id)
    for name, value in where.items():
        query = query.where(getattr(AuditEntry, name) == value)
    return list(db.session.scalars(query))


def add_entry(community_id: int | None, **kw) -> AuditEntry:
    entry = AuditEntry(
        community_id=community_id,
        actor_name=kw.pop("actor_name", "someone"),
        action=kw.pop("action", "sign_in"),
        outcome=kw.pop("outcome", "ok"),
        address="10.0.0.1",
        **kw,
    )
    db.session.add(entry)
    return entry


# --- recording: refusals ---------------------------------------------------------------------


@pytest.mark.parametrize("headers", [{}, HX], ids=["page", "htmx"])
def test_a_role_refusal_is_recorded_with_method_and_path(client, auth, world, headers):
    auth.login("resident_a")
    response = client.get("/audit?actor=secretary_a", headers=headers)
    assert response.status_code == (200 if headers else 403)  # htmx: the message is retargeted
    [entry] = rows(action="permission_refused")
    assert entry.outcome == "refused"
    assert entry.actor_user_id == world.a.resident.id
    assert entry.actor_name == "resident_a"
    assert entry.community_id == world.a.community.id
    assert entry.detail == "403 GET /audit"  # no query string
    assert entry.address == "127.0.0.1"
    assert entry.created_at > datetime.now(UTC) - timedelta(minutes=1)


def test_another_communitys_object_is_a_recorded_404(client, auth, world):
    auth.login("secretary_a")
    other = world.b.pending_volunteer.id
    phone = world.b.pending.person.phone
    assert client.get(f"/volunteers/{other}?q={phone}").status_code == 404
    assert client.post(f"/volunteers/{other}/approve").status_code == 404
    got = rows(action="permission_refused")
    assert [e.detail for e in got] == [
        f"404 GET /volunteers/{other}",
        f"404 POST /volunteers/{other}/approve",
    ]
    assert {e.target_id for e in got} == {other}
    assert {e.target_type for e in got} == {"volunteers.detail", "volunteers.approve"}
    assert all(phone not in e.detail for e in got)
    # B's row is unchanged by the refused approval.
    db.session.commit()
    assert db.session.get(Volunteer, other).status == "pending"


def test_unknown_urls_and_anonymous_visitors_are_not_logged(client, auth, world):
    assert client.get("/wp-login.php").status_code == 404
    assert client.get(f"/volunteers/{world.a.pending_volunteer.id}").status_code in (302, 303)
    auth.login("secretary_a")
    assert client.get("/no-such-page").status_code == 404
    assert client.get("/static/no-such-file.css").status_code == 404
    assert rows(action="permission_refused") == []


# --- recording: exports ----------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_an_export_is_recorded_with_its_filters_and_row_count(client, auth, world, fmt):
    auth.login("secretary_a")
    response = client.get(f"/points/ledger/export.{fmt}?kind=patrol&q=&page=2")
    assert response.status_code == 200
    [entry] = rows(action="export")
    assert entry.outcome == "ok"
    assert entry.actor_name == "secretary_a"
    assert entry.community_id == world.a.community.id
    assert entry.target_type == "export"
    # Blank filters and paging are left out; no patrol entries exist in the world.
    assert re.fullmatch(r"points-ledger-[\d-]{10} \[kind=patrol\] rows=0", entry.detail)


def test_the_volunteer_roster_export_is_recorded_with_filters_and_count(client, auth, world):
    auth.login("secretary_a")
    response = client.get("/volunteers/export.csv?status=approved&q=")
    assert response.status_code == 200
    lines = list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
    [entry] = rows(action="export")
    assert entry.detail.startswith("volunteers-")
    assert "[status=approved]" in entry.detail
    assert entry.detail.endswith(f"rows={len(lines) - 1}")
    assert len(lines) - 1 == 1  # volunteer_a only


def test_a_download_stopped_early_is_recorded_as_failed(app, world):
    from portal.core.exports import audited

    with app.test_request_context("/x?kind=patrol"):
        stream = audited("ledger", [("a",), ("b",), ("c",)])
        next(stream)
        stream.close()  # what a cancelled download does
    [entry] = rows(action="export")
    assert (entry.outcome, entry.detail) == ("failed", "ledger [kind=patrol] rows=1")


# --- recording: approval decisions -----------------------------------------------------------


def test_approval_and_rejection_are_recorded(client, auth, world):
    auth.login("secretary_a")
    pending = world.a.pending_volunteer
    assert client.post(f"/volunteers/{pending.id}/approve").status_code == 303
    other = factories.make_volunteer(
        factories.make_person(world.a.community), ("red_armband",), status="pending"
    )
    phone = "13912345678"
    response = client.post(f"/volunteers/{other.id}/reject", data={"reason": f"call {phone}"})
    assert response.status_code == 303
    approval, rejection = rows(target_type="volunteer")
    assert (approval.action, approval.outcome, approval.target_id) == ("approval", "ok", pending.id)
    assert approval.actor_name == "secretary_a"
    assert approval.community_id == world.a.community.id
    # The party member's report is dated and the resident's account became a volunteer's.
    assert "types=party_member" in approval.detail
    assert "party_report=" in approval.detail
    assert "role resident->volunteer" in approval.detail
    assert (rejection.action, rejection.target_id) == ("rejection", other.id)
    assert phone not in rejection.detail


def test_deciding_on_ones_own_registration_is_recorded_as_refused(client, auth, world):
    own = factories.make_volunteer(world.a.secretary.person, ("mediator",), status="pending")
    auth.login("secretary_a")
    client.post(f"/volunteers/{own.id}/approve")
    [entry] = rows(action="approval")
    assert (entry.outcome, entry.target_id, entry.detail) == ("refused", own.id, "own")
    db.session.commit()
    assert db.session.get(Volunteer, own.id).status == "pending"


# --- the page ----------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["resident", "volunteer", "grid_worker"])
def test_other_roles_get_403(client, auth, world, role):
    auth.login(f"{world.a.users[role].username}")
    assert client.get("/audit").status_code == 403
    assert client.get("/audit/export.csv").status_code == 403


def test_anonymous_visitors_are_sent_to_sign_in(client, world):
    response = client.get("/audit")
    assert response.status_code in (302, 303)
    assert "/login" in response.headers["Location"]


def test_a_secretary_reads_only_their_communitys_log(client, auth, world):
    add_entry(world.a.community.id, actor_name="mine_a", detail="A-detail")
    add_entry(world.b.community.id, actor_name="theirs_b", detail="B-detail")
    add_entry(None, actor_name="nobody", detail="no-community")
    auth.login("secretary_a")
    page = client.get("/audit").get_data(as_text=True)
    assert "mine_a" in page and "A-detail" in page
    assert "theirs_b" not in page and "B-detail" not in page
    assert "no-community" not in page
    assert "<html" in page


def test_targets_are_named_in_the_readers_language(client, auth, world):
    add_entry(world.a.community.id, action="reveal", target_type="person", target_id=41)
    add_entry(world.a.community.id, action="role_changed", target_type="user", target_id=42)
    add_entry(world.a.community.id, action="permission_refused", target_type="people.detail")
    auth.login("secretary_a")
    page = client.get("/audit").get_data(as_text=True)
    assert "居民 #41" in page and "登录账号 #42" in page and "people.detail" in page
    client.post("/language", data={"lang": "en"})
    page = client.get("/audit").get_data(as_text=True)
    assert "Person #41" in page and "Account #42" in page


def test_a_subdistrict_admin_reads_every_community_of_theirs_and_their_admins_rows(
    client, auth, world
):
    sister = factories.make_community(world.a.subdistrict, name="社区A2")
    add_entry(world.a.community.id, detail="in-A")
    add_entry(sister.id, detail="in-A2")
    add_entry(world.b.community.id, detail="in-B")
    add_entry(None, actor_user_id=world.a.admin.id, actor_name="admin_a", detail="admin-A-own")
    add_entry(None, actor_user_id=world.b.admin.id, actor_name="admin_b", detail="admin-B-own")
    auth.login("admin_a")
    page = client.get("/audit").get_data(as_text=True)
    for seen in ("in-A", "in-A2", "admin-A-own", "社区A2"):
        assert seen in page
    assert "in-B" not in page and "admin-B-own" not in page
    # Picking a community shows only its rows.
    page = client.get(f"/audit?community={sister.id}").get_data(as_text=True)
    assert "in-A2" in page and "in-A</td>" not in page and "admin-A-own" not in page
    # A community of another subdistrict picked by hand shows nothing of it.
    page = client.get(f"/audit?community={world.b.community.id}").get_data(as_text=True)
    assert "in-B" not in page


def test_filters_by_action_outcome_actor_and_local_dates(client, auth, world):
    a = world.a.community.id
    # 2030-05-01 23:30 in Beijing is 15:30 UTC the same day; 2030-05-02 00:30 is 16:30 UTC.
    may1, may2 = datetime(2030, 5, 1, 15, 30, tzinfo=UTC), datetime(2030, 5, 1, 16, 30, tzinfo=UTC)
    add_entry(a, action="export", actor_name="Zhang", created_at=may1, detail="e-may1")
    add_entry(a, action="export", actor_name="wang", created_at=may2, detail="e-may2")
    june = datetime(2030, 6, 1, tzinfo=UTC)
    add_entry(a, action="permission_refused", outcome="refused", actor_name="zhao",
              created_at=june, detail="r-1")  # fmt: skip
    auth.login("secretary_a")

    def shown(query: str) -> set[str]:
        page = client.get(f"/audit?{query}", headers=HX).get_data(as_text=True)
        return set(re.findall(r"\b(e-may1|e-may2|r-1)\b", page))

    assert shown("action=export") == {"e-may1", "e-may2"}
    assert shown("outcome=refused") == {"r-1"}
    assert shown("actor=zh") == {"e-may1", "r-1"}  # prefix, any case
    assert shown("actor=%25") == set()  # a LIKE wildcard is only a character
    assert shown("date_from=2030-05-02") == {"e-may2", "r-1"}
    assert shown("date_to=2030-05-01") == {"e-may1"}
    assert shown("date_from=2030-05-01&date_to=2030-05-01&action=export") == {"e-may1"}
    assert shown("action=nonsense&date_from=not-a-date") == {"e-may1", "e-may2", "r-1"}


def test_the_htmx_answer_is_the_list_fragment_with_times_in_beijing(client, auth, world):
    add_entry(
        world.a.community.id, created_at=datetime(2030, 5, 1, 15, 30, 5, tzinfo=UTC), detail="t"
    )
    auth.login("secretary_a")
    response = client.get("/audit", headers=HX)
    page = response.get_data(as_text=True)
    assert "<html" not in page
    assert page.lstrip().startswith('<div id="audit-results">') or 'id="audit-results"' in page
    assert "HX-Request" in response.headers["Vary"]
    assert 'title="2030-05-01 15:30:05 UTC"' in page
    assert ">2030-05-01 23:30:05</time>" in page
    full = client.get("/audit").get_data(as_text=True)
    assert 'hx-sync="this:replace"' in full and "<html" in full


def test_pages_are_newest_first_by_keyset(client, auth, world, app):
    app.config["PAGE_SIZE"] = 3
    for n in range(7):
        add_entry(world.a.community.id, action="export", detail=f"row-{n}-end")
    auth.login("secretary_a")  # its own sign-in row is filtered out below

    def details(url: str) -> tuple[list[str], str]:
        page = client.get(url, headers=HX).get_data(as_text=True)
        older = re.search(r'href="(/audit\?[^"]*before=\d+[^"]*)"', page)
        return re.findall(r"row-(\d)-end", page), older.group(1).replace(
            "&amp;", "&"
        ) if older else ""

    first, older = details("/audit?action=export")
    assert first == ["6", "5", "4"]
    second, older = details(older)
    assert second == ["3", "2", "1"]
    third, older = details(older)
    assert third == ["0"] and older == ""


def test_the_page_runs_a_fixed_number_of_queries(client, auth, world):
    sister = factories.make_community(world.a.subdistrict)
    for community in (world.a.community.id, sister.id):
        add_entry(community)

    def queries(username: str) -> int:
        client.post("/logout")
        auth.login(username)
        client.get("/audit")  # warm: the session's first request may do one-off work
        with count_queries() as counter:
            assert client.get("/audit?action=sign_in").status_code == 200
        return counter["n"]

    few = {name: queries(name) for name in ("secretary_a", "admin_a")}
    for n in range(60):
        add_entry(world.a.community.id if n % 2 else sister.id, detail=f"d{n}")
    db.session.commit()
    many = {name: queries(name) for name in ("secretary_a", "admin_a")}
    assert many == few
    assert max(many.values()) <= 8


def test_the_logs_csv_export_is_scoped_and_itself_audited(client, auth, world):
    add_entry(world.a.community.id, actor_name="mine_a", action="export", detail="x-a")
    add_entry(world.a.community.id, actor_name="mine_a", action="sign_in", detail="y-a")
    add_entry(world.b.community.id, actor_name="theirs_b", action="export", detail="x-b")
    auth.login("secretary_a")
    response = client.get("/audit/export.csv?action=export")
    assert response.status_code == 200
    assert response.headers["Content-Disposition"].startswith('attachment; filename="audit-log-')
    lines = list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
    assert [line[-1] for line in lines[1:]] == ["x-a"]
    assert "theirs_b" not in response.get_data(as_text=True)
    [own] = rows(action="export", actor_name="secretary_a")
    assert own.detail.startswith("audit-log-") and "[action=export]" in own.detail
    assert own.detail.endswith("rows=1")
    assert client.get("/audit/export.pdf").status_code == 404
    xlsx = client.get("/audit/export.xlsx")
    assert xlsx.status_code == 200 and xlsx.data[:2] == b"PK"


# --- append-only -------------------------------------------------------------------------------


def test_the_audit_modules_have_no_update_or_delete_path():
    for name in ("portal/trust/audit.py", "portal/trust/audit_views.py"):
        source = (ROOT / name).read_text()
        tree = ast.parse(source)
        called = {
            node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            for node in ast.walk(tree)
            if isinstance(node, ast.Call)
        }
        assert not called & {"update", "delete", "merge", "truncate"}, name
        assert not re.search(r"\b(UPDATE|DELETE|TRUNCATE)\b", source), name
        imported = {
            alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom)
            for alias in node.names
        }
        assert not imported & {"update", "delete"}, name
    views = (ROOT / "portal/trust/audit_views.py").read_text()
    assert not re.search(r"@bp\.(post|put|patch|delete|route)", views)


def test_the_orm_refuses_to_change_or_delete_a_row(app, world):
    entry = add_entry(world.a.community.id, detail="kept")
    db.session.commit()
    entry.detail = "changed"
    with pytest.raises(RuntimeError, match="append-only"):
        db.session.commit()
    db.session.rollback()
    db.session.delete(db.session.get(AuditEntry, entry.id))
    with pytest.raises(RuntimeError, match="append-only"):
        db.session.commit()
    db.session.rollback()
    assert [e.detail for e in rows()] == ["kept"]


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_log SET detail = 'changed'",
        "DELETE FROM audit_log",
        "UPDATE audit_log SET outcome = 'ok' WHERE id > 0",
    ],
)
def test_the_database_refuses_to_change_or_delete_a_row(app, world, statement):
    add_entry(world.a.community.id, detail="kept", outcome="refused")
    db.session.commit()
    with pytest.raises(DBAPIError, match="append-only"):
        db.session.execute(text(statement))
    db.session.rollback()
    assert [(e.detail, e.outcome) for e in rows()] == [("kept", "refused")]


def test_postgresql_refuses_truncate_even_with_the_purge_switch(app, world):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("TRUNCATE is PostgreSQL's")
    add_entry(world.a.community.id, detail="kept")
    db.session.commit()
    db.session.execute(text("SELECT set_config('tongxin.audit_log_purge', 'on', true)"))
    with pytest.raises(DBAPIError, match="append-only"):
        db.session.execute(text("TRUNCATE audit_log"))
    db.session.rollback()
    assert len(rows()) == 1


def test_the_purge_switch_lasts_one_transaction_only(app, world):
    add_entry(world.a.community.id, detail="kept")
    db.session.commit()
    if db.engine.dialect.name == "sqlite":
        db.session.execute(text("PRAGMA user_version = 7411"))
        db.session.rollback()
        assert db.session.execute(text("PRAGMA user_version")).scalar() == 0
    else:
        db.session.execute(text("SELECT set_config('tongxin.audit_log_purge', 'on', true)"))
        db.session.commit()
    with pytest.raises(DBAPIError, match="append-only"):
        db.session.execute(text("DELETE FROM audit_log"))
    db.session.rollback()
    assert len(rows()) == 1


# --- nothing secret or personal in any log -------------------------------------------------------


def test_scrub_masks_phone_and_identity_numbers_in_free_text():
    assert audit.scrub("call 13812345678 or 11010519491231002X now") == (
        "call 138****5678 or 110105********002X now"
    )
    assert audit.scrub("order 1381234567890123") == "order 1381234567890123"  # not a phone
    assert audit.scrub(None) == ""


def test_no_log_holds_a_password_a_full_number_a_secret_or_a_session_token(
    client, auth, world, app, caplog
):
    caplog.set_level(logging.DEBUG)
    a = world.a
    phones = set(db.session.scalars(select(Person.phone).where(Person.phone.is_not(None))))
    wrong = "wrong-password-typed-9"
    # Failed sign-ins: a wrong password, an unknown account typed as a phone, a password typed
    # into the account field.
    client.post("/login", data={"identifier": "secretary_a", "password": wrong})
    client.post("/login", data={"identifier": a.resident.person.phone, "password": wrong})
    client.post("/login", data={"identifier": "13700001111", "password": wrong})
    phones.add("13700001111")
    # Sign-in, a reveal, refusals, exports, an approval, a role change.
    auth.login("secretary_a")
    cookie = client.get_cookie("session").value
    client.post(f"/people/{a.resident.person.id}/phone")
    client.get(f"/people/{world.b.resident.person.id}?phone={world.b.resident.person.phone}")
    client.get(f"/volunteers/export.csv?q={a.volunteer.person.phone}")
    client.get("/audit/export.csv")
    client.post(f"/volunteers/{a.pending_volunteer.id}/approve")
    from portal.auth import accounts

    with app.test_request_context("/"):
        accounts.change_role(a.secretary, a.gridworker, "volunteer")
        db.session.commit()
    auth.logout()

    db.session.commit()
    tokens = set(db.session.scalars(select(User.session_token)))
    secrets = {
        factories.PASSWORD,
        wrong,
        app.config["SECRET_KEY"],
        cookie,
        *tokens,
        *phones,
    }
    entries = rows()
    actions = {e.action for e in entries}
    assert {"sign_in_failed", "sign_in", "permission_refused", "export", "approval"} <= actions
    columns = [c.key for c in AuditEntry.__table__.columns]
    stored = "\n".join(str(getattr(e, c)) for e in entries for c in columns)
    logged = "\n".join(record.getMessage() for record in caplog.records) + caplog.text
    for secret in secrets:
        assert secret not in stored, f"audit_log holds {secret[:3]}…"
        assert secret not in logged, f"the app's log holds {secret[:3]}…"
    # Masked numbers are there: the log still says whose number it was about.
    masked = {e.actor_name for e in entries if e.action == "sign_in_failed"}
    assert "137****1111" in masked
    assert db.session.scalar(select(func.count()).select_from(Community)) >= 2


def test_a_password_typed_into_the_account_field_is_not_logged(client, world):
    client.post("/login", data={"identifier": factories.PASSWORD, "password": "x-wrong-x1"})
    stored = " ".join(e.actor_name + e.detail for e in rows())
    assert factories.PASSWORD not in stored


@pytest.mark.parametrize("day", ["0001-01-01", "9999-12-31"])
def test_far_off_filter_dates_find_nothing_instead_of_failing(client, auth, world, day):
    auth.login("secretary_a")
    response = client.get(f"/audit?date_from={day}&date_to={day}")
    assert response.status_code == 200
    assert client.get(f"/audit/export.csv?date_from={day}&date_to={day}").status_code == 200
