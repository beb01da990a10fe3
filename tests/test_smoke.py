def test_healthz(client):
    r = client.get("/healthz")
    assert r.status_code == 200 and r.json == {"status": "ok"}


def test_login_home(client, auth, world):
    auth.login("secretary_a")
    r = client.get("/")
    assert r.status_code == 200
