"""Calls and turns on real SQLite and PostgreSQL, migrations, and turns kept while the database is down."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory

from callbot.call.session import CallLog
from callbot.call.turn_log import TurnLog
from callbot.errors import StorageError
from callbot.storage.call_store import CallOutcome, CallStore, TurnRecord
from callbot.storage.database import make_engine, migrate
from routing.routing_config import TransferTarget


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    url = f"sqlite:///{tmp_path / 'calls.db'}" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    engine = make_engine(url)
    migrate(engine)
    migrate(engine)  # idempotent
    yield CallStore(engine)
    engine.dispose()


async def test_a_call_with_its_turns_and_outcome(store):
    await store.create_call(
        "c1",
        provider="twilio",
        provider_call_id="CA1",
        from_number="+33611111111",
        to_number="+33900000000",
        bot="fr",
        language="fr",
    )
    await store.mark_started("c1", ["asr"])
    await store.add_turns("c1", [TurnRecord("bot", "Bonjour", action="greeting", latency_ms=12.5)])
    await store.add_turns(
        "c1",
        [
            TurnRecord(
                "caller",
                "j'ai perdu ma carte",
                intent="lost_stolen_card",
                confidence=0.91,
                entities={"card_type": "cb"},
                decision={"ranking": [["lost_stolen_card", 0.91]]},
            ),
            TurnRecord("bot", "Faites opposition", action="answer", decision={"rule": "intent:lost_stolen_card"}),
        ],
    )
    await store.finish_call(
        "c1",
        CallOutcome("transfer", "menu:0", "advisors", TransferTarget(number="+33100000001", caller_id="+33100000000")),
        8.5,
    )
    call = await store.get_call("c1")
    assert call is not None
    assert (call.status, call.outcome, call.transfer_target, call.first_audio_ms) == (
        "completed",
        "transfer",
        "number:+33100000001",
        8.5,
    )
    # the whole target is kept, caller id included, for whoever carries the transfer out later
    assert call.transfer == {"type": "number", "value": "+33100000001", "caller_id": "+33100000000"}
    assert call.degraded == ["asr"]
    assert [(t.seq, t.speaker, t.intent) for t in call.turns] == [
        (1, "bot", None),
        (2, "caller", "lost_stolen_card"),
        (3, "bot", None),
    ]
    assert call.turns[1].entities == {"card_type": "cb"} and call.turns[1].confidence == pytest.approx(0.91)
    assert [c.id for c in await store.list_calls()] == ["c1"]
    assert await store.call_exists("c1") and not await store.call_exists("c2")


async def test_unknown_call_is_a_storage_error(store):
    with pytest.raises(StorageError, match="does not exist"):
        await store.finish_call("nope", CallOutcome("hangup"), None)


def test_migration_creates_the_schema(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    migrate(engine)
    tables = set(sa.inspect(engine).get_table_names())
    assert {"calls", "turns", "agent_status", "users", "sessions", "api_tokens", "alembic_version"} <= tables
    head = ScriptDirectory(str(Path(migrate.__code__.co_filename).with_name("migrations"))).get_current_head()
    assert head is not None and int(head) >= 3
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == head


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_upgrade_from_the_first_schema_keeps_the_calls(backend, tmp_path, request):
    url = f"sqlite:///{tmp_path / 'old.db'}" if backend == "sqlite" else request.getfixturevalue("postgres_url")
    engine = make_engine(url)
    migrate(engine, "0001")
    store = CallStore(engine)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO calls (id, provider, provider_call_id, from_number, to_number, bot, language, status,"
                " outcome, transfer_queue, created_at, degraded) VALUES ('old', 'twilio', 'CA9', '+33600000000', '',"
                " 'fr', 'fr', 'completed', 'transfer', 'advisors', :at, '[]')"
            ),
            {"at": datetime.now(UTC)},
        )
    migrate(engine)
    row = await store.get_call("old")
    assert row is not None and row.outcome == "transfer" and row.transfer_queue == "advisors"
    assert row.transfer_skill is None and row.transfer_result is None
    await store.record_transfer_result("old", "bridged", 42.0)
    assert (await store.get_call("old")).transfer_wait_s == 42.0  # type: ignore[union-attr]
    engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_upgrade_from_the_previous_schema_keeps_users_and_calls(backend, tmp_path, request):
    from callbot.access.users import UserStore
    from callbot.mailbox.items import ItemFilter
    from callbot.mailbox.store import MailboxStore

    url = f"sqlite:///{tmp_path / 'prev.db'}" if backend == "sqlite" else request.getfixturevalue("postgres_url")
    engine = make_engine(url)
    migrate(engine, "0003")
    users = UserStore(engine)
    users.add_user("camille", "a long enough password", "trainee")
    migrate(engine)
    assert users.login("camille", "a long enough password").user.role == "trainee"
    assert MailboxStore(engine).page(ItemFilter()).total == 0
    engine.dispose()


async def test_agent_statuses_are_stored(store):
    assert await store.agent_statuses() == {}
    await store.set_agent_status("c.martin", "busy", by="api")
    await store.set_agent_status("c.martin", "wrap_up", by="api")
    await store.set_agent_status("s.simon", "offline", by="api")
    assert await store.agent_statuses() == {"c.martin": "wrap_up", "s.simon": "offline"}


async def test_turns_are_kept_while_the_database_is_down_and_written_when_it_is_back(tmp_path, caplog):
    good = CallStore(make_engine(f"sqlite:///{tmp_path / 'ok.db'}"))
    migrate(good.engine)
    await good.create_call(
        "c1", provider="twilio", provider_call_id="CA1", from_number="", to_number="", bot="fr", language="fr"
    )
    down = CallStore(make_engine("postgresql://postgres@127.0.0.1:1/none"))
    turns = TurnLog(down, "c1", CallLog(logging.getLogger("test"), {"call_id": "c1"}))
    with caplog.at_level(logging.WARNING):
        turns.add(TurnRecord("bot", "Bonjour"))
        turns.add(TurnRecord("dtmf", "0"))
        assert not await turns.close(attempts=1)
    assert any("[call c1]" in r.getMessage() and "kept in memory" in r.getMessage() for r in caplog.records)
    turns._store = good  # the database is back
    assert await turns.close()
    call = await good.get_call("c1")
    assert call is not None and [t.text for t in call.turns] == ["Bonjour", "0"]
