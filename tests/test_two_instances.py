"""Two ``callbot serve`` instances on one PostgreSQL database, started at the same instant: the schema is
migrated once, and a call streamed through one instance has its decision carried out by the other, whose
``<Connect action>`` callback arrives the moment the stream closes (as behind a round-robin balancer)."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from typing import Any

import httpx
import sqlalchemy as sa
import websockets

from tests.conftest import Server, bot_copy

FRAUD = ">sip:fraud@pbx.example.com</Sip></Dial>"


async def _stream_here_act_there(streamer: Server, actor: Server) -> str:
    """Be Twilio: the call's webhook and stream on ``streamer``, press 5 (the fraud team, a SIP transfer), echo
    the marks, and once ``streamer`` closes the stream post the action callback to ``actor``."""
    async with httpx.AsyncClient(timeout=30) as http:
        call_sid = "CA" + uuid.uuid4().hex
        twiml = (await http.post(f"{streamer.url}/twilio/voice", data={"CallSid": call_sid})).text
        call_id = twiml.split("/twilio/media/")[1].split('"')[0]
        start = {
            "event": "start",
            "streamSid": "MZ1",
            "start": {
                "streamSid": "MZ1",
                "callSid": call_sid,
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                "customParameters": {"callId": call_id},
            },
        }
        async with websockets.connect(streamer.url.replace("http", "ws") + f"/twilio/media/{call_id}") as ws:
            await ws.send(json.dumps(start))
            pressed = False
            try:
                async for message in ws:
                    event: dict[str, Any] = json.loads(message)
                    if event["event"] == "media" and not pressed:
                        await ws.send(json.dumps({"event": "dtmf", "streamSid": "MZ1", "dtmf": {"digit": "5"}}))
                        pressed = True
                    elif event["event"] == "mark":
                        await ws.send(json.dumps({"event": "mark", "streamSid": "MZ1", "mark": event["mark"]}))
            except websockets.ConnectionClosed:
                pass
        answer = await http.post(f"{actor.url}/twilio/action/{call_id}", data={"CallSid": call_sid})
        return answer.text


def _roomy_fraud_queue(routing: dict[str, Any]) -> None:
    """Six calls wait in the fraud queue together (both instances count them all)."""
    routing["queues"]["fraud"] |= {"max_length": 10, "max_wait_s": 3600}


def test_a_decision_taken_on_one_instance_is_carried_out_by_the_other(serve, postgres_url, tmp_path):
    servers: list[Server] = []
    failures: list[BaseException] = []
    bot = bot_copy(tmp_path / "bot" / "fr", _roomy_fraud_queue)

    def start() -> None:
        try:
            servers.append(serve(CALLBOT_DATABASE_URL=postgres_url, CALLBOT_BOT_DIR=str(bot)))
        except BaseException as exc:  # pytest.fail in a thread: reported by the test itself
            failures.append(exc)

    starters = [threading.Thread(target=start) for _ in range(2)]
    for starter in starters:
        starter.start()
    for starter in starters:
        starter.join()
    assert not failures, failures
    first, second = servers
    engine = sa.create_engine(postgres_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all() == ["0009"]
    engine.dispose()

    async def calls() -> list[str]:
        pairs = [(first, second), (second, first)] * 3
        return await asyncio.gather(*(_stream_here_act_there(a, b) for a, b in pairs))

    for answer in asyncio.run(calls()):
        assert FRAUD in answer, f"the other instance did not carry out the decision: {answer}"
    for server in servers:
        assert "stream ended without a decision" not in server.logs()
