"""Issue 15, parts 4 and 5: sign-in throttling keyed on the account (not the spelling typed),
counted atomically (a parallel burst on both engines), locks keyed on account and address,
the account's growing delay, known devices, spraying from one address, and no answer that
tells a known account from an unknown one. The clock of the counters is pinned."""

from __future__ import annotations

from types import SimpleNamespace
from unittest import mock

import pytest
from sqlalchemy import select
from werkzeug.security import check_password_hash

from portal.auth import services, throttle
from portal.auth.models import User
from portal.extensions import db
from tests.factories import PASSWORD
from tests.helpers import post_in_parallel

THROTTLED = "Too many failed sign-ins"
WRONG = "Wrong username/phone or password."
ADDRESS_A, ADDRESS_B = "203.0.113.5", "198.51.100.7"
FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


@pytest.fixture
def clock(monkeypatch):
    """The counters' clock, pinned; ``clock.advance(seconds)`` moves it on."""
    state = {"now": 1_800_000_000}
    monkeypatch.setattr(throttle, "now_seconds", lambda: state["now"])

    def advance(seconds: int) -> None:
        state["now"] += seconds

    return SimpleNamespace(advance=advance)


@pytest.fixture
def hashes():
    """Every password hash checked at sign-in (the function, wrapped)."""
    with mock.patch.object(services, "check_password_hash", wraps=check_password_hash) as spy:
        yield spy


def browser(app, address: str = ADDRESS_A):
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    client.post("/language", data={"lang": "en"})
    return client


def sign_in(client, identifier: str, password: str = "wrong-pass-1"):
    response = client.post("/login", data={"identifier": identifier, "password": password})
    return response, response.get_data(as_text=True)


def signed_in(app, username: str) -> bool:
    db.session.commit()
    return (
        db.session.scalar(select(User.last_login_at).where(User.username == username)) is not None
    )


def spellings(phone: str) -> list[str]:
    return [
        phone,
        f"{phone[:3]} {phone[3:7]} {phone[7:]}",
        f"{phone[:3]}-{phone[3:7]}-{phone[7:]}",
        f"+86 {phone}",
        f"0086{phone}",
        phone.translate(FULL_WIDTH),
        f"+86-{phone[:3]}-{phone[3:7]}-{phone[7:]}",
    ]


# --- part 4: one account, however it is spelt -------------------------------------------------


def test_every_spelling_of_a_phone_and_the_username_share_one_limit(app, world, clock, hashes):
    phone = world.a.secretary.person.phone
    client = browser(app)
    names = spellings(phone)[:3] + ["SECRETARY_A", "ｓｅｃｒｅｔａｒｙ＿ａ"]
    for name in names:
        assert WRONG in sign_in(client, name)[1]
    assert hashes.call_count == 5
    # A sixth spelling with the right password: refused without checking it.
    for name in spellings(phone)[3:]:
        response, page = sign_in(client, name, PASSWORD)
        assert response.status_code == 200 and THROTTLED in page
    assert hashes.call_count == 5
    assert not signed_in(app, "secretary_a")


def test_spellings_of_an_unknown_phone_share_one_limit_too(app, world, clock):
    client = browser(app)
    answers = [sign_in(client, name)[1] for name in spellings("13912345678")]
    assert [WRONG in page for page in answers] == [True] * 5 + [False] * 2
    assert all(THROTTLED in page for page in answers[5:])


@pytest.mark.parametrize("addresses", ["one", "thirty"], ids=["one-address", "thirty-addresses"])
def test_a_parallel_burst_gets_at_most_five_password_checks(app, world, clock, hashes, addresses):
    """30 wrong guesses at once (from one address, or each from its own): at most 5 reach the
    password check, on SQLite and on PostgreSQL; then the right password is refused."""
    clients = [
        browser(app, ADDRESS_A if addresses == "one" else f"192.0.2.{n + 1}") for n in range(30)
    ]
    statuses = post_in_parallel(
        app,
        clients,
        ["/login"] * 30,
        [{"identifier": "secretary_a", "password": f"wrong-pass-{n}"} for n in range(30)],
    )
    assert statuses == [200] * 30
    assert 1 <= hashes.call_count <= 5
    response, page = sign_in(browser(app, "192.0.2.200"), "secretary_a", PASSWORD)
    assert THROTTLED in page
    assert not signed_in(app, "secretary_a")


