"""Every form of the portal fuzzed with Hypothesis: long text, control characters, right-to-left
marks, emoji, NUL, huge and negative numbers, impossible dates. Each POST route is found in the
URL map; its form's fields are read from the page that shows it (as the first role that sees it),
or, for a form shown nowhere reachable, a set of common field names is sent. Never a 5xx; and a
submission answered with an error (a 4xx, or the form again with its messages) changes no row.
"""

from __future__ import annotations

from html.parser import HTMLParser

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from portal.extensions import db
from tests.test_access_matrix import _add_duties, _ids, _url

# Tried in this order: the first role whose page shows the form submits it.
ROLES = ("secretary", "grid_worker", "volunteer", "resident", "subdistrict_admin")
# Signing out, or the anonymous forms (fuzzed last, signed out), or the JSON API (its own tests).
SKIPPED = {"auth.logout", "open311.create"}
ANONYMOUS = ("auth.login", "auth.signup")
# Tables a request may add to whatever its outcome: logs of refusals, attempt counters.
LOG_TABLES = {"audit_log", "throttle", "idempotency_key"}
COMMON_FIELDS = ("reason", "note", "name", "title", "description", "points", "hours", "date")
ERROR_MARKS = ('class="error"', "has-error", "flash-error", 'role="alert"')
EXAMPLES = 8

NASTY = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\x01\x02\x1b[31m\x7f",
    "\u202e\u200f\u061c右到左\u202c",
    "😀👨‍👩‍👧‍👦🇨🇳",
    "\ud7ff\ufffd\ufeff",
    "9" * 40,
    "-1",
    "-99999999999999999999",
    "1e309",
    "NaN",
    "Infinity",
    "0x10",
    "2026-02-30",
    "0000-00-00",
    "9999-99-99T99:99",
    "2026-13-01T25:61",
    "'; DROP TABLE person; --",
    "<script>alert(1)</script>",
    "长" * 5000,
    "x" * 20000,
]
fuzz_value = st.one_of(
    st.sampled_from(NASTY),
    st.text(min_size=0, max_size=300),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=200, max_size=3000),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
)


class FormFinder(HTMLParser):
    """The POST forms of a page: their action and fields (name -> a valid-looking value)."""

    def __init__(self, page_url: str):
        super().__init__()
        self.page_url = page_url
        self.forms: list[tuple[str, dict[str, str]]] = []
        self._fields: dict[str, str] | None = None
        self._select: str | None = None

    def handle_starttag(self, tag, attrs):
        a = {k: (v or "") for k, v in attrs}
        if tag == "form" and a.get("method", "get").lower() == "post":
            self._fields = {}
            self.forms.append(((a.get("action") or self.page_url).split("#")[0], self._fields))
        elif self._fields is None or not a.get("name") or a["name"] == "csrf_token":
            return
        elif tag == "input":
            kind = a.get("type", "text")
            if kind in ("checkbox", "radio") and a["name"] in self._fields:
                return
            if kind == "date":
                value = a.get("value") or "2030-01-07"
            elif kind == "number":
                value = a.get("value") or "1"
            elif kind == "file":
                return
            else:
                value = a.get("value") or "测试"
            self._fields[a["name"]] = value
        elif tag == "textarea":
            self._fields[a["name"]] = "测试内容"
        elif tag == "select":
            self._select = a["name"]
            self._fields[a["name"]] = ""
        elif (
            tag == "option"
            and self._select
            and a.get("value")
            and not self._fields.get(self._select)
        ):
            self._fields[self._select] = a["value"]

    def handle_endtag(self, tag):
        if tag == "form":
            self._fields = None
        elif tag == "select":
            self._select = None


def _forms(client, url: str) -> list[tuple[str, dict[str, str]]]:
    response = client.get(url)
    if response.status_code != 200:
        return []
    finder = FormFinder(url)
    finder.feed(response.get_data(as_text=True))
    return finder.forms


def _pages_for(url: str) -> list[str]:
    """The URL itself and its parents: where a form that posts to ``url`` is likely shown."""
    pages, path = [url], url
    while path.count("/") > 1:
        path = path.rsplit("/", 1)[0]
        pages.append(path)
    return pages


