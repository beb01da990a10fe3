"""The roster: scope per role, filters, search, pagination, a fixed number of queries, and CSV."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from portal.core.timeutil import local_today
from portal.extensions import db
from portal.trust.models import AuditEntry
from tests.volunteers.conftest import HX, count_queries, make_applicant


@pytest.fixture
def crowd(world):
    """A's volunteers of every kind (besides the world's volunteer_a and pending_a), one in B."""
    a = world.a
    return {
        "party": make_applicant(
            a,
            ("party_member",),
            status="approved",
            name="党员甲",
            grid=a.grid2,
            employer="安康学院",
            party_branch="机关党支部",
        ),
        "elder": make_applicant(
            a, ("five_elders", "mediator"), name="老教师乙", five_elder_kind="teacher"
        ),
        "rejected": make_applicant(
            a, ("red_armband",), status="rejected", name="退回丙", rejection_reason="重复"
        ),
        "b": make_applicant(world.b, ("red_armband",), name="西城丁"),
    }


def names(page: str, candidates) -> set[str]:
    return {name for name in candidates if name in page}


ALL = ("党员甲", "老教师乙", "退回丙", "西城丁")


def test_secretary_sees_the_whole_community(client, auth, world, crowd):
    auth.login("secretary_a")
    response = client.get("/volunteers/")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert names(page, ALL) == {"党员甲", "老教师乙", "退回丙"}
    assert world.a.volunteer.person.name in page and world.a.pending.person.name in page
    phone = crowd["party"].person.phone  # masked for every role: full only by an audited reveal
    assert phone not in page and phone[:3] + "****" + phone[-4:] in page
    assert f'href="/volunteers/{crowd["party"].id}"' in page
    assert 'id="roster-results"' in page


def test_grid_worker_sees_their_grids(client, auth, world, crowd):
    auth.login("gridworker_a")
    page = client.get("/volunteers/").get_data(as_text=True)
    assert names(page, ALL) == {"老教师乙", "退回丙"}  # grid 1; 党员甲 serves in grid 2
    assert world.a.pending.person.name not in page


def test_subdistrict_admin_sees_masked_phones(client, auth, world, crowd):
    auth.login("admin_a")
    page = client.get("/volunteers/").get_data(as_text=True)
    assert names(page, ALL) == {"党员甲", "老教师乙", "退回丙"}  # B is another subdistrict
    phone = crowd["party"].person.phone
    assert phone not in page
    assert phone[:3] + "****" + phone[-4:] in page
    # The community filter; a community outside the subdistrict shows nothing.
    assert 'name="community"' in page
    page = client.get(f"/volunteers/?community={world.a.community.id}").get_data(as_text=True)
    assert "党员甲" in page
    page = client.get(f"/volunteers/?community={world.b.community.id}").get_data(as_text=True)
    assert names(page, ALL) == set()


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("type=party_member", {"党员甲"}),
        ("type=mediator", {"老教师乙"}),
        ("status=rejected", {"退回丙"}),
        ("status=approved&type=party_member", {"党员甲"}),
        ("status=pending&type=party_member", set()),
        ("q=老教师", {"老教师乙"}),
        ("q=%25", set()),  # a literal % is searched for, not a wildcard
        ("type=nonsense&status=whatever&grid=abc", {"党员甲", "老教师乙", "退回丙"}),
    ],
)
def test_filters(client, auth, world, crowd, query, expected):
    auth.login("secretary_a")
    page = client.get(f"/volunteers/?{query}").get_data(as_text=True)
    assert names(page, ALL) == expected


def test_grid_filter_and_phone_search(client, auth, world, crowd):
    auth.login("secretary_a")
    page = client.get(f"/volunteers/?grid={world.a.grid2.id}").get_data(as_text=True)
    assert names(page, ALL) == {"党员甲"}
    assert world.a.pending.person.name in page  # pending_a reports to grid 2 too
    phone = crowd["elder"].person.phone
    page = client.get(f"/volunteers/?q={phone[-6:]}").get_data(as_text=True)
    assert names(page, ALL) == {"老教师乙"}
    page = client.get(f"/volunteers/?q={phone[:3]}-{phone[3:7]}-{phone[7:]}").get_data(as_text=True)
    assert names(page, ALL) == {"老教师乙"}


def test_status_default_is_all(client, auth, world, crowd, english):
    auth.login("secretary_a")
    page = client.get("/volunteers/").get_data(as_text=True)
    for status in ("Awaiting approval", "Approved", "Rejected"):
        assert status in page
    assert "5 volunteers found." in page


def test_htmx_filter_returns_the_results_fragment(client, auth, world, crowd):
    auth.login("secretary_a")
    response = client.get("/volunteers/?type=party_member", headers=HX)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "<html" not in page
    assert page.lstrip().startswith('<div id="roster-results">')
    assert "HX-Request" in response.headers["Vary"]
    assert names(page, ALL) == {"党员甲"}
    # The export link keeps the filters.
    assert "/volunteers/export.csv?type=party_member" in page


def test_filter_form_works_with_and_without_htmx(client, auth, world):
    auth.login("secretary_a")
    page = client.get("/volunteers/").get_data(as_text=True)
    form = re.search(r"<form class=\"filters\"[^>]*>", page).group(0)
    assert 'method="get"' in form and 'action="/volunteers/"' in form
    assert 'hx-target="#roster-results"' in form and 'hx-push-url="true"' in form


def test_pagination_keeps_filters(client, auth, world, english):
    for n in range(25):
        make_applicant(
            world.a,
            ("mediator",),
            status="approved",
            name=f"调解{n:02d}",
            applied_at=datetime(2026, 1, 1, 0, n, tzinfo=UTC),
        )
    auth.login("secretary_a")
    first = client.get("/volunteers/?type=mediator").get_data(as_text=True)
    assert first.count('<tr id="roster-') == 20
    assert "Page 1 of 2" in first
    assert "调解24" in first and "调解05" in first and "调解04" not in first  # newest first
    assert "/volunteers/?page=2&amp;type=mediator" in first
    second = client.get("/volunteers/?type=mediator&page=2").get_data(as_text=True)
    assert second.count('<tr id="roster-') == 5
    assert "调解04" in second and "调解00" in second
    beyond = client.get("/volunteers/?page=99")
    assert beyond.status_code == 200


@pytest.mark.parametrize("username", ["secretary_a", "admin_a", "gridworker_a"])
def test_roster_runs_a_fixed_number_of_queries(client, auth, world, username):
    auth.login(username)

    def queries() -> int:
        with count_queries() as counter:
            assert client.get("/volunteers/").status_code == 200
        return counter["n"]

    make_applicant(world.a, ("red_armband", "mediator"))
    few = queries()
    for _ in range(15):
        make_applicant(
            world.a, ("party_member", "five_elders"), grid=world.a.grid, five_elder_kind="veteran"
        )
    assert queries() == few


def test_queue_runs_a_fixed_number_of_queries(client, auth, world):
    auth.login("secretary_a")

    def queries() -> int:
        with count_queries() as counter:
            assert client.get("/volunteers/queue").status_code == 200
        return counter["n"]

    make_applicant(world.a)
    few = queries()
    for _ in range(15):
        make_applicant(world.a, ("party_member", "red_armband"), grid=world.a.grid2)
    assert queries() == few


def read_csv(response) -> list[list[str]]:
    raw = response.get_data()
    assert raw.startswith("\ufeff".encode())  # a BOM, so that Excel reads Chinese
    return list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))


def test_csv_export(client, auth, world, crowd, english):
    auth.login("secretary_a")
    response = client.get("/volunteers/export.csv", buffered=True)
    assert response.status_code == 200
    assert "Content-Length" not in response.headers  # streamed, not built in memory
    assert response.mimetype == "text/csv"
    disposition = response.headers["Content-Disposition"]
    assert disposition == f'attachment; filename="volunteers-{local_today().isoformat()}.csv"'
    rows = read_csv(response)
    assert rows[0][:6] == ["Name", "Phone", "Community", "Grid", "Types", "Status"]
    by_name = {row[0]: row for row in rows[1:]}
    assert set(by_name) == {
        "党员甲",
        "老教师乙",
        "退回丙",
        world.a.volunteer.person.name,
        world.a.pending.person.name,
    }
    elder = by_name["老教师乙"]
    assert elder[1] == crowd["elder"].person.phone
    assert elder[2] == world.a.community.name
    assert elder[4] == "Five elders、Mediator"
    assert elder[5] == "Awaiting approval"
    assert elder[10] == "Retired teacher"
    party = by_name["党员甲"]
    assert (party[3], party[7], party[8]) == (world.a.grid2.name, "安康学院", "机关党支部")
    assert by_name[world.a.volunteer.person.name][6] == "a-0001"


def test_csv_export_filters_and_masks_for_the_subdistrict(client, auth, world, crowd):
    auth.login("admin_a")
    rows = read_csv(client.get("/volunteers/export.csv?type=party_member", buffered=True))
    assert [row[0] for row in rows[1:]] == ["党员甲", world.a.pending.person.name]
    phone = crowd["party"].person.phone
    assert rows[1][1] == phone[:3] + "****" + phone[-4:]


def test_csv_export_of_a_grid_worker_is_their_grids(client, auth, world, crowd):
    auth.login("gridworker_a")
    rows = read_csv(client.get("/volunteers/export.csv", buffered=True))
    assert {row[0] for row in rows[1:]} == {"老教师乙", "退回丙", world.a.volunteer.person.name}


def test_csv_cells_cannot_become_formulas(client, auth, world):
    make_applicant(world.a, name="公式", skills="=HYPERLINK(1)")
    auth.login("secretary_a")
    rows = read_csv(client.get("/volunteers/export.csv?q=公式", buffered=True))
    assert rows[1][11] == "'=HYPERLINK(1)"


def test_detail_page(client, auth, world, crowd, english):
    auth.login("secretary_a")
    volunteer = crowd["party"]
    page = client.get(f"/volunteers/{volunteer.id}").get_data(as_text=True)
    assert "党员甲" in page and "安康学院" in page and "机关党支部" in page
    phone = volunteer.person.phone
    assert phone not in page and phone[:3] + "****" + phone[-4:] in page
    assert f'action="/volunteers/{volunteer.id}/phone"' in page
    auth.logout()
    auth.login("admin_a")
    page = client.get(f"/volunteers/{volunteer.id}").get_data(as_text=True)
    assert "党员甲" in page and phone not in page and "/phone" not in page


def _reveals(person_id: int) -> list[str]:
    db.session.commit()
    return list(
        db.session.scalars(
            select(AuditEntry.actor_name).where(
                AuditEntry.action == "reveal", AuditEntry.target_id == person_id
            )
        )
    )


@pytest.mark.parametrize("htmx", [True, False])
def test_staff_reveal_a_volunteers_phone_and_each_reveal_is_audited(
    client, auth, world, crowd, english, htmx
):
    volunteer = crowd["party"]  # serves in grid 2
    phone = volunteer.person.phone
    auth.login("secretary_a")
    headers = {"HX-Request": "true"} if htmx else {}
    response = client.post(f"/volunteers/{volunteer.id}/phone", headers=headers)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert f'href="tel:{phone}"' in page and "recorded in the audit log" in page
    assert page.lstrip().startswith('<dd id="phone">') is htmx
    assert _reveals(volunteer.person.id) == ["secretary_a"]


@pytest.mark.parametrize(
    "username, status",
    [
        ("gridworker_a", 404),  # the volunteer serves in grid 2, not theirs
        ("admin_a", 403),
        ("volunteer_a", 403),
        ("resident_a", 403),
        ("secretary_b", 404),
    ],
)
def test_who_may_not_reveal_a_volunteers_phone(client, auth, world, crowd, username, status):
    volunteer = crowd["party"]
    auth.login(username)
    response = client.post(f"/volunteers/{volunteer.id}/phone")
    assert response.status_code == status
    assert volunteer.person.phone not in response.get_data(as_text=True)
    assert _reveals(volunteer.person.id) == []


def test_a_grid_worker_reveals_a_volunteer_of_their_grid(client, auth, world, crowd):
    volunteer = crowd["elder"]
    assert volunteer.grid_id == world.a.grid.id
    auth.login("gridworker_a")
    page = client.post(f"/volunteers/{volunteer.id}/phone").get_data(as_text=True)
    assert f'href="tel:{volunteer.person.phone}"' in page
    assert _reveals(volunteer.person.id) == ["gridworker_a"]
