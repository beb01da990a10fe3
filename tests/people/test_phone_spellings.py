"""Issue 15, part 4: a phone number is one number however it is typed, in every search staff
use (residents, the volunteer roster, accounts), as at sign-in and sign-up."""

from __future__ import annotations

import pytest

from portal.extensions import db
from tests import factories

FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


def spellings(phone: str) -> list[str]:
    return [
        f"{phone[:3]} {phone[3:7]} {phone[7:]}",
        f"{phone[:3]}-{phone[3:7]}-{phone[7:]}",
        f"+86 {phone}",
        f"0086{phone}",
        f"+86-{phone[:3]}-{phone[3:7]}-{phone[7:]}",
        phone.translate(FULL_WIDTH),
    ]


@pytest.mark.parametrize(
    "path, who, other",
    [
        ("/people/", "resident", "volunteer"),
        ("/volunteers/", "volunteer", "resident"),
        ("/accounts/", "resident", "volunteer"),
    ],
)
def test_searches_find_a_phone_however_it_is_spelt(client, auth, world, path, who, other):
    person = world.a.users[who].person
    other_name = world.a.users[other].person.name
    auth.login("secretary_a")
    for typed in spellings(person.phone):
        page = client.get(path, query_string={"q": typed}).get_data(as_text=True)
        assert person.name in page, (path, typed)
        assert other_name not in page, (path, typed)


def test_accounts_search_finds_the_phone_given_at_sign_up(client, auth, world):
    person = factories.make_person(world.a.community, name="新来的", phone=None)
    factories.make_user(
        "resident", world.a.community, username="comer_a", person=person, verified=False,
        signup_phone="13700000001",
    )  # fmt: skip
    db.session.commit()
    auth.login("secretary_a")
    page = client.get("/accounts/", query_string={"q": "+86 137 0000 0001"}).get_data(as_text=True)
    assert "comer_a" in page and "resident_a" not in page