# --- part 5: locks on account and address; the growing delay; known devices --------------------


def test_an_attack_from_one_address_does_not_lock_the_secretary_out_elsewhere(app, world, clock):
    attacker = browser(app, ADDRESS_A)
    for _ in range(8):
        sign_in(attacker, "secretary_a")
    assert THROTTLED in sign_in(attacker, "secretary_a", PASSWORD)[1]
    # From address B she waits out the account's short delay (2 s after 5 failures), no more.
    clock.advance(3)
    response, _page = sign_in(browser(app, ADDRESS_B), "secretary_a", PASSWORD)
    assert response.status_code == 303
    assert signed_in(app, "secretary_a")


def test_a_known_device_signs_in_at_once_behind_the_attackers_address(app, world, clock):
    secretary = browser(app, ADDRESS_A)
    assert sign_in(secretary, "secretary_a", PASSWORD)[0].status_code == 303
    cookie = secretary.get_cookie(services.DEVICE_COOKIE, path="/login")
    assert cookie is not None and cookie.http_only
    secretary.post("/logout")
    attacker = browser(app, ADDRESS_A)  # the same office network
    for _ in range(12):
        sign_in(attacker, "secretary_a")
    assert THROTTLED in sign_in(attacker, "secretary_a", PASSWORD)[1]
    # No wait, no lock: the device she signed in on before.
    response, _page = sign_in(secretary, "secretary_a", PASSWORD)
    assert response.status_code == 303
    # The device has a lock of its own: a stolen cookie gets 5 guesses, not more.
    secretary.post("/logout")
    for _ in range(5):
        assert WRONG in sign_in(secretary, "secretary_a")[1]
    assert THROTTLED in sign_in(secretary, "secretary_a", PASSWORD)[1]


def test_a_known_device_of_another_account_or_a_forged_one_is_not_exempt(app, world, clock):
    other = browser(app, ADDRESS_A)
    assert sign_in(other, "resident_a", PASSWORD)[0].status_code == 303
    other.post("/logout")
    forged = browser(app, ADDRESS_A)
    forged.set_cookie(services.DEVICE_COOKIE, "eyJ1IjoxfQ.forged.sig", path="/login")
    attacker = browser(app, ADDRESS_A)
    for _ in range(5):
        sign_in(attacker, "secretary_a")
    for client in (other, forged):
        assert THROTTLED in sign_in(client, "secretary_a", PASSWORD)[1]


def test_a_password_change_voids_the_known_device(app, world, clock):
    secretary = browser(app, ADDRESS_A)
    sign_in(secretary, "secretary_a", PASSWORD)
    stale = secretary.get_cookie(services.DEVICE_COOKIE, path="/login").value
    response = secretary.post(
        "/account/password",
        data={"current": PASSWORD, "password": "quiet-river-42", "confirm": "quiet-river-42"},
    )
    assert response.status_code == 303
    secretary.post("/logout")
    secretary.set_cookie(services.DEVICE_COOKIE, stale, path="/login")
    attacker = browser(app, ADDRESS_A)
    for _ in range(5):
        sign_in(attacker, "secretary_a")
    assert THROTTLED in sign_in(secretary, "secretary_a", "quiet-river-42")[1]


