"""The production bootstrap commands: create a community, then its first staff accounts."""

from __future__ import annotations

from sqlalchemy import select

from portal.auth.models import User
from portal.extensions import db
from portal.places.models import Community


def test_create_community_then_secretary_who_can_sign_in(runner, client):
    result = runner.invoke(
        args=["create-community", "--subdistrict", "新城街道", "--name", "育才社区"]
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        args=["create-community", "--subdistrict", "新城街道", "--name", "育才社区"]
    )
    assert result.exit_code != 0 and "already exists" in result.output
    result = runner.invoke(
        args=[
            "create-user", "shuji", "--role", "secretary", "--community", "育才社区",
            "--name", "王书记", "--phone", "13912345678", "--password", "strong-pass-77",
        ]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    user = db.session.scalar(select(User).where(User.username == "shuji"))
    community = db.session.scalar(select(Community).where(Community.name == "育才社区"))
    assert user.role == "secretary" and user.community_id == community.id
    assert user.person.name == "王书记"
    response = client.post(
        "/login", data={"identifier": "13912345678", "password": "strong-pass-77"}
    )
    assert response.status_code == 303


def test_create_user_refuses_bad_input(runner):
    runner.invoke(args=["create-community", "--subdistrict", "新城街道", "--name", "育才社区"])
    good = "strong-pass-77"
    cases = [
        (["--role", "secretary", "--community", "无此社区", "--password", good], "--community"),
        (["--role", "secretary", "--community", "育才社区", "--password", "12345678"], "password"),
        (
            ["--role", "subdistrict_admin", "--subdistrict", "无", "--password", good],
            "--subdistrict",
        ),
        (
            [
                "--role",
                "secretary",
                "--community",
                "育才社区",
                "--phone",
                "123",
                "--password",
                good,
            ],
            "phone",
        ),
    ]
    for args, word in cases:
        result = runner.invoke(args=["create-user", "someone", *args])
        assert result.exit_code != 0 and word in result.output, result.output
    assert db.session.scalar(select(User).where(User.username == "someone")) is None