def _snapshot() -> dict[str, list]:
    rows = {}
    for table in db.metadata.sorted_tables:
        if table.name in LOG_TABLES:
            continue
        result = db.session.execute(text(f'SELECT * FROM "{table.name}"')).all()
        rows[table.name] = sorted(map(repr, result))
    db.session.commit()
    return rows


def _shows_an_error(response) -> bool:
    if 400 <= response.status_code < 500:
        return True
    if response.status_code != 200:
        return False
    body = response.get_data(as_text=True)
    return any(mark in body for mark in ERROR_MARKS)


def _sign_in_as(client, auth, world, role: str | None, current: list) -> None:
    if current and current[0] == role:
        return
    client.post("/logout")
    if role is not None:
        auth.login(world.a.users[role].username)
    current[:] = [role]


def _targets(app, client, auth, world, ids) -> list[tuple[str, str | None, str, dict[str, str]]]:
    """(endpoint, role, url, fields) for every POST route."""
    current: list = []
    targets = []
    rules = [r for r in app.url_map.iter_rules() if "POST" in r.methods]
    for rule in sorted(rules, key=lambda r: r.endpoint):
        if rule.endpoint in SKIPPED:
            continue
        url = _url(rule, ids)
        found = None
        roles = (None,) if rule.endpoint in ANONYMOUS else ROLES
        for role in roles:
            _sign_in_as(client, auth, world, role, current)
            for page in _pages_for(url):
                for action, fields in _forms(client, page):
                    if action == url:
                        found = (role, fields)
                        break
                if found:
                    break
            if found:
                break
        if found is None:
            found = (ROLES[0], dict.fromkeys(COMMON_FIELDS, "1"))
        targets.append((rule.endpoint, found[0], url, found[1]))
    return targets


def _fuzz(fields: dict[str, str], check) -> None:
    """Run ``check`` on EXAMPLES submissions: each field its page's value or a nasty one."""
    strategy = st.fixed_dictionaries(
        {name: st.one_of(st.just(value), fuzz_value) for name, value in fields.items()}
    )

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(data=strategy)
    def run(data):
        check(data)

    run()


def test_every_form_survives_fuzzing(app, client, auth, world):
    # Fuzzed sign-ins must not lock the test's own sign-ins out.
    app.config["LOGIN_ACCOUNTS_PER_ADDRESS"] = 10**6
    app.config["LOGIN_DELAY_AFTER_FAILURES"] = 10**6
    app.config["LOGIN_FAILURES_PER_ACCOUNT"] = 10**6
    for side in (world.a, world.b):
        _add_duties(side)
    ids = _ids(world.a) | {"user_id": world.a.resident.id, "action": "comment"}
    targets = _targets(app, client, auth, world, ids)
    anonymous = [t for t in targets if t[1] is None]
    targets = [t for t in targets if t[1] is not None] + anonymous
    assert len(targets) >= 60, [t[0] for t in targets]
    discovered = [t[0] for t in targets if set(t[3]) != set(COMMON_FIELDS)]
    assert len(discovered) >= 30, discovered

    current: list = []
    crashes: list[str] = []
    changed: list[str] = []

    for endpoint, role, url, fields in targets:
        if not fields:
            continue
        current.clear()  # signed in afresh: an earlier form may have ended the session
        # The rows as they stand before the next submission. Reading every table is most of
        # this test's time, so the snapshot is taken again only when something may have
        # changed them: a sign-in, or a submission that was accepted.
        state: dict = {}

        def check(data, endpoint=endpoint, role=role, url=url, state=state) -> None:
            signed_in_as = current[:]
            _sign_in_as(client, auth, world, role, current)
            if "rows" not in state or current != signed_in_as:
                state["rows"] = _snapshot()
            response = client.post(url, data=data)
            if response.status_code >= 500:
                crashes.append(f"{endpoint} as {role}: {response.status_code} for {data!r:.300}")
                state.pop("rows")
            elif _shows_an_error(response):
                if _snapshot() != state["rows"]:
                    changed.append(
                        f"{endpoint} as {role}: answered an error but wrote {data!r:.300}"
                    )
                    state.pop("rows")
            else:
                state.pop("rows")

        _fuzz(fields, check)
    assert crashes == []
    assert changed == []
