"""The access policy table (portal/policy.py): it declares every endpoint, and every answer of the
portal follows it, for every role, endpoint and method, with and without htmx."""

from __future__ import annotations

from collections import defaultdict
from types import FunctionType

import pytest

from portal import policy
from portal.extensions import db
from portal.policy import POLICY, PolicyMissing, rule_for
from tests import factories
from tests.test_access_matrix import ROLES, _ids, _url

FORBIDDEN = "Your role does not allow this page."
SKIPPED = {"auth.logout"}  # signing out mid-walk would test the rest as anonymous


def _methods(rule) -> list[str]:
    return sorted(rule.methods - {"HEAD", "OPTIONS"})


def test_every_endpoint_is_declared_and_every_line_names_one(app):
    rules = list(app.url_map.iter_rules())
    endpoints = {rule.endpoint for rule in rules}
    assert sorted(endpoints - set(POLICY)) == [], "endpoints missing from portal/policy.py"
    assert sorted(set(POLICY) - endpoints) == [], "policy lines naming no endpoint"
    undeclared = [
        (rule.endpoint, method)
        for rule in rules
        for method in _methods(rule)
        if rule_for(rule.endpoint, method) is None
    ]
    assert undeclared == []
    for endpoint, entry in POLICY.items():
        for rule in entry.values() if isinstance(entry, dict) else [entry]:
            assert rule.public or rule.roles, endpoint
            assert rule.scope in policy.SCOPES, endpoint


def test_an_undeclared_endpoint_fails_closed(app, client, auth, world, monkeypatch):
    auth.login("secretary_a")
    monkeypatch.delitem(POLICY, "places.index")
    with pytest.raises(PolicyMissing):  # loud under testing
        client.get("/places/")
    monkeypatch.setattr(app, "testing", False)
    response = client.get("/places/")  # and 403 in production
    assert response.status_code == 403
    assert "社区A" not in response.get_data(as_text=True)


def test_static_files_and_error_pages_still_answer(client, auth, world):
    for signed_in in (False, True):
        if signed_in:
            auth.login("resident_a")
        assert client.get("/static/css/app.css").status_code == 200
        assert client.get("/no/such/page").status_code == 404
        assert (
            client.get("/no/such/page", headers={"HX-Request": "true"}).headers["HX-Retarget"]
            == "#flash"
        )
        assert client.delete("/places/").status_code == 405


def _matrix_ids(side) -> defaultdict:
    """Real ids of one community for every route argument (an unknown argument gets the
    secretary's account id: a missing object answers 404, which the matrix accepts)."""
    ids = defaultdict(lambda: side.secretary.id, _ids(side))
    ids.update(
        user_id=side.resident.id,
        consent_id=side.consent.id,
        filename="css/app.css",
    )
    return ids


def _entitle(side, role: str) -> bool:
    """Make the role's own user the party that scoped views look for: the shift's leader and,
    for staff, the holder of an approved volunteer registration (the help board's reader).
    False for a role that can be no party (no person record)."""
    if role in ("anonymous", "subdistrict_admin"):
        return False
    user = side.users[role]
    side.shift.leader_id = user.person.id
    if role in ("grid_worker", "secretary"):
        factories.make_volunteer(user.person, grid_id=side.grid.id)
    db.session.commit()
    return True


def _refused(response) -> bool:
    if response.status_code == 403:
        return True
    return response.headers.get("HX-Retarget") == "#flash" and FORBIDDEN in response.get_data(
        as_text=True
    )


def _to_login(response) -> bool:
    location = response.headers.get("HX-Redirect") or response.headers.get("Location") or ""
    return location.startswith("/login") or "://localhost/login" in location


def forget_flashes(client) -> None:
    """Drop the flashed messages a walk piles up in the session (each login redirect adds one,
    and no page is followed to show them): the cookie would grow with every request."""
    with client.session_transaction() as sess:
        sess.pop("_flashes", None)


def _sign_in(client, auth, side, role: str) -> str | None:
    if role != "anonymous":
        auth.login(side.users[role].username)
    with client.session_transaction() as sess:
        sess["lang"] = "en"  # the refusal message is matched in English
    return None if role == "anonymous" else role


def _judge(rule, user_role, response, htmx: bool) -> str | None:
    """What is wrong with ``response`` under ``rule`` for ``user_role`` (None: nothing)."""
    status = response.status_code
    if status >= 500:
        return "crash"
    if rule.public:
        return "public sent to login" if _to_login(response) else None
    if user_role is None:
        if htmx:
            return (
                None
                if response.headers.get("HX-Redirect", "").startswith("/login")
                else ("htmx: no HX-Redirect to login")
            )
        return None if status == 302 and _to_login(response) else "no login redirect"
    if rule.allows(user_role):
        if _refused(response) or _to_login(response) or status == 401:
            return "allowed but refused"
        return None
    return None if _refused(response) else "refused but answered"


