"""The page cache (portal/core/pagecache.py): what is served again, and what makes it render anew.

Invalidation is the database's (triggers bump the community's data stamp, tests/core/
test_stamps.py); these tests prove the pages follow it: a committed write to the community
shows on the next request, a write elsewhere does not disturb it, and nothing personal or
one-off (another user's page, a flash message, the CSRF token) is ever served to the wrong
request.
"""

from __future__ import annotations

import gzip
import re
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, text, update

from portal import policy
from portal.core import pagecache
from portal.core.pagecache import HEADER, PageCache
from portal.extensions import db
from portal.people.models import Person
from tests.conftest import CSRFClient
from tests.factories import PASSWORD
from tests.help.conftest import in_make_catalogue, in_make_request
from tests.helpers import count_queries
from tests.notifications.conftest import make_shift

CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)">')


def _untokened(page: str) -> str:
    """The page without its CSRF token, wherever it is (meta tag, hx-headers): a token is
    signed with the second it was made in, so two answers a second apart carry different ones."""
    return page.replace(CSRF_META.search(page).group(1), "")


def _login(client, user) -> None:
    response = client.post("/login", data={"identifier": user.username, "password": PASSWORD})
    assert response.status_code == 303


@pytest.fixture
def volunteer_client(app, world, auth, client):
    auth.login(world.a.volunteer.username)
    return client


def _rename(person_id: int, name: str) -> None:
    db.session.execute(update(Person).where(Person.id == person_id).values(name=name))
    db.session.commit()


def test_the_second_view_is_served_from_the_cache_with_one_query(volunteer_client, world):
    first = volunteer_client.get("/")
    assert first.headers[HEADER] == "miss"
    with count_queries() as counter:
        second = volunteer_client.get("/")
    assert second.headers[HEADER] == "hit"
    assert second.status_code == 200
    # The user with the data stamp, nothing else (and SQLite's explicit BEGIN).
    assert counter["n"] == (2 if db.engine.dialect.name == "sqlite" else 1)
    assert _untokened(second.text) == _untokened(first.text)
    # The answer still carries every header of a rendered page.
    assert "no-store" in second.headers["Cache-Control"]
    assert second.headers["Content-Security-Policy"] == first.headers["Content-Security-Policy"]
    assert second.mimetype == "text/html"


def test_a_write_to_the_community_shows_on_the_next_view(volunteer_client, world):
    volunteer_client.get("/")
    assert volunteer_client.get("/").headers[HEADER] == "hit"
    # A Core UPDATE, no ORM event: the database's trigger is what invalidates.
    _rename(world.a.volunteer.person.id, "改名后的志愿者")
    again = volunteer_client.get("/")
    assert again.headers[HEADER] == "miss"
    assert "改名后的志愿者" in again.text


def test_raw_sql_writes_invalidate_too(volunteer_client, world):
    volunteer_client.get("/")
    db.session.execute(
        text("UPDATE person SET name = :n WHERE id = :id"),
        {"n": "直接写入", "id": world.a.volunteer.person.id},
    )
    db.session.commit()
    again = volunteer_client.get("/")
    assert again.headers[HEADER] == "miss"
    assert "直接写入" in again.text


def test_a_write_in_another_community_leaves_the_page_cached(volunteer_client, world):
    volunteer_client.get("/")
    _rename(world.b.volunteer.person.id, "别的社区")
    assert volunteer_client.get("/").headers[HEADER] == "hit"


def test_a_rolled_back_write_leaves_the_page_cached(volunteer_client, world):
    volunteer_client.get("/")
    db.session.execute(
        update(Person).where(Person.id == world.a.volunteer.person.id).values(name="不算数")
    )
    db.session.rollback()
    page = volunteer_client.get("/")
    assert page.headers[HEADER] == "hit"
    assert "不算数" not in page.text


