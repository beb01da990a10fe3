"""Stored XSS: hostile text typed into every free-text field through the app's own forms, then
every page and fragment that shows it opened in Chromium. Nothing may execute, no CSP violation
may be reported, no request may leave for an unexpected URL, and no markup may come alive."""

from __future__ import annotations

import itertools
import re
from datetime import time, timedelta
from html.parser import HTMLParser
from urllib.parse import quote, urlsplit

from sqlalchemy import select

from portal.core.timeutil import local_to_utc, now_utc
from portal.extensions import db
from portal.help.catalogue import seed_catalogue
from portal.help.models import Category, HelpRequest
from portal.patrols.codes import new_checkin_code
from portal.patrols.models import Shift, Signup
from portal.points import ledger
from portal.rewards.models import Redemption, Reward
from portal.volunteers.models import Volunteer
from tests.browser.conftest import needs_browser
from tests.factories import PASSWORD

# Each payload marks whatever it would create with data-xss, asks for /__xss__/... if it ever
# becomes a live element, and calls __xss() if it ever runs.
PAYLOADS = (
    "<script>__xss(1)</script>",
    "<img src=/__xss__/img onerror=__xss(2) data-xss>",
    "<svg onload=__xss(3) data-xss>",
    '"><b data-xss>',
    "'><b data-xss>",
    "<a href=javascript:__xss(4) data-xss>x</a>",
    "xss{{7*7}}${7*7}{%raw%}",
    '<div hx-get="/__xss__/hx" hx-trigger="load" data-xss>',
    "<b data-hx-get=/__xss__/dhx data-hx-trigger=load data-xss>",
    '<b hx-on:click="__xss(5)" hx-on::load="__xss(6)" data-xss>',
    "<b hx-vals='js:{a:__xss(7)}' hx-post=/__xss__/vals hx-trigger=load data-xss>",
    '<b hx-headers=\'{"X-CSRFToken":"x"}\' hx-get=/__xss__/hdr hx-trigger=load data-xss>',
    "<iframe src=/__xss__/frame data-xss></iframe>",
    "</textarea></title><b data-xss>",
)
ALL = "".join(PAYLOADS)
SHORT = ("<b data-xss>", '"><b data-xss>', "'><b data-xss>", "<i data-xss>x")
_rotation = itertools.count()


def payload(maxlength: int | None) -> str:
    """The whole corpus where it fits, else as many payloads as fit, starting each time at the
    next one (so short fields between them still meet every payload)."""
    if maxlength is None or maxlength >= len(ALL):
        return ALL
    start = next(_rotation)
    text = ""
    for i in range(len(PAYLOADS)):
        candidate = PAYLOADS[(start + i) % len(PAYLOADS)]
        if len(text) + len(candidate) <= maxlength:
            text += candidate
    return text or next((p for p in SHORT if len(p) <= maxlength), "<b>")


# --- filling the app's own forms --------------------------------------------------------------


