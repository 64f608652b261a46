"""What instances sharing a PostgreSQL database must not do twice, on the real database with one engine per
instance: take the last place of a queue, send a message's e-mail, transcribe a recording they cannot read."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest

from callbot.mailbox.store import MailboxStore
from callbot.storage.database import make_engine, migrate
from callbot.storage.waiting_store import WaitingStore
from tests.callbot.test_mailbox_parts import meta

pytestmark = pytest.mark.postgres


@pytest.fixture
def engines(postgres_url: str) -> Any:
    """Two instances' engines on one fresh database."""
    first, second = make_engine(postgres_url), make_engine(postgres_url)
    migrate(first)
    yield first, second
    first.dispose()
    second.dispose()


def test_two_instances_deciding_at_once_never_exceed_a_queues_length(engines: Any) -> None:
    stores = [WaitingStore(engine, "fr") for engine in engines]

    async def forty_calls() -> list[bool]:
        async def one(n: int) -> bool:
            return await stores[n % 2].admit(
                f"{n:032x}", "fraud", 0, fits=lambda waiting: len(waiting) < 5, expires_in=timedelta(minutes=5)
            )

        return await asyncio.gather(*(one(n) for n in range(40)))

    admitted = asyncio.run(forty_calls())
    assert sum(admitted) == 5
    waiting = asyncio.run(stores[1].waiting())
    assert len(waiting) == 5 and {w.queue for w in waiting} == {"fraud"}
    left = asyncio.run(stores[0].leave(waiting[0].call_id))
    assert left is not None and left[0] == "fraud" and left[1] >= 0
    assert asyncio.run(stores[1].admit("f" * 32, "fraud", 0, fits=lambda w: len(w) < 5, expires_in=timedelta(0)))
    assert asyncio.run(stores[0].expire()) == 1, "the row that expired at once is forgotten"
    assert len(asyncio.run(stores[0].waiting())) == 4
    assert asyncio.run(WaitingStore(engines[0], "en").waiting()) == [], "each bot has its own queues"


def test_each_message_is_e_mailed_by_one_instance_only(engines: Any) -> None:
    stores = [MailboxStore(engine, notify=True) for engine in engines]
    ids = [f"{n:x}" * 32 for n in range(1, 9)]
    for item_id in ids:
        stores[0].create(meta(item_id[:32]), f"2026/12/{item_id[:32]}.wav")
        stores[0].finish_recording(item_id[:32], 3.0)

    with ThreadPoolExecutor(4) as pool:
        claims = list(pool.map(lambda n: [i.id for i in stores[n % 2].claim_notifications(limit=8)], range(4)))
    claimed = [item_id for claim in claims for item_id in claim]
    assert sorted(claimed) == sorted(i[:32] for i in ids), claims
    assert stores[1].claim_notifications() == [], "leased: no one else takes them"
    stores[0].notification_result(claimed[0], "421 try later", timedelta(0))
    assert [i.id for i in stores[1].claim_notifications()] == [claimed[0]], "a failed send is retried once due"
    stores[1].notification_result(claimed[0], None, None)
    assert stores[0].get(claimed[0]).notify_state == "sent"
    assert stores[0].backlog()["notification"] == 7


def test_a_recording_is_transcribed_by_an_instance_that_can_read_it(engines: Any) -> None:
    here, elsewhere = (MailboxStore(engine, notify=False) for engine in engines)
    for item_id in ("1" * 32, "2" * 32):
        here.create(meta(item_id), f"2026/12/{item_id}.wav")
        here.finish_recording(item_id, 3.0)
    on_this_disk = {f"2026/12/{'2' * 32}.wav"}
    job = elsewhere.claim_transcription(lambda path: path in on_this_disk)
    assert job is not None and job.item_id == "2" * 32, "the readable one, though it is not the oldest"
    assert elsewhere.claim_transcription(lambda path: path in on_this_disk) is None
    assert here.claim_transcription(lambda path: True).item_id == "1" * 32  # type: ignore[union-attr]