def test_a_new_shift_shows_on_the_cached_shift_list(volunteer_client, world):
    volunteer_client.get("/shifts")
    assert volunteer_client.get("/shifts").headers[HEADER] == "hit"
    make_shift(world.a, datetime.now(UTC) + timedelta(days=2), title="新排的巡逻")
    page = volunteer_client.get("/shifts")
    assert page.headers[HEADER] == "miss"
    assert "新排的巡逻" in page.text


def test_two_users_never_share_a_page(app, world):
    first, second = app.test_client(), app.test_client()
    _login(first, world.a.volunteer)
    _login(second, world.a.secretary)
    assert first.get("/points/leaderboard?scope=community").headers[HEADER] == "miss"
    answer = second.get("/points/leaderboard?scope=community")
    assert answer.headers[HEADER] == "miss"
    assert first.get("/").headers[HEADER] == "miss"
    home = second.get("/")
    assert home.headers[HEADER] == "miss"
    assert world.a.secretary.display_name in home.text


def test_each_language_has_its_own_page(volunteer_client):
    chinese = volunteer_client.get("/points")
    assert volunteer_client.post("/language", data={"lang": "en"}).status_code == 303
    english = volunteer_client.get("/points")
    assert english.headers[HEADER] == "miss"
    assert 'lang="en"' in english.text
    assert volunteer_client.post("/language", data={"lang": "zh_Hans_CN"}).status_code == 303
    back = volunteer_client.get("/points")
    assert back.headers[HEADER] == "hit"
    assert _untokened(back.text) == _untokened(chinese.text)


def test_a_cached_page_carries_the_asking_sessions_own_csrf_token(app, world):
    phone, laptop = app.test_client(), app.test_client()
    _login(phone, world.a.volunteer)
    _login(laptop, world.a.volunteer)
    phone_token = CSRF_META.search(phone.get("/").text).group(1)
    page = laptop.get("/")
    assert page.headers[HEADER] == "hit"
    laptop_token = CSRF_META.search(page.text).group(1)
    assert laptop_token != phone_token
    assert pagecache.PLACEHOLDER not in page.text
    # The token in the cached page is the laptop session's: a form posted with it is accepted.
    answer = laptop.post(
        "/language", data={"lang": "en"}, headers={"X-CSRFToken": laptop_token}, csrf=False
    )
    assert answer.status_code == 303


def test_a_flash_message_is_shown_once_and_never_cached(volunteer_client):
    volunteer_client.get("/points")
    assert volunteer_client.get("/points").headers[HEADER] == "hit"
    with volunteer_client.session_transaction() as session:
        session["_flashes"] = [("success", "一条只显示一次的消息")]
    shown = volunteer_client.get("/points")
    assert "一条只显示一次的消息" in shown.text
    assert HEADER not in shown.headers
    after = volunteer_client.get("/points")
    assert "一条只显示一次的消息" not in after.text
    assert after.headers[HEADER] == "hit"


def test_page_and_fragment_are_kept_apart(volunteer_client):
    page = volunteer_client.get("/shifts?view=week")
    fragment = volunteer_client.get("/shifts?view=week", headers={"HX-Request": "true"})
    assert fragment.headers[HEADER] == "miss"
    assert "<html" in page.text and "<html" not in fragment.text
    again = volunteer_client.get("/shifts?view=week", headers={"HX-Request": "true"})
    assert again.headers[HEADER] == "hit"
    assert "<html" not in again.text
    assert "HX-Request" in again.headers["Vary"]


def test_the_query_string_is_part_of_the_key(volunteer_client):
    volunteer_client.get("/points/leaderboard?scope=grid")
    community = volunteer_client.get("/points/leaderboard?scope=community")
    assert community.headers[HEADER] == "miss"


def test_nothing_is_served_after_a_minute(volunteer_client, monkeypatch):
    volunteer_client.get("/shifts?view=week")
    assert volunteer_client.get("/shifts?view=week").headers[HEADER] == "hit"
    later = pagecache.current_minute() + 1
    monkeypatch.setattr(pagecache, "current_minute", lambda: later)
    assert volunteer_client.get("/shifts?view=week").headers[HEADER] == "miss"


