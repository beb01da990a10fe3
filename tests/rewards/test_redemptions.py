"""The secretary handles redemptions: hand-over once, cancellation with a refund by a reversal
row (once), the redeemer told and seeing the status; the list's filters and query count, and
the CSV / XLSX export."""

from __future__ import annotations

import io
import re
import zipfile

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.notifications.messages import message_text
from portal.notifications.models import Notification
from portal.points.models import PointsEntry
from portal.rewards.models import Redemption, Reward
from tests import factories
from tests.rewards.conftest import (
    RW_HX,
    rw_balance,
    rw_count_queries,
    rw_give_points,
    rw_ledger_rows,
    rw_ledger_sum,
    rw_make_reward,
    rw_redeemed,
    rw_reload,
    rw_stock,
)


def _text(response) -> str:
    return response.get_data(as_text=True)


@pytest.fixture
def issued(world):
    """volunteer_a had 100 points and redeemed a 60-point reward (stock 3 → 2)."""
    rw_give_points(world.a.volunteer.person, 100, world.a.secretary)
    reward = rw_make_reward(world.a, name="Rice", cost=60, stock=3)
    return rw_redeemed(world.a, reward)


def _notifications(user_id: int) -> list[Notification]:
    db.session.commit()
    return list(db.session.scalars(select(Notification).where(Notification.user_id == user_id)))


# --- hand-over ----------------------------------------------------------------------------------


def test_hand_over_once(client, auth, world, issued, rw_english, rw_outbox):
    auth.login("secretary_a")
    url = f"/rewards/redemptions/{issued.id}/hand-over"
    response = client.post(url, data={"next": "/rewards/redemptions?status=issued"})
    assert response.status_code == 303
    assert response.headers["Location"] == "/rewards/redemptions?status=issued"
    done = rw_reload(Redemption, issued.id)
    assert done.status == "handed_over" and done.handed_over_by_id == world.a.secretary.id
    first_time = done.handed_over_at
    assert first_time is not None
    assert f"{issued.voucher_code}: handed over." in _text(client.get("/rewards/redemptions"))

    response = client.post(url, follow_redirects=True)
    assert "Already handed over; nothing was changed." in _text(response)
    again = rw_reload(Redemption, issued.id)
    assert again.status == "handed_over" and again.handed_over_at == first_time
    # Points and stock are untouched by a hand-over.
    assert rw_balance(world.a.volunteer.person.id) == 40
    assert rw_stock(issued.reward_id) == 2
    # The redeemer is told once, and sees it on their list.
    (note,) = _notifications(world.a.volunteer.id)
    assert note.kind == "reward_handed_over" and note.link == "/rewards/mine"
    assert len(rw_outbox) == 1
    auth.logout()
    auth.login("volunteer_a")
    assert "Handed over" in _text(client.get("/rewards/mine"))
    assert "Rice" in _text(client.get("/notifications"))


def test_hand_over_by_htmx_answers_the_row(client, auth, world, issued):
    auth.login("secretary_a")
    response = client.post(f"/rewards/redemptions/{issued.id}/hand-over", headers=RW_HX)
    assert response.status_code == 200
    body = _text(response)
    assert "<html" not in body and f'id="redemption-{issued.id}"' in body
    assert response.headers["HX-Trigger"] == "redemption-changed"
    assert "HX-Request" in response.headers["Vary"]
    again = client.post(f"/rewards/redemptions/{issued.id}/hand-over", headers=RW_HX)
    assert again.status_code == 200 and "HX-Trigger" not in again.headers


def test_a_cancelled_redemption_cannot_be_handed_over(client, auth, world, issued, rw_english):
    auth.login("secretary_a")
    client.post(f"/rewards/redemptions/{issued.id}/cancel", data={"reason": "out of rice"})
    response = client.post(f"/rewards/redemptions/{issued.id}/hand-over", follow_redirects=True)
    assert "Already cancelled; nothing was changed." in _text(response)
    assert rw_reload(Redemption, issued.id).status == "cancelled"


# --- cancellation -------------------------------------------------------------------------------


