"""The residents list: search, filters, scope per role, masking, htmx fragment, query count."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import event

from portal.extensions import db
from tests import factories


@pytest.fixture
def people(world):
    """Named residents in A: two in grid 1, one in grid 2 with care needs, one homeless."""
    a = world.a
    now = datetime.now(UTC)
    return {
        "zhang": factories.make_person(
            a.community, household=a.household, name="张秀英", phone="13811112222"
        ),
        "zhao": factories.make_person(
            a.community, household=a.household, name="赵张明", phone="13933334444"
        ),
        "li": factories.make_person(
            a.community,
            household=a.household2,
            name="李桂兰",
            phone="13655556666",
            lives_alone=True,
            care_consent_at=now,
        ),
        "wang": factories.make_person(a.community, name="王无房", phone="13577778888"),
    }


def _names(client, query: str = "") -> str:
    response = client.get(f"/people/{query}")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_search_by_name_substring(client, auth, people):
    auth.login("secretary_a")
    page = _names(client, "?q=张")
    assert "张秀英" in page and "赵张明" in page and "李桂兰" not in page


def test_search_by_latin_name_ignores_case(client, auth, world):
    factories.make_person(world.a.community, household=world.a.household, name="Maria Lee")
    auth.login("secretary_a")
    assert "Maria Lee" in _names(client, "?q=maria")


def test_search_by_whole_phone_number_only(client, auth, people):
    auth.login("secretary_a")
    # phones are masked in the list: part of a number finds nobody (searching cannot unmask)
    page = _names(client, "?q=1381111")
    assert "张秀英" not in page and "赵张明" not in page
    page = _names(client, "?q=13811112222")
    assert "张秀英" in page and "赵张明" not in page
    page = _names(client, "?q=13655556666")
    assert "李桂兰" in page and "张秀英" not in page
    page = _names(client, "?q=5555")  # not a prefix
    assert "李桂兰" not in page


def test_filter_by_grid(client, auth, world, people):
    auth.login("secretary_a")
    page = _names(client, f"?grid={world.a.grid2.id}")
    assert "李桂兰" in page and "张秀英" not in page and "王无房" not in page


def test_filter_by_care_need(client, auth, people):
    auth.login("secretary_a")
    page = _names(client, "?care=lives_alone")
    assert "李桂兰" in page and "张秀英" not in page
    assert "没有符合条件的居民。" in _names(client, "?care=disabled")


def test_filter_with_and_without_household(client, auth, people):
    auth.login("secretary_a")
    without = _names(client, "?household=without")
    assert "王无房" in without and "张秀英" not in without
    with_ = _names(client, "?household=with")
    assert "张秀英" in with_ and "王无房" not in with_


def test_bad_filter_values_are_ignored(client, auth, people):
    auth.login("secretary_a")
    page = _names(client, "?grid=abc&community=x&care=nonsense&household=maybe&page=zz")
    assert "张秀英" in page and "王无房" in page


def test_grid_worker_sees_only_their_grids(client, auth, people):
    auth.login("gridworker_a")
    page = _names(client)
    assert "张秀英" in page and "赵张明" in page
    assert "李桂兰" not in page and "王无房" not in page


def test_secretary_sees_masked_phone_and_care(client, auth, people):
    auth.login("secretary_a")
    page = _names(client)
    assert "136****6666" in page and "13655556666" not in page
    assert 'name="care"' in page
    assert _names(client, "?q=李").count('class="badge"') == 1


def test_admin_sees_subdistrict_masked_without_care(client, auth, world, people):
    sibling = factories.make_community(world.a.subdistrict, name="社区A2")
    factories.make_person(sibling, name="邻社区居民", phone="13712345678")
    auth.login("admin_a")
    page = _names(client)
    assert "张秀英" in page and "邻社区居民" in page
    assert world.b.resident.person.name not in page
    assert "138****2222" in page and "13811112222" not in page
    assert 'class="badge"' not in page  # care needs are not shown to the subdistrict
    assert 'name="community"' in page and 'name="care"' not in page
    page = _names(client, f"?community={sibling.id}")
    assert "邻社区居民" in page and "张秀英" not in page
    # masked viewers find a number only when they know all of it
    assert "张秀英" not in _names(client, "?q=1381111")
    assert "张秀英" in _names(client, "?q=13811112222")
    # a community of another subdistrict gives nothing, not B's residents
    page = _names(client, f"?community={world.b.community.id}")
    assert world.b.resident.person.name not in page


def test_htmx_request_gets_the_results_fragment(client, auth, people):
    auth.login("secretary_a")
    response = client.get("/people/?q=张", headers={"HX-Request": "true"})
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert body.lstrip().startswith('<div id="people-results">')
    assert "<html" not in body and "张秀英" in body
    assert "HX-Request" in response.headers["Vary"]


def test_filter_form_works_with_and_without_js(client, auth, people):
    auth.login("secretary_a")
    page = _names(client)
    assert 'method="get" action="/people/"' in page
    assert 'hx-get="/people/" hx-target="#people-results"' in page
    assert 'hx-push-url="true"' in page
    assert '<div id="people-results">' in page


def test_pagination_twenty_per_page_keeps_filters(client, auth, world):
    for n in range(25):
        factories.make_person(world.a.community, household=world.a.household, name=f"翻页{n:02d}")
    auth.login("secretary_a")
    first = _names(client, "?q=翻页")
    assert first.count(">翻页") == 20
    assert "翻页00" in first and "翻页19" in first and "翻页20" not in first
    assert "page=2" in first and "q=%E7%BF%BB%E9%A1%B5" in first
    second = _names(client, "?q=翻页&page=2")
    assert second.count(">翻页") == 5
    assert "翻页20" in second and "翻页24" in second and "翻页19" not in second


def _count_queries(client, url: str) -> int:
    statements: list[str] = []

    def record(conn, cursor, statement, *args):
        if not statement.lstrip().upper().startswith(("BEGIN", "SAVEPOINT", "RELEASE")):
            statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        assert client.get(url).status_code == 200
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    return len(statements)


@pytest.mark.parametrize("username", ["secretary_a", "gridworker_a", "admin_a"])
def test_query_count_does_not_grow_with_rows(client, auth, world, username):
    auth.login(username)
    url = "/people/"
    # More than a page each time, so that both requests also count the total.
    for n in range(22):
        factories.make_person(world.a.community, household=world.a.household, name=f"少{n}")
    few = _count_queries(client, url)
    for n in range(30):
        household = world.a.household if n % 2 else world.a.household2
        factories.make_person(world.a.community, household=household, name=f"多{n}")
        factories.make_volunteer(factories.make_person(world.a.community, household=household))
    many = _count_queries(client, url)
    assert many == few
    assert few <= 8
