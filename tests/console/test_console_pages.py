"""The console's pages without a browser: every page refuses anonymous users and wrong roles (the routes are
enumerated), forms need the CSRF token, transcripts are escaped, cookies carry their flags, and the
configuration editor validates, versions and reverts."""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.routing import APIRoute, APIWebSocketRoute
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from callbot.access.guard import SESSION_COOKIE
from callbot.access.users import UserStore
from callbot.app import create_app
from callbot.mailbox.recording import MessageMeta
from callbot.mailbox.store import Classified, MailboxStore, Transcribed
from callbot.web import PAGE_ROUTERS
from nlu.training_data import load_training_data
from tests.conftest import TEST_PASSWORD, open_bot
from tests.test_bad_input import settings

ITEM = "ab" * 16
XSS = '<script>alert("owned")</script><img src=x onerror=alert(1)> & "quotes"'

PUBLIC_PAGES = {("GET", "/"), ("GET", "/login"), ("POST", "/login")}
EXPECTED: dict[tuple[str, str], set[str]] = {
    ("POST", "/logout"): {"trainee", "ops", "admin"},
    ("POST", "/me/language"): {"trainee", "ops", "admin"},
    ("GET", "/mailbox"): {"trainee", "ops", "admin"},
    ("GET", "/mailbox/{item_id}"): {"trainee", "ops", "admin"},
    ("POST", "/mailbox/{item_id}/work"): {"trainee", "ops", "admin"},
    ("GET", "/progress"): {"trainee", "ops", "admin"},
    ("GET", "/dashboard"): {"ops", "admin"},
    ("GET", "/calls"): {"ops", "admin"},
    ("GET", "/calls/{call_id}"): {"ops", "admin"},
    ("GET", "/ops/intents"): {"ops", "admin"},
    ("POST", "/ops/intents"): {"ops", "admin"},
    ("GET", "/ops/intents/{intent}"): {"ops", "admin"},
    ("POST", "/ops/intents/{intent}"): {"ops", "admin"},
    ("GET", "/ops/config"): {"ops", "admin"},
    ("POST", "/ops/config"): {"ops", "admin"},
    ("GET", "/ops/versions"): {"ops", "admin"},
    ("GET", "/ops/versions/{version_id}"): {"ops", "admin"},
    ("POST", "/ops/versions/{version_id}/revert"): {"ops", "admin"},
    ("GET", "/ops/agents"): {"ops", "admin"},
    ("POST", "/ops/agents/{agent_id}/status"): {"ops", "admin"},
    ("GET", "/ops/corrections"): {"ops", "admin"},
    ("POST", "/ops/corrections/{correction_id}"): {"ops", "admin"},
    ("GET", "/ops/training"): {"ops", "admin"},
    ("GET", "/ops/training/status"): {"ops", "admin"},
    ("POST", "/ops/training/train"): {"ops", "admin"},
    ("POST", "/ops/training/publish"): {"ops", "admin"},
    ("GET", "/ops/test-call"): {"ops", "admin"},
    ("GET", "/admin/access"): {"admin"},
    ("POST", "/admin/users/{username}/active"): {"admin"},
    ("POST", "/admin/tokens/{token_id}/revoke"): {"admin"},
}
"""Who may open each page. A page missing here fails the test: decide who may use it first."""


@pytest.fixture
def app_client(tmp_path: Path, joe_voice: Path) -> Iterator[TestClient]:
    bot = tmp_path / "bot"
    shutil.copytree(open_bot(), bot)
    with TestClient(create_app(settings(tmp_path, joe_voice).model_copy(update={"bot_dir": bot}))) as client:
        users: UserStore = client.app.state.users  # type: ignore[attr-defined]
        for role in ("trainee", "ops", "admin"):
            users.add_user(f"{role}.user", TEST_PASSWORD, role)  # type: ignore[arg-type]
        store: MailboxStore = client.app.state.resources.mailbox  # type: ignore[attr-defined]
        meta = MessageMeta(
            ITEM, "c" * 32, "+33612345678", "+33900000000", "closed", "fr", datetime.now(UTC).isoformat()
        )
        store.create(meta, "none.wav")
        store.finish_recording(ITEM, 3.0)
        store.save_transcription(
            ITEM, Transcribed(XSS, [[XSS, 0.1, 0.9, 0.4]], [], None, None), Classified("opening_hours", 0.9, {"x": XSS})
        )
        yield client