def test_accounts_above_one_community_are_not_cached(app, world, auth, client):
    auth.login(world.a.admin.username)
    client.get("/")
    assert HEADER not in client.get("/").headers


def test_a_subdistrict_leaderboard_is_not_cached(volunteer_client):
    volunteer_client.get("/points/leaderboard?scope=subdistrict")
    answer = volunteer_client.get("/points/leaderboard?scope=subdistrict")
    assert answer.status_code == 200
    assert HEADER not in answer.headers


def test_an_error_answer_is_not_cached(volunteer_client, world):
    other = make_shift(world.b, datetime.now(UTC) + timedelta(days=2))
    assert volunteer_client.get(f"/shifts/{other.id}").status_code == 404
    again = volunteer_client.get(f"/shifts/{other.id}")
    assert again.status_code == 404
    assert HEADER not in again.headers


def test_a_revoked_account_is_not_served_its_cached_page(volunteer_client, world):
    volunteer_client.get("/points")
    db.session.execute(
        text('UPDATE "user" SET active = :no WHERE id = :id'),
        {"no": False, "id": world.a.volunteer.id},
    )
    db.session.commit()
    answer = volunteer_client.get("/points")
    assert answer.status_code in (302, 303)
    assert "/login" in answer.headers["Location"]


def test_open311_lists_are_cached_per_jurisdiction_and_follow_new_requests(client, world):
    url = f"/open311/v2/requests.json?jurisdiction_id={world.a.community.id}"
    first = client.get(url)
    assert first.status_code == 200
    assert first.headers[HEADER] == "miss"
    assert client.get(url).headers[HEADER] == "hit"
    catalogue = in_make_catalogue(world.a.community)
    assert client.get(url).headers[HEADER] == "miss"  # the catalogue is data of the community
    assert client.get(url).headers[HEADER] == "hit"
    catalogue.water.public = True  # only public categories' requests are listed without a key
    in_make_request(world.a, catalogue.water, description="楼道灯坏了")
    fresh = client.get(url)
    assert fresh.headers[HEADER] == "miss"
    assert len(fresh.json) == len(first.json) + 1
    # Another jurisdiction, another entry; an unknown one is an error and never stored.
    other = client.get(f"/open311/v2/requests.json?jurisdiction_id={world.b.community.id}")
    assert other.headers[HEADER] == "miss"
    assert client.get("/open311/v2/requests.json?jurisdiction_id=999999").status_code == 404
    assert HEADER not in client.get("/open311/v2/requests.json?jurisdiction_id=999999").headers


def test_a_get_that_writes_is_not_stored(app, world, auth, client, monkeypatch):
    monkeypatch.setitem(policy.POLICY, "writes", {"GET": policy.allow(policy.EVERYONE)})

    @app.get("/_test/writes")
    @pagecache.cached_page()
    def writes():
        db.session.execute(text("UPDATE person SET name = name WHERE id = -1"))
        return "wrote"

    auth.login(world.a.volunteer.username)
    assert client.get("/_test/writes").text == "wrote"
    assert HEADER not in client.get("/_test/writes").headers


def test_the_cache_can_be_turned_off(world, database_url):
    from portal import create_app

    app = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": database_url,
            "SECRET_KEY": "test-secret-key-that-is-long-enough-1234",
            "PAGE_CACHE_BYTES": 0,
        }
    )
    assert "page_cache" not in app.extensions
    app.test_client_class = CSRFClient
    client = app.test_client()
    with app.app_context():
        _login(client, world.a.volunteer)
        client.get("/")
        assert HEADER not in client.get("/").headers