class _Forms(HTMLParser):
    """The POST forms of a page: action and fields (tag, type, name, value, maxlength...)."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict] = []
        self._form: dict | None = None
        self._select: dict | None = None
        self._textarea: dict | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self._form = {"action": a.get("action", ""), "method": a.get("method", "get"),
                          "fields": []}  # fmt: skip
            self.forms.append(self._form)
        elif self._form is None or "name" not in a and tag != "option":
            return
        elif tag == "input":
            self._form["fields"].append({"tag": "input", **a})
        elif tag == "textarea":
            self._textarea = {"tag": "textarea", **a, "value": ""}
            self._form["fields"].append(self._textarea)
        elif tag == "select":
            self._select = {"tag": "select", **a, "options": []}
            self._form["fields"].append(self._select)
        elif tag == "option" and self._select is not None:
            self._select["options"].append((a.get("value", ""), "selected" in a))

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None
        elif tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data):
        if self._textarea is not None:
            self._textarea["value"] += data


# Fields whose format is checked (digits, dates, account names...): they keep their value.
FORMATTED = re.compile(
    r"(phone|username|password|id_number|date|time|_on$|_at$|^code$|points|hours|cost|stock"
    r"|capacity|minimum|limit|page|^next$|room_count|floors|^q$|^lang$|born|year)"
)


def _form_data(form: dict, overrides: dict) -> dict:
    data: dict[str, object] = {}
    for f in form["fields"]:
        name, kind = f["name"], f.get("type", "text")
        if name in overrides or kind in ("file", "submit", "button"):
            continue
        if f["tag"] == "select":
            chosen = [v for v, sel in f["options"] if sel]
            values = [v for v, _ in f["options"] if v]
            if "multiple" in f:
                data[name] = chosen
            elif chosen or values:
                data[name] = (chosen or values)[0]
        elif kind in ("checkbox", "radio"):
            if "checked" in f:
                data.setdefault(name, []).append(f.get("value", "y"))  # type: ignore[union-attr]
            elif kind == "radio" and name not in data:
                data[name] = [f.get("value", "")]
        elif f["tag"] == "textarea" or kind in ("text", "search"):
            if FORMATTED.search(name) or "readonly" in f:
                data[name] = f.get("value", "")
            else:
                limit = f.get("maxlength")
                data[name] = payload(int(limit) if limit else None)
        elif kind == "number":
            data[name] = f.get("value") or ("1" if "required" in f else "")
        else:
            data[name] = f.get("value", "")
    for name, value in list(data.items()):
        if isinstance(value, list) and len(value) == 1:
            data[name] = value[0]
    data.update(overrides)
    return data


def submit(client, page_url: str, action: str, overrides: dict | None = None, **kw):
    """Open ``page_url``, fill its form posting to ``action`` (hostile text in every free-text
    field) and send it; the app must accept it (a 303, or a 200 htmx swap without errors)."""
    page = client.get(page_url)
    assert page.status_code == 200, (page_url, page.status_code)
    parser = _Forms()
    parser.feed(page.get_data(as_text=True))
    forms = [f for f in parser.forms if f["method"].lower() == "post" and f["action"] == action]
    assert forms, (page_url, action, [f["action"] for f in parser.forms])
    data = _form_data(forms[0], overrides or {})
    response = client.post(action, data=data, **kw)
    body = response.get_data(as_text=True)
    assert response.status_code in (200, 303), (action, response.status_code, body[:2000])
    if response.status_code == 200:
        errors = re.findall(r'id="([\w-]+)-msg"><p class="error">([^<]*)', body)
        assert 'class="error"' not in body and "has-error" not in body, (action, errors, data)
    return response


# --- the scene: hostile text everywhere, entered by whoever may enter it -------------------------


def _login(client, username: str) -> None:
    client.post("/logout")
    response = client.post("/login", data={"identifier": username, "password": PASSWORD})
    assert response.status_code == 303, username


def _objects(world):
    """What the forms act on: a shift of next week (to edit, cancel), one on now led by the
    volunteer (report, hazards, door watch), a reward with a redemption, a ledger row, the
    default request catalogue."""
    a = world.a
    seed_catalogue(a.community.id)
    # 09:00 local a week on: a shift that crossed local midnight could not be edited as one day.
    soon = local_to_utc((now_utc() + timedelta(days=7)).date(), time(9, 0))
    now = now_utc() - timedelta(minutes=10)
    later = Shift(
        community_id=a.community.id, grid_id=a.grid.id, kind="patrol", title="周末巡逻",
        starts_at=soon, ends_at=soon + timedelta(hours=2), capacity=5, minimum=1,
        checkin_code=new_checkin_code(),
    )  # fmt: skip
    doomed = Shift(
        community_id=a.community.id, grid_id=a.grid.id, kind="patrol", title="取消的巡逻",
        starts_at=soon, ends_at=soon + timedelta(hours=2), capacity=5, minimum=1,
        checkin_code=new_checkin_code(),
    )  # fmt: skip
    current = Shift(
        community_id=a.community.id, grid_id=a.grid.id, kind="door_watch", title="入户走访",
        route=[{"building_id": a.building.id, "label": ""}], starts_at=now,
        ends_at=now + timedelta(hours=2), capacity=5, taken=1, minimum=1,
        checkin_code=new_checkin_code(), leader_id=a.volunteer.person.id,
    )  # fmt: skip
    # A resident on the door-watch route who needs care (and consented to be visited).
    a.volunteer.person.care_consent_at = now_utc()
    a.volunteer.person.lives_alone = True
    db.session.add_all([later, doomed, current])
    db.session.flush()
    db.session.add(
        Signup(community_id=a.community.id, shift_id=current.id,
               person_id=a.volunteer.person.id, status="confirmed")
    )  # fmt: skip
    entry = ledger.adjust(a.volunteer.person.id, points=500, hours=0, reason="开账", actor_id=None)
    reward = Reward(community_id=a.community.id, name="大米", cost=10, stock=50)
    db.session.add(reward)
    db.session.flush()
    redemption = Redemption(
        community_id=a.community.id, reward_id=reward.id, person_id=a.volunteer.person.id,
        cost=10, voucher_code="V7000001",
    )  # fmt: skip
    db.session.add(redemption)
    db.session.commit()
    return later, doomed, current, entry, reward, redemption


def enter_hostile_text(client, world) -> dict:
    """Every free-text field of the portal, filled with the corpus through its own form."""
    a = world.a
    later, doomed, current, entry, reward, redemption = _objects(world)
    ids = {"later": later.id, "current": current.id, "reward": reward.id,
           "redemption": redemption.id}  # fmt: skip

    # Anyone: signing up (name).
    submit(client, "/signup", "/signup", {"phone": "13900001111", "username": "xss_signup",
                                          "password": "Hostile-pass-123",
                                          "confirm": "Hostile-pass-123"})  # fmt: skip

    _login(client, "secretary_a")
    for kind, obj in (("grids", a.grid), ("estates", a.estate), ("buildings", a.building),
                      ("entrances", a.entrance), ("households", a.household)):  # fmt: skip
        url = f"/places/{kind}/{obj.id}/edit"
        submit(client, url, url)
    url = f"/places/buildings/{a.building.id}"
    submit(client, url, f"{url}/entrances")
    url = f"/people/{a.resident.person.id}/edit"
    submit(client, url, url, {"building_id": a.building2.id, "room": "201", "guardian": ""})
    submit(client, "/catalogue/new", "/catalogue/new")
    major = db.session.scalar(select(Category).where(Category.community_id == a.community.id,
                                                     Category.code == "repair"))  # fmt: skip
    minor = db.session.scalar(select(Category).where(Category.community_id == a.community.id,
                                                     Category.code == "repair.water"))  # fmt: skip
    numbers = {"time_limit_hours": "24", "points": "5"}
    submit(client, f"/catalogue/{major.id}/new", f"/catalogue/{major.id}/new", numbers)
    submit(client, f"/catalogue/{minor.id}/edit", f"/catalogue/{minor.id}/edit")
    submit(client, "/catalogue/api-keys", "/catalogue/api-keys")
    submit(client, f"/rewards/{reward.id}/edit", f"/rewards/{reward.id}/edit")
    submit(client, "/rewards/new", "/rewards/new", {"cost": "10", "stock": "3"})
    submit(client, f"/shifts/{later.id}/edit", f"/shifts/{later.id}/edit")
    first = (now_utc() + timedelta(days=3)).date()
    submit(client, "/series/new", "/series/new",
           {"weekdays": "MO", "starts_on": first.isoformat(),
            "ends_on": (first + timedelta(days=13)).isoformat()})  # fmt: skip
    submit(client, f"/shifts/{doomed.id}/edit", f"/shifts/{doomed.id}/cancel-shift")
    person = a.volunteer.person.id
    submit(client, f"/points/people/{person}", f"/points/people/{person}/adjust", {"points": "5"})
    submit(client, f"/points/people/{person}", f"/points/entries/{entry.id}/reverse")
    submit(client, "/rewards/redemptions", f"/rewards/redemptions/{redemption.id}/cancel")
    volunteer = a.pending_volunteer.id
    submit(client, "/volunteers/queue", f"/volunteers/{volunteer}/reject")

    _login(client, "resident_a")
    submit(client, "/volunteers/mine", "/volunteers/mine",
           {"types": ["party_member", "red_armband"]})  # fmt: skip
    ids["registration"] = db.session.scalar(
        select(Volunteer.id).where(Volunteer.person_id == a.resident.person.id)
    )
    for _ in range(2):
        submit(client, "/requests/new", "/requests/new")
    first, second = db.session.scalars(
        select(HelpRequest.id).where(HelpRequest.community_id == a.community.id)
        .order_by(HelpRequest.id)
    ).all()  # fmt: skip
    ids["request"] = first
    submit(client, f"/requests/{first}", f"/requests/{first}/act/comment")

    _login(client, "secretary_a")
    submit(client, "/handling", f"/handling/{second}/reject")

    _login(client, "volunteer_a")
    url = f"/shifts/{current.id}/report"
    submit(client, url, url)
    submit(client, url, f"{url}/hazards")
    url = f"/shifts/{current.id}/door-watch"
    submit(client, url, f"{url}/{a.household.id}", {"outcome": "needs_help"})
    return ids


# --- looking at it in a real browser ----------------------------------------------------------

# After a page settles: injected elements, javascript: links, a template that evaluated {{7*7}},
# and whether the hostile text is on the page at all (escaped, as text or a field's value).
INSPECT = """() => ({
  live: Array.from(document.querySelectorAll('[data-xss]')).map(e => e.outerHTML.slice(0, 80)),
  scriptLinks: document.querySelectorAll('a[href^="javascript:" i]').length,
  evaluated: document.documentElement.innerHTML.includes('xss49'),
  shown: document.documentElement.outerHTML.includes('data-xss')
    || Array.from(document.querySelectorAll('input, textarea')).some(
         e => (e.value || '').includes('data-xss')),
})"""
# Fetch the same URL as htmx would (HX-Request) and swap it into the page: fragments too.
SWAP = """async (url) => {
  await htmx.ajax('GET', url, {target: '#main', swap: 'innerHTML'});
  await new Promise(r => setTimeout(r, 60));
}"""
# What a search box echoes back (they take 40 characters).
Q = quote('"><img src=/__xss__/q data-xss>')


def _pages(ids: dict, world) -> dict[str, list[str]]:
    a = world.a
    person = a.volunteer.person.id
    return {
        "secretary_a": [
            "/",
            "/people/",
            f"/people/{a.resident.person.id}",
            f"/people/{a.resident.person.id}/edit",
            f"/people/?q={Q}",
            "/places/",
            f"/places/communities/{a.community.id}",
            f"/places/grids/{a.grid.id}",
            f"/places/estates/{a.estate.id}",
            f"/places/buildings/{a.building.id}",
            f"/places/buildings/{a.building2.id}",
            f"/places/households/{a.household.id}",
            f"/places/entrances/{a.entrance.id}/edit",
            "/volunteers/",
            f"/volunteers/?q={Q}",
            "/volunteers/queue",
            f"/volunteers/{a.pending_volunteer.id}",
            f"/volunteers/{ids['registration']}",
            "/handling",
            f"/requests/{ids['request']}",
            "/shifts",
            f"/shifts/{ids['later']}",
            f"/shifts/{ids['later']}/edit",
            "/coverage",
            "/catalogue",
            "/catalogue/api-keys",
            "/rewards/manage",
            f"/rewards/{ids['reward']}",
            "/rewards/redemptions",
            f"/rewards/redemptions?code={Q}",
            "/points/ledger",
            f"/points/ledger?q={Q}",
            f"/points/people/{person}",
            "/points/leaderboard",
            f"/shifts/{ids['current']}/report",
        ],
        "volunteer_a": [
            f"/shifts/{ids['current']}/lead",
            f"/shifts/{ids['current']}/door-watch",
            f"/shifts/{ids['current']}/report",
            "/my/shifts",
            f"/shifts/{ids['later']}",
            "/points",
            "/rewards",
            f"/rewards/{ids['reward']}",
            "/rewards/mine",
            f"/rewards/vouchers/{ids['redemption']}",
            "/board",
            "/notifications",
            f"/checkin?code={Q}",
        ],
        "resident_a": [
            "/requests/mine",
            f"/requests/{ids['request']}",
            "/volunteers/mine",
            "/notifications",
        ],
    }


# Pages that show none of the hostile text (they are opened all the same).
SHOWS_NOTHING = {"/", "/shifts", "/coverage", "/points", "/points/leaderboard", "/board",
                 "/my/shifts", "/notifications", "/catalogue/api-keys", "lead"}  # fmt: skip


def _sign_in(page, base: str, username: str) -> None:
    page.context.clear_cookies()
    page.goto(f"{base}/login")
    page.fill("#identifier", username)
    page.fill("#password", PASSWORD)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_url(f"{base}/")


@needs_browser
def test_stored_xss_corpus_stays_inert(client, world, live_server, browser_page):
    ids = enter_hostile_text(client, world)
    page = browser_page
    requests: list[str] = []
    page.on("request", lambda req: requests.append(req.url))
    findings = []
    not_shown = []

    def look(where: str) -> None:
        found = page.evaluate(INSPECT)
        if found["live"] or found["scriptLinks"] or found["evaluated"]:
            findings.append((where, found))
        url = where.split()[-1]
        quiet = url in SHOWS_NOTHING or url.rsplit("/", 1)[-1] in SHOWS_NOTHING
        if not found["shown"] and "swapped" not in where and not quiet:
            not_shown.append(where)
        if page.problems:
            findings.append((where, list(page.problems)))
            page.problems.clear()

    page.goto(f"{live_server}/login?next=/{Q}")
    look("anonymous /login")
    for username, urls in _pages(ids, world).items():
        _sign_in(page, live_server, username)
        for url in urls:
            page.goto(live_server + url)
            look(f"{username} {url}")
            page.evaluate(SWAP, url)
            look(f"{username} swapped {url}")
    page.wait_for_timeout(300)  # anything that would fire on load has had its chance
    assert findings == []
    assert not_shown == [], not_shown
    # (The search pages' own URLs carry the text in their query: only a path counts.)
    hostile = [url for url in requests if "__xss__" in urlsplit(url).path]
    elsewhere = [url for url in requests if not url.startswith(live_server)]
    assert hostile == [] and elsewhere == []

    # The watch itself works: the same corpus planted as live markup is caught three ways.
    page.evaluate("(html) => { document.body.insertAdjacentHTML('beforeend', html);"
                  " htmx.process(document.body); }", ALL)  # fmt: skip
    page.wait_for_timeout(300)
    look("planted")
    assert findings and findings[0][0] == "planted" and findings[0][1]["live"]
    assert any("Content Security Policy" in problem for problem in findings[-1][1])
    assert any("__xss__" in urlsplit(url).path for url in requests)
