"""Idempotent writes: a retried POST with the same Idempotency-Key writes once and hears the
first answer; the key on another path answers 422; a failed write does not use the key up."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select, update

from portal.database import utcnow
from portal.extensions import db
from portal.points.models import PointsAccount, PointsEntry
from portal.trust.idempotency import prune_expired
from portal.trust.models import IdempotencyKey


def _adjust(client, person_id: int, key: str | None, reason: str, points: str = "5", **headers):
    if key is not None:
        headers["Idempotency-Key"] = key
    return client.post(
        f"/points/people/{person_id}/adjust",
        data={"points": points, "hours": "", "reason": reason},
        headers=headers,
    )


def _entries(reason: str) -> int:
    return db.session.scalar(select(func.count(PointsEntry.id)).where(PointsEntry.note == reason))


def test_retry_with_the_same_key_writes_once_and_replays_the_redirect(client, auth, world):
    auth.login("secretary_a")
    person_id = world.a.resident.person_id
    first = _adjust(client, person_id, "key-1", "retry test")
    assert first.status_code == 303
    second = _adjust(client, person_id, "key-1", "retry test")
    assert second.status_code == 303
    assert second.headers["Location"] == first.headers["Location"]
    assert _entries("retry test") == 1
    assert db.session.get(PointsAccount, person_id).balance == 5
    row = db.session.scalar(select(IdempotencyKey).where(IdempotencyKey.key == "key-1"))
    assert (row.status_code, row.location, row.method) == (303, first.headers["Location"], "POST")


def test_without_a_key_every_post_writes(client, auth, world):
    auth.login("secretary_a")
    person_id = world.a.resident.person_id
    assert _adjust(client, person_id, None, "no key").status_code == 303
    assert _adjust(client, person_id, None, "no key").status_code == 303
    assert _entries("no key") == 2
    assert db.session.scalar(select(func.count(IdempotencyKey.id))) == 0


def test_htmx_retry_gets_an_hx_redirect_to_the_page(client, auth, world):
    auth.login("secretary_a")
    person_id = world.a.resident.person_id
    headers = {
        "HX-Request": "true",
        "HX-Current-URL": f"http://localhost/points/people/{person_id}",
    }
    first = _adjust(client, person_id, "hx-1", "htmx retry", **headers)
    assert first.status_code == 200 and "<html" not in first.get_data(as_text=True)
    second = _adjust(client, person_id, "hx-1", "htmx retry", **headers)
    assert second.status_code == 200
    assert second.headers["HX-Redirect"] == f"/points/people/{person_id}"
    assert _entries("htmx retry") == 1


def test_same_key_on_another_path_is_refused(client, auth, world):
    auth.login("secretary_a")
    assert _adjust(client, world.a.resident.person_id, "shared", "first path").status_code == 303
    other = _adjust(client, world.a.volunteer.person_id, "shared", "second path")
    assert other.status_code == 422
    assert _entries("second path") == 0


def test_keys_belong_to_their_user(client, auth, world, make_user):
    auth.login("secretary_a")
    assert _adjust(client, world.a.resident.person_id, "mine", "user one").status_code == 303
    auth.logout()
    make_user("secretary", world.a.community, username="secretary_a2")
    auth.login("secretary_a2")
    assert _adjust(client, world.a.resident.person_id, "mine", "user two").status_code == 303
    assert _entries("user one") == 1 and _entries("user two") == 1


def test_invalid_submission_does_not_use_the_key_up(client, auth, world):
    auth.login("secretary_a")
    person_id = world.a.resident.person_id
    invalid = _adjust(client, person_id, "k-invalid", "bad", points="lots")
    assert invalid.status_code == 200  # the form again, with its message
    assert db.session.scalar(select(func.count(IdempotencyKey.id))) == 0
    fixed = _adjust(client, person_id, "k-invalid", "bad")
    assert fixed.status_code == 303
    assert _entries("bad") == 1


def test_committed_but_unrecorded_answer_is_already_done(client, auth, world):
    auth.login("secretary_a")
    person_id = world.a.resident.person_id
    assert _adjust(client, person_id, "lost", "lost answer").status_code == 303
    # As if the worker died between the commit and recording the answer.
    db.session.execute(update(IdempotencyKey).values(status_code=None, location=None))
    again = _adjust(client, person_id, "lost", "lost answer")
    assert again.status_code == 409
    assert _entries("lost answer") == 1


def test_malformed_key_is_refused(client, auth, world):
    auth.login("secretary_a")
    person_id = world.a.resident.person_id
    for key in ("x" * 65, "with space", "中文"):
        response = client.post(
            f"/points/people/{person_id}/adjust",
            data={"points": "5", "reason": "malformed"},
            headers={"Idempotency-Key": key.encode("utf-8").decode("latin-1")},
        )
        assert response.status_code == 400
    assert _entries("malformed") == 0


def test_expired_keys_are_pruned_and_can_be_used_again(client, auth, world, runner):
    auth.login("secretary_a")
    person_id = world.a.resident.person_id
    assert _adjust(client, person_id, "old", "day one").status_code == 303
    db.session.execute(update(IdempotencyKey).values(created_at=utcnow() - timedelta(hours=25)))
    db.session.commit()
    # An expired key is a new key.
    assert _adjust(client, person_id, "old", "day one").status_code == 303
    assert _entries("day one") == 2
    db.session.execute(update(IdempotencyKey).values(created_at=utcnow() - timedelta(hours=25)))
    assert _adjust(client, person_id, "fresh", "day two").status_code == 303
    db.session.commit()
    result = runner.invoke(args=["prune-idempotency-keys"])
    assert result.exit_code == 0, result.output
    assert "1" in result.output
    assert db.session.scalars(select(IdempotencyKey.key)).all() == ["fresh"]
    assert prune_expired() == 0