def test_cancel_refunds_by_a_reversal_row(client, auth, world, issued, rw_english, rw_outbox):
    person_id = world.a.volunteer.person.id
    assert rw_stock(issued.reward_id) == 2 and rw_balance(person_id) == 40
    auth.login("secretary_a")
    response = client.post(
        f"/rewards/redemptions/{issued.id}/cancel", data={"reason": "Out of rice this week"}
    )
    assert response.status_code == 303
    cancelled = rw_reload(Redemption, issued.id)
    assert cancelled.status == "cancelled"
    assert cancelled.cancel_reason == "Out of rice this week"
    assert cancelled.cancelled_by_id == world.a.secretary.id and cancelled.cancelled_at
    assert rw_ledger_rows(person_id) == [("adjustment", 100), ("redemption", -60), ("reversal", 60)]
    assert rw_balance(person_id) == 100 == rw_ledger_sum(person_id)
    assert rw_stock(issued.reward_id) == 3
    redemption_entry, reversal = db.session.scalars(
        select(PointsEntry).where(PointsEntry.kind.in_(("redemption", "reversal")))
        .order_by(PointsEntry.id)
    ).all()  # fmt: skip
    assert (reversal.source_type, reversal.source_id) == ("entry", redemption_entry.id)
    assert reversal.note == "Out of rice this week" and reversal.ranked is False
    assert "60 points were given back" in _text(client.get("/rewards/redemptions"))

    (note,) = _notifications(world.a.volunteer.id)
    assert note.kind == "redemption_cancelled"
    assert note.params["reason"] == "Out of rice this week"
    auth.logout()
    auth.login("volunteer_a")
    mine = _text(client.get("/rewards/mine"))
    assert "Cancelled" in mine and "Out of rice this week" in mine
    assert '<strong id="balance">100</strong>' in mine


def test_cancel_twice_refunds_once(client, auth, world, issued, rw_english):
    person_id = world.a.volunteer.person.id
    auth.login("secretary_a")
    url = f"/rewards/redemptions/{issued.id}/cancel"
    assert client.post(url, data={"reason": "first"}).status_code == 303
    response = client.post(url, data={"reason": "second"}, follow_redirects=True)
    assert "Already cancelled; nothing was changed." in _text(response)
    assert rw_ledger_rows(person_id) == [("adjustment", 100), ("redemption", -60), ("reversal", 60)]
    assert rw_balance(person_id) == 100
    assert rw_stock(issued.reward_id) == 3
    assert rw_reload(Redemption, issued.id).cancel_reason == "first"


def test_cancel_after_hand_over_is_refused(client, auth, world, issued, rw_english):
    auth.login("secretary_a")
    client.post(f"/rewards/redemptions/{issued.id}/hand-over")
    response = client.post(
        f"/rewards/redemptions/{issued.id}/cancel", data={"reason": "late"}, follow_redirects=True
    )
    assert "Already handed over; nothing was changed." in _text(response)
    assert rw_balance(world.a.volunteer.person.id) == 40
    assert rw_stock(issued.reward_id) == 2


@pytest.mark.parametrize("htmx", [False, True])
def test_cancel_needs_a_reason(client, auth, world, issued, rw_english, htmx):
    auth.login("secretary_a")
    headers = RW_HX if htmx else {}
    response = client.post(
        f"/rewards/redemptions/{issued.id}/cancel?status=issued",
        data={"reason": "   "},
        headers=headers,
    )
    assert response.status_code == 200
    body = _text(response)
    assert "Give the reason for the cancellation." in body
    assert ("<html" in body) is not htmx
    assert rw_reload(Redemption, issued.id).status == "issued"
    assert rw_balance(world.a.volunteer.person.id) == 40
    assert rw_stock(issued.reward_id) == 2


def test_cancel_reason_too_long(client, auth, world, issued, rw_english):
    auth.login("secretary_a")
    response = client.post(f"/rewards/redemptions/{issued.id}/cancel", data={"reason": "x" * 201})
    assert response.status_code == 200
    assert "At most 200 characters." in _text(response)
    assert "x" * 201 in _text(response)  # what was typed stays
    assert rw_reload(Redemption, issued.id).status == "issued"


def test_cancel_puts_back_a_unit_of_a_sold_out_reward(client, auth, world):
    rw_give_points(world.a.volunteer.person, 100)
    reward = rw_make_reward(world.a, cost=10, stock=1)
    redemption = rw_redeemed(world.a, reward)
    assert rw_stock(reward.id) == 0
    auth.login("secretary_a")
    client.post(f"/rewards/redemptions/{redemption.id}/cancel", data={"reason": "broken"})
    assert rw_stock(reward.id) == 1


def test_notification_texts(app, rw_english):
    from flask import session

    with app.test_request_context():
        session["lang"] = "en"
        params = {"reward": "Rice", "code": "ABCD2345", "reason": "out of stock"}
        assert "Rice" in message_text("reward_handed_over", params)
        assert "ABCD2345" in message_text("reward_handed_over", params)
        text = message_text("redemption_cancelled", params)
        assert "out of stock" in text and "given back" in text


# --- the list -----------------------------------------------------------------------------------


def _many(world, n: int, reward: Reward | None = None) -> list[Redemption]:
    reward = reward or rw_make_reward(world.a, name="Soap", cost=1, stock=1000)
    return [rw_redeemed(world.a, reward) for _ in range(n)]