@pytest.mark.parametrize("role", ROLES)
def test_the_hook_follows_the_table(app, client, auth, seeded, role, monkeypatch):
    """Role x endpoint x method, with and without HX-Request, the views replaced by a stub so
    that the answer is the hook's alone: allowed -> the view runs; refused -> 403 (htmx: the
    message in the flash area); anonymous on a non-public endpoint -> the login redirect (htmx:
    HX-Redirect)."""
    side = seeded.a
    user_role = _sign_in(client, auth, side, role)
    for endpoint in list(app.view_functions):
        monkeypatch.setitem(app.view_functions, endpoint, lambda **_: "view ran")
    ids = _matrix_ids(side)
    wrong, cases = [], 0
    for url_rule in app.url_map.iter_rules():
        url = _url(url_rule, ids)
        for method in _methods(url_rule):
            rule = rule_for(url_rule.endpoint, method)
            for htmx in (False, True):
                headers = {"HX-Request": "true"} if htmx else {}
                response = client.open(url, method=method, data={}, headers=headers)
                cases += 1
                if cases % 8 == 0:
                    forget_flashes(client)
                problem = _judge(rule, user_role, response, htmx)
                ran = response.get_data(as_text=True) == "view ran"
                if problem is None and ran != (rule.public or rule.allows(user_role)):
                    problem = "the view ran" if ran else "the view did not run"
                if problem:
                    wrong.append((method, url, htmx, response.status_code, problem))
    assert wrong == []
    assert cases > 250


def _decorator_roles(view) -> frozenset[str] | None:
    """The roles of a view's ``roles_required`` decorator (None: the view has none)."""
    seen, stack = set(), [view]
    while stack:
        function = stack.pop()
        if not isinstance(function, FunctionType) or id(function) in seen:
            continue
        seen.add(id(function))
        cells = zip(function.__code__.co_freevars, function.__closure__ or (), strict=True)
        for name, cell in cells:
            if name == "roles" and function.__code__.co_qualname.startswith("roles_required"):
                return frozenset(cell.cell_contents)
            stack.append(cell.cell_contents)
        stack.append(getattr(function, "__wrapped__", None))
    return None


def _undecorated(app) -> set[str]:
    return {ep for ep, view in app.view_functions.items() if _decorator_roles(view) is None}


def test_the_table_matches_the_views_role_decorators(app):
    """Where a view names its roles (roles_required), the table names the same ones: never a
    role the view refuses, and a narrower method only where the view checks it inside."""
    mismatched, decorated = [], 0
    for url_rule in app.url_map.iter_rules():
        declared = _decorator_roles(app.view_functions[url_rule.endpoint])
        if declared is None:
            continue
        decorated += 1
        rules = [rule_for(url_rule.endpoint, method) for method in _methods(url_rule)]
        if any(not rule.roles <= declared for rule in rules) or (
            frozenset().union(*(rule.roles for rule in rules)) != declared
        ):
            mismatched.append((url_rule.endpoint, sorted(declared)))
    assert mismatched == []
    assert decorated > 60


@pytest.mark.parametrize("role", ROLES)
def test_the_views_agree_with_the_table(app, client, auth, seeded, role):
    """The real views without a role decorator (their checks are inside), on community A's own
    ids, each role made the party its scope asks for: a role the table allows is never refused
    nor sent to sign in by the view either."""
    side = seeded.a
    party = _entitle(side, role)
    user_role = _sign_in(client, auth, side, role)
    ids = _matrix_ids(side)
    undecorated = _undecorated(app)
    wrong, cases = [], 0
    for url_rule in app.url_map.iter_rules():
        if url_rule.endpoint in SKIPPED or url_rule.endpoint not in undecorated:
            continue
        url = _url(url_rule, ids)
        for method in _methods(url_rule):
            rule = rule_for(url_rule.endpoint, method)
            if not rule.allows(user_role) or (rule.public and user_role is not None):
                continue  # the hook answers before the view; public pages: anonymous only
            response = client.open(url, method=method, data={})
            cases += 1
            if cases % 8 == 0:
                forget_flashes(client)
            problem = _judge(rule, user_role, response, htmx=False)
            if problem == "allowed but refused" and rule.scope == "party" and not party:
                problem = None  # the view decides by the relation, which this role cannot hold
            if problem:
                wrong.append((method, url, response.status_code, problem))
    assert wrong == []
    assert cases >= 10
    if user_role is not None:  # nothing on the walk signed the user out
        assert client.get("/").status_code == 200


def test_the_hook_refuses_before_the_view_runs(app, client, auth, world, monkeypatch):
    """A role outside the table is refused even where a view forgot its own check."""
    calls = []
    monkeypatch.setitem(app.view_functions, "places.index", lambda: calls.append(1) or "open")
    auth.login("volunteer_a")
    assert client.get("/places/").status_code == 403
    assert calls == []
    auth.logout()
    auth.login("secretary_a")
    assert client.get("/places/").get_data(as_text=True) == "open"