def test_the_growing_delay_holds_for_the_account_from_anywhere(app, world, clock, hashes):
    for n in range(5):
        assert WRONG in sign_in(browser(app, f"192.0.2.{n + 1}"), "secretary_a")[1]
    # Five failures from five addresses: no address is locked, but the account waits 2 s...
    page = sign_in(browser(app, "192.0.2.50"), "secretary_a", PASSWORD)[1]
    assert "Try again in 2 seconds." in page
    clock.advance(2)
    assert WRONG in sign_in(browser(app, "192.0.2.51"), "secretary_a")[1]
    # ... then 4, then 8: each counted failure doubles the wait.
    clock.advance(3)
    assert "Try again in 1 seconds." in sign_in(browser(app, "192.0.2.52"), "secretary_a")[1]
    clock.advance(1)
    assert WRONG in sign_in(browser(app, "192.0.2.53"), "secretary_a")[1]
    assert "Try again in 8 seconds." in sign_in(browser(app, "192.0.2.54"), "secretary_a")[1]
    assert hashes.call_count == 7  # refused attempts check no password and add no wait
    clock.advance(8)
    response, _page = sign_in(browser(app, "192.0.2.55"), "secretary_a", PASSWORD)
    assert response.status_code == 303


def test_the_delay_grows_to_its_cap(app):
    app.config.update(LOGIN_DELAY_AFTER_FAILURES=5, LOGIN_DELAY_BASE_SECONDS=2)
    delays = [services._sign_in_delay(n) for n in range(1, 16)]
    assert delays == [0, 0, 0, 0, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900]


def test_one_address_cannot_spray_accounts_but_a_shared_network_goes_on(app, world, clock):
    office = browser(app, ADDRESS_A)
    # A mistyped password of a real resident, then an attacker trying 9 other accounts.
    assert WRONG in sign_in(office, "resident_a")[1]
    for n in range(9):
        assert WRONG in sign_in(browser(app, ADDRESS_A), f"guess{n}")[1]
    # An 11th account from this address is refused, whatever the password...
    assert THROTTLED in sign_in(browser(app, ADDRESS_A), "secretary_a", PASSWORD)[1]
    # ... but the resident who already tried from here goes on, and so does everyone elsewhere.
    assert sign_in(office, "resident_a", PASSWORD)[0].status_code == 303
    assert sign_in(browser(app, ADDRESS_B), "volunteer_a", PASSWORD)[0].status_code == 303
    # Her success gave the address a place back: the next new account from here may try.
    assert sign_in(browser(app, ADDRESS_A), "secretary_a", PASSWORD)[0].status_code == 303
    # The limit ends an hour after the last counted attempt.
    for n in range(9, 12):
        sign_in(browser(app, ADDRESS_A), f"guess{n}")
    assert THROTTLED in sign_in(browser(app, ADDRESS_A), "gridworker_a", PASSWORD)[1]
    clock.advance(60 * 60)
    assert sign_in(browser(app, ADDRESS_A), "gridworker_a", PASSWORD)[0].status_code == 303


def test_the_account_and_address_lock_ends_after_the_window(app, world, clock):
    client = browser(app, ADDRESS_A)
    for _ in range(5):
        sign_in(client, "secretary_a")
    clock.advance(14 * 60)
    assert "Try again in 1 minutes." in sign_in(client, "secretary_a", PASSWORD)[1]
    clock.advance(60)
    assert sign_in(client, "secretary_a", PASSWORD)[0].status_code == 303


# --- part 5: known and unknown accounts answer alike ---------------------------------------------


def test_the_password_hash_runs_for_an_unknown_account_too(app, world, clock, hashes):
    client = browser(app)
    unknown = [sign_in(client, name)[1] for name in ("no_such_user", "13912345678")]
    assert hashes.call_count == 2
    decoy = hashes.call_args_list[0].args[0]
    assert decoy.startswith("scrypt:") and decoy == hashes.call_args_list[1].args[0]
    known = sign_in(browser(app, ADDRESS_B), world.a.resident.person.phone)[1]
    assert hashes.call_count == 3
    assert hashes.call_args_list[2].args[0] == world.a.resident.password_hash

    def message(page: str) -> str:
        return page.split('class="flash flash-error"', 1)[1].split("</div>", 1)[0]

    assert message(unknown[0]) == message(unknown[1]) == message(known)
