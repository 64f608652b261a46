"""The whole OpenAPI document, fuzzed with schemathesis: for each identity (anonymous, an ops and an admin API
token, a trainee API token) every operation the served app describes gets generated inputs, and every answer
must be free of server errors and match the document (status code, content type, response schema).

Each identity gets its own app, on a fresh SQLite database, data folder and copy of the bot folder, with the
lifespan running (NLU, mailbox worker, agent statuses) as when served. A call and a mailbox message with a real
recording are stored first, and their ids are given to the fuzzer as examples, so that the operations that read
them answer 200 too, not only 404. Nothing is excluded: every operation of the document is a test, per identity
(WebSocket media routes and console pages are not in the document)."""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from callbot.app import create_app
from callbot.mailbox.recording import MessageMeta, wav_header
from callbot.mailbox.store import Classified, Transcribed
from callbot.resources import Resources
from callbot.settings import Settings
from callbot.storage.call_store import CallOutcome, TurnRecord
from tests.conftest import TEST_PASSWORD, open_bot

IDENTITIES = ("anonymous", "ops", "admin", "trainee")
BASE_URL = "http://testserver"
CALL_ID = "c0" * 16
ITEM_ID = "a1" * 16
AGENT_ID = "c.martin"
SEEDED = {"call_id": CALL_ID, "item_id": ITEM_ID, "agent_id": AGENT_ID}
"""Path parameters whose seeded value is added to the document as an example (the schema stays as it is)."""

FUZZ_CONFIG = schemathesis.Config.from_dict(
    {
        # a fixed seed and derandomized Hypothesis: CI runs the same inputs every time; "all" is valid inputs
        # (which must be accepted as documented) and invalid ones (which must be refused as documented)
        "seed": 20240611,
        "generation": {"mode": "all", "max-examples": 25, "deterministic": True, "database": "none"},
    }
)
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@dataclass
class Served:
    client: TestClient
    headers: dict[str, str]
    """The identity's headers (an API token, or none for anonymous)."""


def app_settings(folder: Path) -> Settings:
    """Settings of an app that owns ``folder``: its database, data folder and copy of the example bot."""
    bot = folder / "bot"
    shutil.copytree(open_bot(), bot)
    return Settings(
        data_dir=folder / "data",
        models_dir=folder / "models",
        bot_dir=bot,
        # no speech engines: loading and warming a voice would take most of the time budget; calls take the
        # failover path, and the webhooks' contract must hold for it as well
        rasa_url="http://127.0.0.1:9",
        # the webhook rate limit counts per client address, and the fuzzer is one address sending a few hundred
        # webhooks in seconds: with the limit on, most generated calls would only meet its 429
        webhook_rate_per_s=0,
    )


def app_document() -> dict[str, Any]:
    """The app's own OpenAPI document, built at collection from a throwaway app (pytest needs the operations to
    name the tests)."""
    with tempfile.TemporaryDirectory(prefix="callbot-openapi-") as folder:
        app = create_app(app_settings(Path(folder)))
        document = app.openapi()
        asyncio.run(app.state.resources.close())
    return document


def fuzzed_document(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` with the seeded ids as path parameter examples; the schemas of what the app accepts and
    answers stay as they are."""
    fuzzed: dict[str, Any] = json.loads(json.dumps(document))
    for item in fuzzed["paths"].values():
        for operation in item.values():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path" and parameter["name"] in SEEDED:
                    parameter["examples"] = {"seeded": {"value": SEEDED[parameter["name"]]}}
    return fuzzed


# Built at import rather than from a fixture (schemathesis.pytest.from_fixture): schemathesis 4.32's lazy schema
# renames pytest nodes through ``Node._nodeid``, which pytest 9 no longer has, and fails every test.
APP_DOCUMENT = app_document()
schema = schemathesis.openapi.from_dict(fuzzed_document(APP_DOCUMENT), config=FUZZ_CONFIG)


@pytest.fixture(scope="module", params=IDENTITIES)
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The app as served (lifespan running), on its own database, data folder and bot copy, with a stored
    call and message, seen by one identity. One per identity: starting an app per operation would cost more
    than fuzzing it."""
    settings = app_settings(tmp_path_factory.mktemp(f"openapi-{request.param}"))
    # an exception in a route is raised here, so that the test's failure shows the server's traceback
    with TestClient(
        create_app(settings), base_url=BASE_URL, follow_redirects=False, raise_server_exceptions=True
    ) as client:
        resources: Resources = client.app.state.resources  # type: ignore[attr-defined]
        client.portal.call(seed_call, resources)  # type: ignore[union-attr]
        seed_message(resources)
        assert client.get("/openapi.json").json() == APP_DOCUMENT, "the app serves another document"
        yield Served(client, token_headers(client, request.param))


def token_headers(client: TestClient, identity: str) -> dict[str, str]:
    if identity == "anonymous":
        return {}
    users = client.app.state.users  # type: ignore[attr-defined]
    username = f"{identity}.fuzzer"
    users.add_user(username, TEST_PASSWORD, identity)
    return {"Authorization": f"Bearer {users.new_api_token(username, 'openapi fuzz')}"}


async def seed_call(resources: Resources) -> None:
    store = resources.store
    await store.create_call(
        CALL_ID,
        provider="twilio",
        provider_call_id="CA" + "d" * 32,
        from_number="+33612345678",
        to_number="+33900000000",
        bot=resources.bot.name,
        language=resources.bot.language,
    )
    await store.add_turns(
        CALL_ID,
        [
            TurnRecord("bot", resources.bot.prompts.greeting),
            TurnRecord("caller", "quels sont vos horaires", "opening_hours", 0.93, {}, "answer", {"type": "answer"}),
        ],
    )
    await store.finish_call(CALL_ID, CallOutcome("answered", "opening_hours"), 420.0)


def seed_message(resources: Resources) -> None:
    """A transcribed message whose recording (one second of silence) is on disk."""
    relative = f"2024/06/{ITEM_ID}.wav"
    audio = b"\x00\x00" * 8000
    path = resources.settings.recordings_dir / relative
    path.parent.mkdir(parents=True)
    path.write_bytes(wav_header(len(audio)) + audio)
    meta = MessageMeta(ITEM_ID, CALL_ID, "+33612345678", "+33900000000", "closed", "fr", datetime.now(UTC).isoformat())
    mailbox = resources.mailbox
    mailbox.create(meta, relative)
    mailbox.finish_recording(ITEM_ID, 1.0)
    words = [["horaires", 0.1, 0.6, 0.9]]
    mailbox.save_transcription(
        ITEM_ID, Transcribed("vos horaires", words, [], None, None), Classified("opening_hours", 0.9, {})
    )


@schema.parametrize()
def test_every_operation_answers_as_documented(case: schemathesis.Case[Any], served: Served) -> None:
    """No 5xx, and the status code, content type and body the document declares for the operation."""
    kwargs = case.as_transport_kwargs(base_url=BASE_URL, headers=served.headers)
    response = served.client.request(**_httpx_kwargs(kwargs))
    case.validate_response(response, checks=CHECKS, headers=served.headers, transport_kwargs=kwargs)


def _httpx_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Schemathesis serializes for ``requests``; the test client speaks httpx (raw bodies go in ``content``)."""
    out = dict(kwargs)
    if isinstance(out.get("data"), bytes | str):
        out["content"] = out.pop("data")
    if not out.get("cookies"):
        out.pop("cookies", None)
    return out
