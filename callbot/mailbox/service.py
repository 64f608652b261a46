"""The mailbox as the service runs it: where recordings go, recovery of unfinished ones, the worker's wiring."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TypeVar

from callbot.errors import StorageError
from callbot.mailbox.notify import Smtp
from callbot.mailbox.recording import MessageMeta, read_meta, repair
from callbot.mailbox.store import MailboxStore
from callbot.mailbox.worker import WorkerSettings
from callbot.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")


def message_path(recordings: Path, item_id: str, started: datetime) -> tuple[str, Path]:
    """Where a message is recorded: (path relative to the recordings folder, as stored; absolute path).
    Built from our own ids only; nothing a caller or a request sends ends up in a path."""
    relative = f"{started:%Y/%m}/{item_id}.wav"
    return relative, recordings / relative


def resolve_audio(recordings: Path, relative: str) -> Path | None:
    """The absolute path of a stored recording, refusing anything that would leave the recordings folder."""
    root = recordings.resolve()
    path = (root / relative).resolve()
    return path if path.is_relative_to(root) and path.suffix == ".wav" else None


def recover_messages(
    store: MailboxStore, recordings: Path, *, min_age_s: float = 0.0, quiet: bool = False
) -> list[str]:
    """File every message a crash or a database outage left unfinished: the WAV's sizes are repaired and the
    item is created or completed. Messages of calls an instance still carries, or written to in the last
    ``min_age_s`` seconds, are left alone (they may still be being recorded). ``quiet``: a recording missing here
    (another instance's, without shared storage) is not reported. Returns the item ids recovered."""
    recovered: list[str] = []
    now = time.time()
    candidates: dict[str, Path] = {}
    try:
        for item_id, relative in store.recording_items():
            path = resolve_audio(recordings, relative)
            if path is not None:
                candidates[item_id] = path
    except StorageError as exc:
        log.warning("unfinished messages in the database not checked, database unavailable: %s", exc)
        return recovered
    if recordings.is_dir():
        for meta_file in recordings.glob("*/*/*.json"):
            candidates.setdefault(meta_file.stem, meta_file.with_suffix(".wav"))
    unfinished: dict[str, tuple[MessageMeta, Path]] = {}
    for item_id, wav in candidates.items():
        meta = read_meta(wav.with_suffix(".json"))
        if meta is None or not wav.is_file():
            if quiet:
                continue
            log.error("[item %s] unfinished message without its recording or metadata (%s)", item_id, wav)
            continue
        if now - wav.stat().st_mtime >= min_age_s:
            unfinished[item_id] = (meta, wav)
    try:
        carried = store.calls_in_progress(sorted({meta.call_id for meta, _ in unfinished.values()}))
    except StorageError as exc:
        log.warning("unfinished messages not recovered, database unavailable: %s", exc)
        return recovered
    for item_id, (meta, wav) in unfinished.items():
        if meta.call_id in carried:
            continue
        duration = repair(wav)
        relative = wav.resolve().relative_to(recordings.resolve()).as_posix()
        try:
            if store.recover(meta, relative, duration):
                recovered.append(item_id)
                log.warning(
                    "[call %s] message %s recovered after an interruption: %.1f s", meta.call_id, item_id, duration
                )
            wav.with_suffix(".json").unlink(missing_ok=True)
        except StorageError as exc:
            log.error("[item %s] message not recovered, database unavailable: %s", item_id, exc)
    return recovered


def smtp_settings(settings: Settings) -> Smtp | None:
    recipients = tuple(r.strip() for r in settings.notify_to.split(",") if r.strip())
    if not settings.smtp_host or not recipients:
        return None
    return Smtp(
        host=settings.smtp_host,
        port=settings.smtp_port,
        sender=settings.smtp_from,
        recipients=recipients,
        starttls=settings.smtp_starttls,
        tls=settings.smtp_tls,
        username=settings.smtp_user,
        password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
        ca_file=settings.smtp_ca_file,
        attach_audio=settings.notify_attach_audio,
    )


def worker_settings(settings: Settings, timezone: str) -> WorkerSettings:
    return WorkerSettings(
        recordings=settings.recordings_dir,
        timezone=timezone,
        keep_unmasked=settings.mailbox_keep_unmasked,
        retry_s=settings.mailbox_retry_s,
        console_url=settings.public_base_url,
        only_readable=not settings.effective_database_url.startswith("sqlite"),
    )


def executor_runner(pool: object) -> Callable[[Callable[[], T]], asyncio.Future[T]]:
    """Run blocking work in ``pool`` (a concurrent.futures executor) from async code."""

    def run(work: Callable[[], T]) -> asyncio.Future[T]:
        return asyncio.get_running_loop().run_in_executor(pool, work)  # type: ignore[arg-type]

    return run