def test_the_cache_keeps_to_its_byte_budget():
    cache = PageCache(max_bytes=8000)
    page = pagecache._Page(b"x" * 900, "text/html", (), False, frozenset())
    for n in range(20):
        cache.put(("page", n), page)
    assert len(cache) == 8  # 8 x 900 bytes fit; the least recently used went first
    assert cache.get(("page", 19)) is page
    assert cache.get(("page", 0)) is None
    cache.put(("big",), pagecache._Page(b"x" * 1001, "text/html", (), False, frozenset()))
    assert cache.get(("big",)) is None  # more than an eighth of the budget: never kept


@contextmanager
def _statements_with_autocommit():
    """(statement, whether its connection was in autocommit) for each statement sent."""
    seen: list[tuple[str, bool]] = []

    def before(conn, cursor, statement, parameters, context, executemany):
        seen.append((statement, bool(conn.connection.dbapi_connection.autocommit)))

    event.listen(db.engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", before)


def test_on_postgresql_the_user_of_a_get_is_read_outside_a_transaction(volunteer_client):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no round trips to save: the user is read in the transaction")
    db.session.commit()  # the test's own reads end, as a worker's would
    with _statements_with_autocommit() as miss:
        assert volunteer_client.get("/points").headers[HEADER] == "miss"
    # The user alone (no BEGIN before it), then the page's reads in a transaction of their own.
    assert '"user"' in miss[0][0] and miss[0][1] is True
    assert len(miss) > 1 and all(not autocommit for _sql, autocommit in miss[1:])
    db.session.commit()
    with _statements_with_autocommit() as hit:
        assert volunteer_client.get("/points").headers[HEADER] == "hit"
    assert len(hit) == 1 and hit[0][1] is True  # one round trip: no BEGIN, no ROLLBACK
    db.session.commit()
    with _statements_with_autocommit() as post:
        volunteer_client.post("/language", data={"lang": "en"})
    assert post and all(not autocommit for _sql, autocommit in post)  # a write: one transaction


def test_on_postgresql_a_cached_open311_list_is_one_statement_outside_a_transaction(client, world):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no round trips to save: the stamp is read in the transaction")
    url = f"/open311/v2/requests.json?jurisdiction_id={world.a.community.id}"
    assert client.get(url).headers[HEADER] == "miss"
    db.session.commit()
    with _statements_with_autocommit() as hit:
        assert client.get(url).headers[HEADER] == "hit"
    assert len(hit) == 1 and "cache_stamp" in hit[0][0] and hit[0][1] is True


def test_a_large_open311_list_is_kept_gzipped_for_clients_that_accept_it(
    client, world, monkeypatch
):
    monkeypatch.setattr(pagecache, "GZIP_MIN_BYTES", 0)  # the test community's list is short
    url = f"/open311/v2/requests.json?jurisdiction_id={world.a.community.id}"
    plain = client.get(url)
    assert plain.headers[HEADER] == "miss"
    assert "Content-Encoding" not in plain.headers
    assert "Accept-Encoding" in plain.headers["Vary"]
    packed = client.get(url, headers={"Accept-Encoding": "gzip, deflate, br"})
    assert packed.headers[HEADER] == "hit"
    assert packed.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in packed.headers["Vary"]
    assert packed.mimetype == "application/json"
    assert gzip.decompress(packed.data) == plain.data
    again = client.get(url, headers={"Accept-Encoding": "identity"})
    assert again.headers[HEADER] == "hit"
    assert "Content-Encoding" not in again.headers and again.data == plain.data


def test_pages_with_a_csrf_token_are_never_kept_gzipped(volunteer_client, monkeypatch):
    monkeypatch.setattr(pagecache, "GZIP_MIN_BYTES", 0)
    volunteer_client.get("/")
    hit = volunteer_client.get("/", headers={"Accept-Encoding": "gzip"})
    assert hit.headers[HEADER] == "hit"
    assert "Content-Encoding" not in hit.headers
    assert CSRF_META.search(hit.text)  # the session's own token, put in on the way out