def login(client: TestClient, role: str) -> str:
    """Log in as ``role`` through the login form; the session's CSRF token."""
    client.cookies.clear()
    form = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
    response = client.post(
        "/login",
        data={"username": f"{role}.user", "password": TEST_PASSWORD, "csrf_token": token},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    page = client.get(response.headers["location"])
    return re.search(r'data-csrf="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]


SAMPLES = {"item_id": ITEM, "call_id": "c" * 32, "intent": "opening_hours", "agent_id": "s.simon"}


def _sample(path: str) -> str:
    return re.sub(r"\{([^}]+)\}", lambda m: SAMPLES.get(m.group(1), "1"), path)


def test_every_page_refuses_anonymous_users_and_wrong_roles(app_client: TestClient) -> None:
    routes = [
        (m, r.path) for router in PAGE_ROUTERS for r in router.routes if isinstance(r, APIRoute) for m in r.methods
    ]
    assert routes, "no page routes found"
    for method, path in routes:
        key = (method, path)
        if key in PUBLIC_PAGES:
            continue
        assert key in EXPECTED, f"{key} is not in EXPECTED: say who may use it"
        app_client.cookies.clear()
        anonymous = app_client.request(method, _sample(path), follow_redirects=False)
        assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login"), key
        for role in ("trainee", "ops", "admin"):
            login(app_client, role)
            # forms are sent without their CSRF token: the role is checked first, and nothing changes
            response = app_client.request(method, _sample(path), follow_redirects=False)
            if role in EXPECTED[key] and method == "GET":
                assert response.status_code not in (401, 403), f"{key} refused a {role}"
            elif role in EXPECTED[key]:
                assert response.status_code == 403 and "CSRF" in response.text, f"{key}: a {role} is let in"
            else:
                assert response.status_code == 403 and "CSRF" not in response.text, f"{key} let a {role} in"
    sockets = [r.path for router in PAGE_ROUTERS for r in router.routes if isinstance(r, APIWebSocketRoute)]
    assert sockets == ["/console/call"]


def test_the_test_call_socket_needs_an_ops_session_from_this_site_and_the_csrf_token(app_client: TestClient) -> None:
    def refused(headers: dict[str, str], query: str = "") -> int:
        with (
            pytest.raises(WebSocketDisconnect) as closed,
            app_client.websocket_connect(f"/console/call{query}", headers=headers) as ws,
        ):
            ws.receive_text()
        return closed.value.code

    same_site = {"origin": "http://testserver"}
    app_client.cookies.clear()
    assert refused(same_site) == 1008, "anonymous"
    trainee_csrf = login(app_client, "trainee")
    assert refused(same_site, f"?csrf={trainee_csrf}") == 1008, "a trainee"
    csrf = login(app_client, "ops")
    assert refused(same_site, "?csrf=forged") == 1008
    assert refused({"origin": "http://evil.example"}, f"?csrf={csrf}") == 1008, "cross-site"
    with app_client.websocket_connect(f"/console/call?csrf={csrf}", headers=same_site) as ws:
        assert ws.receive_json()["type"] == "start"
        ws.send_text('{"type": "hangup"}')


def test_forms_need_the_csrf_token(app_client: TestClient) -> None:
    csrf = login(app_client, "trainee")
    url = f"/mailbox/{ITEM}/work"
    assert app_client.post(url, data={"action": "take"}, follow_redirects=False).status_code == 403
    assert (
        app_client.post(url, data={"action": "take", "csrf_token": "forged"}, follow_redirects=False).status_code == 403
    )
    done = app_client.post(url, data={"action": "take", "csrf_token": csrf}, follow_redirects=False)
    assert done.status_code == 303
    store: MailboxStore = app_client.app.state.resources.mailbox  # type: ignore[attr-defined]
    assert store.get(ITEM).assignee == "trainee.user"
    login_form = app_client.post("/login", data={"username": "trainee.user", "password": TEST_PASSWORD})
    assert login_form.status_code == 401, "a login without the login form's token is refused"


def test_what_callers_said_is_shown_escaped(app_client: TestClient) -> None:
    login(app_client, "trainee")
    for url in (f"/mailbox/{ITEM}", "/mailbox"):
        html = app_client.get(url).text
        assert "<script>alert" not in html and "<img src=x" not in html
        assert "&lt;script&gt;alert(&#34;owned&#34;)&lt;/script&gt;" in html
    response = app_client.get(f"/mailbox/{ITEM}")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"


def test_session_cookie_flags(tmp_path: Path, joe_voice: Path) -> None:
    https = settings(tmp_path, joe_voice, public_base_url="https://callbot.example.com")
    with TestClient(create_app(https), base_url="https://testserver") as client:
        client.app.state.users.add_user("camille", TEST_PASSWORD, "ops")  # type: ignore[attr-defined]
        form = client.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
        response = client.post(
            "/login",
            data={"username": "camille", "password": TEST_PASSWORD, "csrf_token": token},
            follow_redirects=False,
        )
    cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE))
    flags = {part.strip().lower() for part in cookie.split(";")}
    assert {"httponly", "secure", "samesite=lax", "path=/"} <= flags
    assert "max-age=43200" in flags


