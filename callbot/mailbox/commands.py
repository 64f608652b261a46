"""``callbot mailbox ...``: list, show and export messages, recover and transcribe them, apply retention,
and answer a caller's access or erasure request (GDPR)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from callbot.errors import CallbotError
from callbot.mailbox.items import STATUSES, ItemFilter
from callbot.mailbox.service import recover_messages, resolve_audio, worker_settings
from callbot.mailbox.store import Classified, ItemNotFound, MailboxStore
from callbot.settings import Settings
from callbot.storage.call_store import CallStore
from callbot.storage.database import make_engine, migrate
from callbot.storage.tables import MailboxItemRow


def add_commands(commands: Any) -> None:
    mailbox = commands.add_parser("mailbox", help="the overflow mailbox").add_subparsers(title="mailbox")
    listing = mailbox.add_parser("list", help="list messages (newest first)")
    _filters(listing)
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--json", action="store_true", help="one JSON object: total, counts, items")
    listing.set_defaults(run=_list)
    show = mailbox.add_parser("show", help="one message: transcript, words, audit trail")
    show.add_argument("item_id")
    show.set_defaults(run=_show)
    export = mailbox.add_parser("export", help="messages as CSV")
    _filters(export)
    export.add_argument("--out", type=Path, help="file to write (default: standard output)")
    export.add_argument(
        "--delimiter", choices=[",", ";"], default=",", help="';' for spreadsheets set to French (default ',')"
    )
    export.set_defaults(run=_export)
    recover = mailbox.add_parser("recover", help="file messages an interruption left unfinished (also run at startup)")
    recover.set_defaults(run=_recover)
    transcribe = mailbox.add_parser("transcribe", help="transcribe messages waiting for a speech model")
    transcribe.add_argument("--pending", action="store_true", required=True, help="every message pending transcription")
    transcribe.set_defaults(run=_transcribe)
    purge = mailbox.add_parser("purge", help="delete audio and transcripts past their retention")
    purge.add_argument("--dry-run", action="store_true")
    purge.set_defaults(run=_purge)
    caller = mailbox.add_parser("caller", help="a caller's data (GDPR)").add_subparsers(title="caller")
    export_caller = caller.add_parser("export", help="every call and message of a phone number, as a zip")
    export_caller.add_argument("number", help="E.164, e.g. +33612345678")
    export_caller.add_argument("--out", type=Path, required=True)
    export_caller.set_defaults(run=_caller_export)
    erase = caller.add_parser("erase", help="delete every call, message and recording of a phone number")
    erase.add_argument("number")
    erase.add_argument("--yes", action="store_true", help="confirm: this cannot be undone")
    erase.set_defaults(run=_caller_erase)


def _filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--status", choices=STATUSES)
    parser.add_argument("--reason")
    parser.add_argument("--assignee")
    parser.add_argument("--search", help="words to find in transcripts")
    parser.add_argument("--since", type=datetime.fromisoformat, help="ISO date")
    parser.add_argument("--until", type=datetime.fromisoformat, help="ISO date")


def _where(args: argparse.Namespace) -> ItemFilter:
    def aware(moment: datetime | None) -> datetime | None:
        return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment

    return ItemFilter(
        status=args.status,
        reason=args.reason,
        assignee=args.assignee,
        since=aware(args.since),
        until=aware(args.until),
        text=args.search,
    )


@dataclass
class _Stores:
    settings: Settings
    mailbox: MailboxStore
    calls: CallStore


def _stores() -> _Stores:
    settings = Settings()
    engine = make_engine(settings.effective_database_url)
    migrate(engine)
    return _Stores(settings, MailboxStore(engine), CallStore(engine))


def _list(args: argparse.Namespace) -> int:
    page = _stores().mailbox.page(_where(args), "newest", 1, args.limit)
    if args.json:
        items = [_item_json(row, with_events=False) for row in page.items]
        print(json.dumps({"total": page.total, "counts": page.counts, "items": items}, ensure_ascii=False))
        return 0
    print(f"{page.total} message(s): " + ", ".join(f"{k} {v}" for k, v in page.counts.items()))
    for row in page.items:
        reason = row.corrected_reason or row.detected_reason or "-"
        print(
            f"{row.id}  {row.created_at:%Y-%m-%d %H:%M}  {row.caller_number or '-':<14} {row.overflow_reason:<15}"
            f" {reason:<24} {row.duration_s:5.0f} s  {row.status:<11} {row.transcription}"
        )
    return 0


def _show(args: argparse.Namespace) -> int:
    try:
        row = _stores().mailbox.get(args.item_id)
    except ItemNotFound as exc:
        raise CallbotError(f"no message {args.item_id!r}; `callbot mailbox list` shows them") from exc
    print(json.dumps(_item_json(row, with_events=True), ensure_ascii=False, indent=2))
    return 0


def _export(args: argparse.Namespace) -> int:
    from callbot.mailbox_api import items_csv

    text = items_csv(_stores().mailbox.all_matching(_where(args)), args.delimiter)
    if args.out:
        args.out.write_text(text, encoding="utf-8-sig")  # the BOM tells spreadsheets the file is UTF-8
    else:
        sys.stdout.write(text)
    return 0


def _recover(args: argparse.Namespace) -> int:
    stores = _stores()
    # a running service may be recording right now: leave alone what was written to in the last 30 s
    recovered = recover_messages(stores.mailbox, stores.settings.recordings_dir, min_age_s=30)
    print(f"{len(recovered)} message(s) recovered" + (": " + ", ".join(recovered) if recovered else ""))
    return 0


def _transcribe(args: argparse.Namespace) -> int:
    from callbot.mailbox.classify import classify_message
    from callbot.mailbox.worker import MailboxWorker
    from callbot.speech.transcription import load_transcriber
    from nlu.client import RasaClient
    from routing.bot_folder import load_bot_folder

    stores = _stores()
    settings = stores.settings
    folder = load_bot_folder(settings.bot_dir)
    engine = load_transcriber(settings, folder.bot.language, settings.mailbox_asr)

    async def run() -> int:
        nlu = RasaClient(settings.rasa_url, settings.rasa_timeout_s, token=None) if settings.rasa_url else None

        async def classify(text: str, language: str) -> Classified:
            if nlu is None:
                from callbot.errors import NluUnavailableError

                # the service's worker classifies these once its Rasa is up
                raise NluUnavailableError("no CALLBOT_RASA_URL for the command line")
            return await classify_message(nlu, text, language, folder.timezone)

        async def blocking(work: Any) -> Any:
            return await asyncio.to_thread(work)

        worker = MailboxWorker(
            stores.mailbox, worker_settings(settings, folder.timezone), engine, classify, blocking, None
        )
        done = 0
        while (job := await asyncio.to_thread(stores.mailbox.claim_transcription)) is not None:
            state = await worker.transcribe(job)
            done += 1
            print(f"{job.item_id}\t{state}")
        if nlu is not None:
            await nlu.aclose()
        return done

    count = asyncio.run(run())
    print(f"{count} message(s) processed")
    return 0


def _purge(args: argparse.Namespace) -> int:
    stores = _stores()
    settings = stores.settings
    now = datetime.now(UTC)
    audio_before = now - timedelta(days=settings.audio_retention_days)
    text_before = now - timedelta(days=settings.transcript_retention_days)
    old_audio = stores.mailbox.audio_older_than(audio_before)
    if args.dry_run:
        print(f"would delete {len(old_audio)} recording(s) older than {audio_before:%Y-%m-%d}")
        return 0
    for item_id, relative in old_audio:
        path = resolve_audio(settings.recordings_dir, relative)
        if path is not None:
            path.unlink(missing_ok=True)
        stores.mailbox.forget_audio(item_id)
    transcripts = stores.mailbox.purge_transcripts(text_before)
    turns = asyncio.run(stores.calls.purge_turn_texts(text_before))
    print(
        f"deleted {len(old_audio)} recording(s) older than {audio_before:%Y-%m-%d}, "
        f"{transcripts} message transcript(s) and {turns} call turn text(s) older than {text_before:%Y-%m-%d}"
    )
    return 0


def _caller_export(args: argparse.Namespace) -> int:
    stores = _stores()
    items = stores.mailbox.items_of_caller(args.number)
    calls = asyncio.run(stores.calls.calls_of_caller(args.number))
    document = {
        "caller": args.number,
        "exported_at": datetime.now(UTC).isoformat(),
        "calls": [_call_json(call) for call in calls],
        "messages": [_item_json(item, with_events=True) for item in items],
    }
    with zipfile.ZipFile(args.out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("data.json", json.dumps(document, ensure_ascii=False, indent=2))
        for item in items:
            path = resolve_audio(stores.settings.recordings_dir, item.audio_path) if item.audio_path else None
            if path is not None and path.is_file():
                archive.write(path, f"recordings/{item.id}.wav")
    print(f"{args.out}: {len(calls)} call(s), {len(items)} message(s)")
    return 0


def _caller_erase(args: argparse.Namespace) -> int:
    if not args.yes:
        raise CallbotError("erasing a caller's data cannot be undone: add --yes")
    stores = _stores()
    items = stores.mailbox.items_of_caller(args.number)
    for item in items:
        path = resolve_audio(stores.settings.recordings_dir, item.audio_path) if item.audio_path else None
        if path is not None:
            path.unlink(missing_ok=True)
            path.with_suffix(".json").unlink(missing_ok=True)
    stores.mailbox.delete_items([item.id for item in items])
    calls = asyncio.run(stores.calls.erase_caller(args.number))
    print(f"erased {calls} call(s) and {len(items)} message(s) of {args.number}")
    return 0


def _item_json(row: MailboxItemRow, *, with_events: bool) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": row.id,
        "call_id": row.call_id,
        "received_at": row.created_at.isoformat(),
        "caller": row.caller_number,
        "called": row.called_number,
        "overflow_reason": row.overflow_reason,
        "duration_s": row.duration_s,
        "status": row.status,
        "assignee": row.assignee,
        "transcription": row.transcription,
        "transcription_error": row.transcription_error,
        "transcript": row.transcript,
        "words": row.words,
        "detected_reason": row.detected_reason,
        "reason_confidence": row.reason_confidence,
        "corrected_reason": row.corrected_reason,
        "entities": row.entities,
        "masked": row.masked,
    }
    if with_events:
        data["events"] = [
            {"at": e.at.isoformat(), "actor": e.actor, "action": e.action, "details": e.details} for e in row.events
        ]
    return data


def _call_json(call: Any) -> dict[str, Any]:
    return {
        "id": call.id,
        "at": call.created_at.isoformat(),
        "outcome": call.outcome,
        "transfer_queue": call.transfer_queue,
        "turns": [
            {"speaker": t.speaker, "text": t.text, "intent": t.intent, "at": t.created_at.isoformat()}
            for t in call.turns
        ],
    }
