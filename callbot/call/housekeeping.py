"""Calls that will never end on their own are closed: a webhook whose media stream never came (``expired``), a
call whose instance crashed mid-call (``interrupted``). Every instance reports the calls it carries, so any
instance can tell a call nobody carries any more, however many share the database; the message such a call
was leaving is filed by whichever instance can read its recording. Waiting calls no provider reported on
are forgotten."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from callbot.errors import StorageError
from callbot.mailbox.service import recover_messages
from callbot.resources import Resources

log = logging.getLogger(__name__)

MISSED_HEARTBEATS = 3
"""A call unreported for this many heartbeats is interrupted (one missed report is not a crash)."""


async def tidy_calls_once(resources: Resources) -> tuple[int, int]:
    """Report this instance's calls, then close the stale ones; how many expired and interrupted."""
    settings = resources.settings
    now = datetime.now(UTC)
    await resources.store.still_on(list(resources.active_calls))
    expired, interrupted = await resources.store.expire_stale(
        ringing_before=now - timedelta(seconds=settings.stale_ringing_s),
        unseen_before=now - timedelta(seconds=MISSED_HEARTBEATS * settings.call_heartbeat_s),
    )
    if expired:
        log.warning("%d call(s) closed as expired: their media stream never came", expired)
    if interrupted:
        log.warning("%d call(s) closed as interrupted: no instance carries them any more", interrupted)
    await resources.waiting.expire()
    recovered = await asyncio.to_thread(
        recover_messages, resources.mailbox, settings.recordings_dir, min_age_s=settings.call_heartbeat_s, quiet=True
    )
    if recovered:
        log.warning("%d message(s) of interrupted calls filed into the mailbox", len(recovered))
        if resources.mailbox_worker is not None:
            resources.mailbox_worker.wake()
    return expired, interrupted


async def close_previous_run(resources: Resources) -> None:
    """At startup: the calls this instance carried when it last stopped are over (interrupted). On SQLite,
    one instance only, that is every call still in progress."""
    single = resources.store.engine.dialect.name == "sqlite"
    try:
        closed = await resources.store.close_instance_calls(None if single else resources.settings.instance)
    except StorageError as exc:
        log.error("calls of the previous run not closed (database unavailable): %s", exc)
        return
    if closed:
        log.warning("%d call(s) cut off when this instance last stopped closed as interrupted", closed)


async def tidy_calls(resources: Resources) -> None:
    """Forever, once a heartbeat; a database outage is logged and waited out."""
    while True:
        try:
            await tidy_calls_once(resources)
        except StorageError as exc:
            log.error("calls could not be tidied (database unavailable): %s", exc)
        await asyncio.sleep(resources.settings.call_heartbeat_s)