def test_failed_logins_slow_the_client_down_without_locking_staff_out(
    app_client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    app = app_client.app

    def attempt(client: TestClient, username: str, password: str) -> str:
        client.cookies.clear()
        form = client.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
        data = {"username": username, "password": password, "csrf_token": token}
        return client.post("/login", data=data, follow_redirects=False).text

    caplog.set_level("INFO", logger="callbot.web.auth_pages")
    attacker = app_client  # every TestClient request comes from the same address unless told otherwise
    for name in ("nobody.here", "ops.user"):
        for _ in range(5):
            assert "unknown user or wrong password" in attempt(attacker, name, "wrong password!")
        # the sixth attempt is not even checked, and says the same for a real account and an unknown one
        assert "too many failed attempts: try again in 1 s" in attempt(attacker, name, "wrong password!")
    assert "too many failed attempts" in attempt(attacker, "ops.user", TEST_PASSWORD), "no guessing while throttled"

    # the real user, on another address, is not locked out
    with TestClient(app, client=("192.0.2.10", 50000)) as colleague:
        assert attempt(colleague, "ops.user", TEST_PASSWORD) == "", "a redirect to the console"
    # and once the delay is over, the right password works from the first address too
    time.sleep(1.1)
    assert attempt(attacker, "ops.user", TEST_PASSWORD) == ""

    lines = [r.getMessage() for r in caplog.records if r.name == "callbot.web.auth_pages"]
    assert "login failed: user=ops.user client=testclient" in lines
    assert "login succeeded: user=ops.user client=192.0.2.10" in lines
    assert any(line.startswith("login throttled: user=nobody.here client=testclient") for line in lines)
    assert not any(TEST_PASSWORD in line or "wrong password!" in line for line in lines), "never the password"


def test_next_after_login_stays_on_this_site(app_client: TestClient) -> None:
    form = app_client.get("/login?next=//evil.example/x")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
    assert 'name="next" value=""' in form.text
    response = app_client.post(
        "/login",
        data={"username": "ops.user", "password": TEST_PASSWORD, "csrf_token": token, "next": "https://evil.example"},
        follow_redirects=False,
    )
    assert response.headers["location"] == "/dashboard"


def test_the_configuration_editor_validates_versions_and_reverts(app_client: TestClient) -> None:
    csrf = login(app_client, "ops")
    resources = app_client.app.state.resources  # type: ignore[attr-defined]
    bot_dir: Path = resources.settings.bot_dir
    original = (bot_dir / "routing.yml").read_text(encoding="utf-8")
    broken = original.replace("failover_skill: general", "failover_skill: nobody")
    refused = app_client.post("/ops/config", data={"file": "routing.yml", "text": broken, "csrf_token": csrf})
    assert refused.status_code == 422
    assert "failover_skill: unknown skill &#39;nobody&#39;" in refused.text
    assert "failover_skill: nobody" in refused.text, "the edit stays in the form"
    assert (bot_dir / "routing.yml").read_text(encoding="utf-8") == original, "nothing written"

    edited = original.replace("max_wait_s: 600", "max_wait_s: 420", 1)
    saved = app_client.post(
        "/ops/config",
        data={"file": "routing.yml", "text": edited, "summary": "shorter wait", "csrf_token": csrf},
        follow_redirects=False,
    )
    assert saved.status_code == 303
    assert (bot_dir / "routing.yml").read_text(encoding="utf-8") == edited
    assert resources.folder.routing.queues["advisors"].max_wait_s == 420, "the running service uses it at once"
    versions = app_client.get("/ops/versions").text
    assert "shorter wait" in versions and "ops.user" in versions
    version_id = re.search(r'href="/ops/versions/(\d+)"', versions).group(1)  # type: ignore[union-attr]
    shown = app_client.get(f"/ops/versions/{version_id}").text
    assert "-    max_wait_s: 600" in shown and "+    max_wait_s: 420" in shown
    app_client.post(f"/ops/versions/{version_id}/revert", data={"csrf_token": csrf})
    assert (bot_dir / "routing.yml").read_text(encoding="utf-8") == original
    assert resources.folder.routing.queues["advisors"].max_wait_s == 600


def test_examples_are_edited_and_a_trainees_correction_reaches_the_training_data(app_client: TestClient) -> None:
    resources = app_client.app.state.resources  # type: ignore[attr-defined]
    nlu = resources.settings.bot_dir / "nlu.yml"
    csrf = login(app_client, "trainee")
    app_client.post(f"/mailbox/{ITEM}/work", data={"action": "reason", "value": "lost_stolen_card", "csrf_token": csrf})
    csrf = login(app_client, "ops")
    page = app_client.get("/ops/corrections").text
    correction = re.search(r'action="/ops/corrections/(\d+)"', page).group(1)  # type: ignore[union-attr]
    app_client.post(
        f"/ops/corrections/{correction}",
        data={"decision": "accept", "text": "on m'a pris ma carte dans le métro", "csrf_token": csrf},
    )
    assert "    - on m'a pris ma carte dans le métro\n" in nlu.read_text(encoding="utf-8")
    url = "/ops/intents/opening_hours"
    app_client.post(url, data={"action": "add", "new": "vous ouvrez à quelle heure le lundi", "csrf_token": csrf})
    text = nlu.read_text(encoding="utf-8")
    assert "    - vous ouvrez à quelle heure le lundi\n" in text and text.startswith('version: "3.1"\n\n# Données')
    app_client.post(
        url,
        data={
            "action": "move",
            "example": "vous ouvrez à quelle heure le lundi",
            "to": "appointment",
            "csrf_token": csrf,
        },
    )
    assert "vous ouvrez à quelle heure le lundi" in app_client.get("/ops/intents/appointment").text
    existing = next(e.text for e in load_training_data(nlu).examples if e.intent == "opening_hours")
    duplicate = app_client.post(
        url, data={"action": "add", "new": existing, "csrf_token": csrf}, follow_redirects=False
    )
    assert "error=" in duplicate.headers["location"] and "already" in duplicate.headers["location"]
    empty = app_client.post(url, data={"action": "add", "new": "   ", "csrf_token": csrf}, follow_redirects=False)
    assert "error=" in empty.headers["location"]


def test_page_numbers_beyond_any_history_are_refused_not_a_server_error(app_client: TestClient) -> None:
    login(app_client, "ops")
    huge = "1874436561370446128125837312"
    for path in (f"/calls?page={huge}", f"/mailbox?page={huge}", f"/api/mailbox?page={huge}"):
        response = app_client.get(path)
        assert response.status_code == 422, (path, response.status_code)
        assert isinstance(response.json()["detail"], list), "the documented validation error shape"
    assert app_client.get("/calls?page=1000000").status_code == 200, "the last page accepted is served (empty)"
    assert app_client.get("/mailbox?page=1000000").status_code == 200
    for path in ("/api/mailbox?status=nonsense", "/api/mailbox/export.csv?status=completed"):
        response = app_client.get(path)
        assert response.status_code == 422
        [error] = response.json()["detail"]
        assert error["loc"] == ["query", "status"] and "status must be one of" in error["msg"]


def test_the_csv_export_neutralises_formulas_in_every_cell_and_opens_in_french_spreadsheets(
    app_client: TestClient,
) -> None:
    store: MailboxStore = app_client.app.state.resources.mailbox  # type: ignore[attr-defined]
    hostile = "cd" * 16
    formula = '=HYPERLINK("http://e.x","a")'
    meta = MessageMeta(hostile, "d" * 32, formula, "+33900000000", "closed", "fr", datetime.now(UTC).isoformat())
    store.create(meta, "none.wav")
    store.finish_recording(hostile, 2.0)
    store.save_transcription(hostile, Transcribed("-1+1 é", [], [], None, None), Classified("@SUM(1)", 0.5, {}))
    login(app_client, "ops")

    export = app_client.get("/api/mailbox/export.csv?delimiter=;")
    assert export.status_code == 200
    assert export.content.startswith(b"\xef\xbb\xbf"), "a byte-order mark: spreadsheets read the accents right"
    import csv
    import io

    rows = list(csv.reader(io.StringIO(export.content.decode("utf-8-sig")), delimiter=";"))
    header, *lines = rows
    assert header[:3] == ["id", "received_at", "caller"]
    line = next(r for r in lines if r[0] == hostile)
    cells = dict(zip(header, line, strict=True))
    assert cells["caller"] == "'" + formula
    assert cells["transcript"] == "'-1+1 é" and cells["detected_reason"] == "'@SUM(1)"
    plain = next(r for r in lines if r[0] == ITEM)
    assert dict(zip(header, plain, strict=True))["caller"] == "+33612345678", "a phone number stays as it is"
    assert app_client.get("/api/mailbox/export.csv?delimiter=x").status_code == 422


def test_an_admin_revokes_a_token_and_disables_a_user_from_the_console(app_client: TestClient) -> None:
    users: UserStore = app_client.app.state.users  # type: ignore[attr-defined]
    users.add_user("acd.pbx", TEST_PASSWORD, "acd")
    token = users.new_api_token("acd.pbx", '<b>acd</b> "pbx"')
    assert app_client.get("/api/queues", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert app_client.get("/api/calls", headers={"Authorization": f"Bearer {token}"}).status_code == 403
    csrf = login(app_client, "admin")
    listed = app_client.get("/admin/access")
    assert "&lt;b&gt;acd&lt;/b&gt;" in listed.text and "<b>acd</b>" not in listed.text
    token_id = users.list_tokens("acd.pbx")[0].id
    assert f'id="revoke-{token_id}"' in listed.text and token not in listed.text
    done = app_client.post(f"/admin/tokens/{token_id}/revoke", data={"csrf_token": csrf}, follow_redirects=False)
    assert done.status_code == 303
    assert app_client.get("/api/queues", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    trainee_session = users.login("trainee.user", TEST_PASSWORD)
    app_client.post("/admin/users/trainee.user/active", data={"active": "0", "csrf_token": csrf})
    assert users.session(trainee_session.token) is None
    assert 'id="enable-trainee.user"' in app_client.get("/admin/access").text
    own = app_client.post("/admin/users/admin.user/active", data={"active": "0", "csrf_token": csrf})
    assert own.status_code == 400 and users.is_active("admin.user")
    assert app_client.post("/admin/tokens/zz/revoke", data={"csrf_token": csrf}).status_code == 404
