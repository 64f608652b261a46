"""Users, passwords, lockout, sessions, API tokens, and the role check on every route of the app."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from callbot.access.bootstrap import INITIAL_PASSWORD_FILE
from callbot.access.guard import SESSION_COOKIE
from callbot.access.users import AccessError, UserStore
from callbot.app import create_app
from callbot.storage.database import make_engine, migrate
from tests.conftest import ROOT, TEST_PASSWORD
from tests.test_bad_input import settings

PUBLIC = {
    "/healthz",
    "/livez",
    "/readyz",
    "/metrics",
    "/docs",
    "/docs/oauth2-redirect",
    "/redoc",
    "/openapi.json",
}
"""Routes anyone may call: health, liveness, readiness and metrics (no personal data) and the API description."""
SIGNED = re.compile(r"^/(twilio/|api/nlu/model/published$)")
"""The provider's webhooks, authenticated by X-Twilio-Signature, and the model server Rasa pulls from, by its
own token (CALLBOT_MODEL_SERVER_TOKEN): not by a user (docs/call-path.md, docs/deployment.md)."""


@pytest.fixture
def users(tmp_path: Path) -> Iterator[UserStore]:
    engine = make_engine(f"sqlite:///{tmp_path / 'users.db'}")
    migrate(engine)
    yield UserStore(engine)
    engine.dispose()


def test_passwords_are_hashed_and_checked(users: UserStore) -> None:
    users.add_user("camille", TEST_PASSWORD, "trainee", "Camille")
    with pytest.raises(AccessError, match="already exists"):
        users.add_user("camille", TEST_PASSWORD, "ops")
    with pytest.raises(AccessError, match="at least 12 characters"):
        users.add_user("hugo", "short", "ops")
    with pytest.raises(AccessError, match="username"):
        users.add_user("Hugo Durand", TEST_PASSWORD, "ops")
    session = users.login("camille", TEST_PASSWORD)
    assert session.user.role == "trainee" and len(session.token) >= 40 and session.csrf_token
    assert users.session(session.token) is not None
    assert users.session("forged") is None
    users.logout(session.token)
    assert users.session(session.token) is None
    with pytest.raises(AccessError, match="unknown user or wrong password"):
        users.login("camille", "wrong password!!")
    with pytest.raises(AccessError, match="unknown user or wrong password"):
        users.login("nobody", TEST_PASSWORD)


def test_repeated_failures_never_lock_the_account(users: UserStore) -> None:
    """Nobody can lock a colleague out by failing on purpose: the login page slows the failing client down
    instead (tests/callbot/test_login_throttle.py)."""
    users.add_user("emma", TEST_PASSWORD, "ops")
    for _ in range(8):
        with pytest.raises(AccessError, match="unknown user or wrong password"):
            users.login("emma", "not the password")
    assert users.login("emma", TEST_PASSWORD).user.username == "emma"
    users.set_password("emma", "a new long password")
    assert users.login("emma", "a new long password").user.username == "emma"


def test_changing_a_password_ends_sessions(users: UserStore) -> None:
    users.add_user("lucas", TEST_PASSWORD, "ops")
    session = users.login("lucas", TEST_PASSWORD)
    users.set_password("lucas", "another long password")
    assert users.session(session.token) is None


def test_api_tokens_act_as_their_user(users: UserStore) -> None:
    users.add_user("acd", TEST_PASSWORD, "ops")
    token = users.new_api_token("acd", "acd")
    assert token.startswith("cbt_")
    user = users.api_user(token)
    assert user is not None and user.role == "ops"
    assert users.api_user(token + "x") is None


def test_tokens_expire_and_can_be_revoked_and_listed_with_their_last_use(users: UserStore) -> None:
    users.add_user("acd", TEST_PASSWORD, "acd")
    kept, revoked = users.new_api_token("acd", "acd-1"), users.new_api_token("acd", "acd-2")
    expired = users.new_api_token("acd", "old", lifetime=timedelta(seconds=-1))
    forever = users.new_api_token("acd", "forever", lifetime=None)
    assert users.api_user(kept) is not None and users.api_user(expired) is None
    listed = {t.name: t for t in users.list_tokens("acd")}
    assert listed["acd-1"].last_used_at is not None and listed["acd-2"].last_used_at is None
    assert listed["forever"].expires_at is None and listed["old"].state() == "expired"
    assert listed["acd-1"].expires_at is not None and listed["acd-1"].expires_at - datetime.now(UTC) > timedelta(
        days=364
    )
    assert all(len(t.id) == 12 and t.id not in revoked for t in listed.values()), "an id never reveals the token"
    assert users.revoke_token(listed["acd-2"].id).state() == "revoked"
    assert users.api_user(revoked) is None and users.api_user(kept) is not None and users.api_user(forever) is not None
    with pytest.raises(AccessError, match="no token"):
        users.revoke_token("0" * 12)
    with pytest.raises(AccessError, match="not a token id"):
        users.revoke_token("../../etc")


def test_disabling_a_user_or_changing_the_password_ends_sessions_and_tokens(users: UserStore) -> None:
    users.add_user("lea", TEST_PASSWORD, "ops")
    session, token = users.login("lea", TEST_PASSWORD), users.new_api_token("lea", "script")
    users.set_active("lea", False)
    assert users.session(session.token) is None and users.api_user(token) is None
    with pytest.raises(AccessError):
        users.login("lea", TEST_PASSWORD)
    with pytest.raises(AccessError, match="disabled"):
        users.new_api_token("lea", "again")
    users.set_active("lea", True)
    assert users.api_user(token) is None, "enabling a user does not bring old tokens back"
    session, token = users.login("lea", TEST_PASSWORD), users.new_api_token("lea", "script")
    users.set_password("lea", "a brand new password")
    assert users.session(session.token) is None and users.api_user(token) is None
    assert {t.state() for t in users.list_tokens("lea")} == {"revoked"}


def test_users_command(tmp_path: Path) -> None:
    env = {**os.environ, "CALLBOT_DATA_DIR": str(tmp_path / "data")}

    def cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "callbot.cli", "users", *args],
            input=stdin,
            capture_output=True,
            text=True,
            cwd=ROOT,
            env=env,
            check=False,
        )

    added = cli("add", "ines", "--role", "trainee", "--name", "Inès", "--password-stdin", stdin=TEST_PASSWORD + "\n")
    assert added.returncode == 0, added.stderr
    assert cli("add", "ines", "--role", "ops", "--password-stdin", stdin=TEST_PASSWORD).returncode == 1
    weak = cli("add", "jules", "--role", "ops", "--password-stdin", stdin="abc\n")
    assert weak.returncode == 1 and "at least 12 characters" in weak.stderr
    assert cli("list").stdout.splitlines() == ["ines\ttrainee\tfr\tInès"]
    token = cli("token", "ines").stdout.strip()
    assert token.startswith("cbt_")
    assert cli("token", "create", "ines", "--name", "acd", "--expires-days", "0").stdout.startswith("cbt_")
    listed = cli("token", "list").stdout.splitlines()
    assert listed[0].startswith("id\tuser\tname\tstate") and len(listed) == 3
    token_id = next(line.split("\t")[0] for line in listed[1:] if "\tacd\t" in line)
    assert "revoked" in cli("token", "revoke", token_id).stdout
    assert "\trevoked\t" in cli("token", "list", "ines").stdout
    assert cli("token", "revoke", "nope").returncode == 1
    assert "disabled" in cli("disable", "ines").stdout and cli("enable", "ines").returncode == 0
    assert json.loads(cli("list", "--json").stdout) == [
        {"username": "ines", "role": "trainee", "language": "fr", "display_name": "Inès", "active": True}
    ]
    tokens = json.loads(cli("token", "list", "--json").stdout)
    assert {t["state"] for t in tokens} == {"revoked"} and {t["id"] for t in tokens} >= {token_id}
    assert cli("passwd", "ines", "--password-stdin", stdin="yet another password\n").returncode == 0
    unknown = cli("passwd", "nobody", "--password-stdin", stdin=TEST_PASSWORD)
    assert unknown.returncode == 1 and "no user 'nobody'" in unknown.stderr


@pytest.fixture
def app_client(tmp_path: Path, joe_voice: Path) -> Iterator[TestClient]:
    with TestClient(create_app(settings(tmp_path, joe_voice))) as client:
        yield client


def test_first_start_creates_an_admin_with_a_private_password_file(app_client: TestClient, tmp_path: Path) -> None:
    path = tmp_path / "data" / INITIAL_PASSWORD_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    password = path.read_text().strip()
    users: UserStore = app_client.app.state.users  # type: ignore[attr-defined]
    assert users.login("admin", password).user.role == "admin"


def _login(client: TestClient, username: str, role: str) -> str:
    users: UserStore = client.app.state.users  # type: ignore[attr-defined]
    users.add_user(username, TEST_PASSWORD, role)  # type: ignore[arg-type]
    session = users.login(username, TEST_PASSWORD)
    client.cookies.set(SESSION_COOKIE, session.token)
    return session.csrf_token


def test_session_cookie_needs_the_csrf_token_to_change_anything(app_client: TestClient) -> None:
    csrf = _login(app_client, "team.lead", "ops")
    assert app_client.get("/api/agents").status_code == 200
    url = "/api/agents/s.simon/status"
    refused = app_client.put(url, json={"status": "busy"})
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
    assert app_client.put(url, json={"status": "busy"}, headers={"X-CSRF-Token": "forged"}).status_code == 403
    assert app_client.put(url, json={"status": "busy"}, headers={"X-CSRF-Token": csrf}).status_code == 200


ROLES = ("trainee", "ops", "admin", "acd")
EXPECTED: dict[tuple[str, str], set[str]] = {
    ("GET", "/api/calls"): {"ops", "admin"},
    ("GET", "/api/calls/{call_id}"): {"ops", "admin"},
    ("GET", "/api/queues"): {"ops", "admin", "acd"},
    ("GET", "/api/agents"): {"ops", "admin", "acd"},
    ("PUT", "/api/agents/{agent_id}/status"): {"ops", "admin", "acd"},
    ("GET", "/api/mailbox"): {"trainee", "ops", "admin"},
    ("GET", "/api/mailbox/export.csv"): {"ops", "admin"},
    ("GET", "/api/mailbox/{item_id}"): {"trainee", "ops", "admin"},
    ("GET", "/api/mailbox/{item_id}/audio"): {"trainee", "ops", "admin"},
    ("PATCH", "/api/mailbox/{item_id}"): {"trainee", "ops", "admin"},
    ("GET", "/api/nlu/servers"): {"ops", "admin"},
}
"""Who may use each route. A route missing from this table fails the test: decide who may use it first."""


def _sample_path(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x1", path)


def _token(client: TestClient, role: str) -> str:
    users: UserStore = client.app.state.users  # type: ignore[attr-defined]
    name = f"probe.{role}"
    if name not in {u.username for u in users.list_users()}:
        users.add_user(name, TEST_PASSWORD, role)  # type: ignore[arg-type]
    return users.new_api_token(name, "probe")


def test_every_route_refuses_anonymous_and_wrong_roles(app_client: TestClient) -> None:
    """Enumerates the app's routes (its OpenAPI description), so that a new route cannot be forgotten: each one
    is public (listed above), a provider webhook (signed), or in EXPECTED, and is checked with real requests."""
    tokens = {role: _token(app_client, role) for role in ROLES}
    paths = app_client.get("/openapi.json").json()["paths"]
    seen = set()
    for path, operations in paths.items():
        if path in PUBLIC or SIGNED.match(path):
            continue
        for method in operations:
            key = (method.upper(), path)
            assert key in EXPECTED, f"{key} is not in EXPECTED: say who may use it"
            seen.add(key)
            url = _sample_path(path)
            anonymous = app_client.request(key[0], url, headers={"Authorization": ""})
            assert anonymous.status_code == 401, f"{key} answered {anonymous.status_code} to an anonymous request"
            for role in ROLES:
                response = app_client.request(key[0], url, headers={"Authorization": f"Bearer {tokens[role]}"})
                if role in EXPECTED[key]:
                    assert response.status_code not in (401, 403), f"{key} refused a {role}"
                else:
                    assert response.status_code == 403, f"{key} let a {role} in ({response.status_code})"
    assert seen == set(EXPECTED), f"routes listed but not served: {set(EXPECTED) - seen}"