def test_list_filters(client, auth, world, issued, rw_english):
    rw_give_points(world.a.resident.person, 100)
    soap = rw_make_reward(world.a, name="Soap", cost=5, stock=10)
    other = rw_redeemed(world.a, soap, world.a.resident.person)
    handed = rw_redeemed(world.a, soap, world.a.resident.person)
    auth.login("secretary_a")
    client.post(f"/rewards/redemptions/{handed.id}/hand-over")

    def shown(query: str) -> set[int]:
        page = _text(client.get("/rewards/redemptions" + query))
        return {
            int(i)
            for i in re.findall(r'<article class="card redemption-row" id="redemption-(\d+)"', page)
        }

    assert shown("") == {issued.id, other.id, handed.id}
    assert shown("?status=issued") == {issued.id, other.id}
    assert shown("?status=handed_over") == {handed.id}
    assert shown(f"?reward={soap.id}") == {other.id, handed.id}
    # The code is exact; typed in small letters or with spaces it still matches.
    code = issued.voucher_code
    assert shown(f"?code={code}") == {issued.id}
    assert shown(f"?code={code[:4].lower()}+{code[4:].lower()}") == {issued.id}
    assert shown(f"?code={code[:6]}") == set()
    assert "No redemption has the voucher code" in _text(
        client.get(f"/rewards/redemptions?code={code[:6]}")
    )
    # Nonsense filters are ignored, never an error.
    assert shown("?status=lost&reward=abc") == {issued.id, other.id, handed.id}


def test_list_is_a_fragment_for_htmx(client, auth, world, issued):
    auth.login("secretary_a")
    response = client.get("/rewards/redemptions?status=issued", headers=RW_HX)
    body = _text(response)
    assert "<html" not in body and 'id="redemption-results"' in body


def test_subdistrict_admin_reads_without_buttons(client, auth, world, issued):
    auth.login("admin_a")
    page = _text(client.get("/rewards/redemptions"))
    assert issued.voucher_code in page
    assert "/hand-over" not in page and "/cancel" not in page
    assert client.post(f"/rewards/redemptions/{issued.id}/hand-over").status_code == 403
    assert rw_reload(Redemption, issued.id).status == "issued"


def test_list_runs_a_fixed_number_of_queries(client, auth, world):
    rw_give_points(world.a.volunteer.person, 1000)
    auth.login("secretary_a")
    _many(world, 3)
    with rw_count_queries() as small:
        assert client.get("/rewards/redemptions").status_code == 200
    second = rw_make_reward(world.a, name="Towel", cost=1, stock=100)
    _many(world, 27, second)
    with rw_count_queries() as large:
        assert client.get("/rewards/redemptions").status_code == 200
    assert small["n"] == large["n"]


# --- export -------------------------------------------------------------------------------------


def test_export_csv_with_masked_phones_and_filters(client, auth, world, issued, rw_english):
    phone = world.a.volunteer.person.phone
    auth.login("secretary_a")
    response = client.get("/rewards/redemptions/export.csv?status=issued")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    body = response.get_data().decode("utf-8-sig")
    lines = body.strip().splitlines()
    assert lines[0].startswith("Redeemed at,Voucher code,Reward,Name,Phone")
    assert len(lines) == 2
    assert issued.voucher_code in lines[1] and "Rice" in lines[1]
    assert phone not in body and f"{phone[:3]}****{phone[-4:]}" in body
    assert "Waiting to be handed over" in lines[1]
    empty = client.get("/rewards/redemptions/export.csv?status=cancelled")
    assert len(empty.get_data().decode("utf-8-sig").strip().splitlines()) == 1


def test_export_xlsx(client, auth, world, issued):
    auth.login("admin_a")
    response = client.get("/rewards/redemptions/export.xlsx")
    assert response.status_code == 200
    with zipfile.ZipFile(io.BytesIO(response.data)) as book:
        xml = "".join(
            book.read(name).decode("utf-8") for name in book.namelist() if name.endswith(".xml")
        )
    assert issued.voucher_code in xml and "Rice" in xml
    assert "<v>60</v>" in xml  # the cost as a number
    assert xml.count("<row ") == 2  # the header and one redemption
    assert world.a.volunteer.person.phone not in xml


def test_export_unknown_format_and_other_community(client, auth, world, issued):
    auth.login("secretary_b")
    assert client.get("/rewards/redemptions/export.pdf").status_code == 404
    body = client.get("/rewards/redemptions/export.csv").get_data().decode("utf-8-sig")
    assert issued.voucher_code not in body


def test_other_community_cannot_touch_a_redemption(client, auth, world, issued):
    outsider = factories.make_user("secretary", world.b.community, username="secretary_b2")
    auth.login(outsider.username)
    for action, data in (("hand-over", {}), ("cancel", {"reason": "x"})):
        response = client.post(f"/rewards/redemptions/{issued.id}/{action}", data=data)
        assert response.status_code == 404
    assert rw_reload(Redemption, issued.id).status == "issued"
    assert rw_balance(world.a.volunteer.person.id) == 40


def test_services_work_outside_a_request(app, world, issued):
    """A CLI command (no request) can hand over: the notification link is still built."""
    from portal.rewards import services

    services.hand_over(issued, world.a.secretary.id)
    db.session.commit()
    (note,) = _notifications(world.a.volunteer.id)
    assert note.link == "/rewards/mine"
