"""A transcribed message is classified by the real Rasa server: the detected reason and the entities heard,
then its audit trail says so; while Rasa is down it waits, unclassified, and is classified once Rasa is back."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from callbot.mailbox.classify import classify_message
from callbot.mailbox.recording import MessageMeta
from callbot.mailbox.store import Classified, MailboxStore, Transcribed
from callbot.mailbox.worker import MailboxWorker, WorkerSettings
from callbot.storage.database import make_engine, migrate
from nlu.client import RasaClient


def test_messages_are_classified_by_rasa_once_it_answers(tmp_path: Path, rasa_server: tuple[str, str]) -> None:
    url, token = rasa_server
    engine = make_engine(f"sqlite:///{tmp_path / 'c.db'}")
    migrate(engine)
    store = MailboxStore(engine)
    meta = MessageMeta("d" * 32, "c" * 32, "+33612345678", "", "no_agent", "fr", datetime.now(UTC).isoformat())
    store.create(meta, "x.wav")
    store.finish_recording(meta.item_id, 4.0)
    text = (
        "bonjour on m'a volé ma carte bleue hier soir il faut la bloquer mon numéro c'est le "
        "zéro six douze trente quatre cinquante six soixante dix huit"
    )
    store.save_transcription(meta.item_id, Transcribed(text, [], [], None, None), None)  # Rasa was down
    assert store.unclassified() == [(meta.item_id, text, "fr")]

    async def run() -> None:
        client = RasaClient(url, timeout_s=10, token=token)

        async def classify(message: str, language: str) -> Classified:
            return await classify_message(client, message, language, "Europe/Paris")

        worker = MailboxWorker(store, WorkerSettings(tmp_path, "Europe/Paris"), None, classify, asyncio.to_thread)  # type: ignore[arg-type]
        assert await worker.step() is True
        await client.aclose()

    asyncio.run(run())
    row = store.get(meta.item_id)
    assert row.detected_reason == "lost_stolen_card" and (row.reason_confidence or 0) > 0.35
    assert row.entities.get("card_type") == "cb"
    assert row.entities.get("phone_number", "").startswith("+33612")
    assert [e.action for e in row.events][-1] == "classified"
    assert store.unclassified() == []
    engine.dispose()
