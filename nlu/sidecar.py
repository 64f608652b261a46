"""The Rasa server as a supervised child process bound to 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import time
from pathlib import Path

import httpx

from callbot.errors import NluError
from nlu.training import rasa_environment, rasa_executable

log = logging.getLogger(__name__)

_TOKEN_VARIABLE = "CALLBOT_RASA_SIDECAR_TOKEN"
# Runs rasa's own entry point with the auth token appended from the environment.
_LAUNCH_RASA = (
    "import os, sys\n"
    "from rasa.__main__ import main\n"
    f"sys.argv = ['rasa', *sys.argv[1:], '--auth-token=' + os.environ.pop('{_TOKEN_VARIABLE}')]\n"
    "sys.exit(main())\n"
)


class RasaSidecar:
    """Starts ``rasa run --enable-api`` with our model, waits for it to be ready, restarts it when it dies."""

    def __init__(
        self, rasa_venv: Path, model_path: Path, port: int, log_path: Path, start_timeout_s: float = 180.0
    ) -> None:
        self.rasa_venv = rasa_venv
        self.model_path = model_path
        self.port = port
        self.log_path = log_path
        self.pid_path = log_path.with_name("rasa-sidecar.pid")
        """The running sidecar's pid: a service killed without stopping it (SIGKILL) finds it at its next start."""
        self.start_timeout_s = start_timeout_s
        # Hex never starts with "-", which rasa's argument parser would take for an option.
        self.token = secrets.token_hex(24)
        self.state = "stopped"
        self.restarts = 0
        self._process: asyncio.subprocess.Process | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._prober: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        """Start and wait until Rasa answers with the model loaded."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        # The token travels in the environment, not in argv: argv is readable by every local user in `ps`.
        command = [
            str(rasa_executable(self.rasa_venv).parent / "python"),
            "-c",
            _LAUNCH_RASA,
            "run",
            "--enable-api",
            "--quiet",
            "--model",
            str(self.model_path.resolve()),
            "--interface",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        self.state = "starting"
        await asyncio.to_thread(self._stop_orphan)
        with self.log_path.open("ab") as log_file:
            self._process = await asyncio.create_subprocess_exec(
                *command,
                stdout=log_file,
                stderr=asyncio.subprocess.STDOUT,
                env={**rasa_environment(), _TOKEN_VARIABLE: self.token},
                stdin=asyncio.subprocess.DEVNULL,
                start_new_session=True,
            )
        self.pid_path.write_text(f"{self._process.pid}\n")
        await self._wait_ready()
        self.state = "up"
        log.info("Rasa sidecar ready on %s (pid %s)", self.url, self._process.pid)

    async def _wait_ready(self) -> None:
        assert self._process is not None
        deadline = asyncio.get_running_loop().time() + self.start_timeout_s
        async with httpx.AsyncClient(timeout=2.0) as http:
            while asyncio.get_running_loop().time() < deadline:
                if self._process.returncode is not None:
                    self.state = "down"
                    raise NluError(
                        f"Rasa exited with code {self._process.returncode} while starting; "
                        f"see {self.log_path}:\n{self._log_tail()}"
                    )
                with contextlib.suppress(httpx.HTTPError):
                    response = await http.get(f"{self.url}/status", params={"token": self.token})
                    if response.status_code == 200 and response.json().get("model_file"):
                        return
                await asyncio.sleep(0.5)
        await self._terminate()
        self.state = "down"
        raise NluError(f"Rasa did not become ready within {self.start_timeout_s:.0f} s; see {self.log_path}")

    def supervise(self, probe_every_s: float = 10.0, probe_failures: int = 3) -> None:
        """Watch the process in the background: restart it if it dies, or if it stops answering
        ``probe_failures`` health probes in a row while alive (hung)."""
        if self._supervisor is None:
            self._supervisor = asyncio.create_task(self._watch(), name="rasa-sidecar-supervisor")
            self._prober = asyncio.create_task(self._probe(probe_every_s, probe_failures), name="rasa-sidecar-probe")

    async def _probe(self, every_s: float, failures_allowed: int) -> None:
        failures = 0
        async with httpx.AsyncClient(timeout=5.0) as http:
            while not self._stopping:
                await asyncio.sleep(every_s)
                if self.state != "up" or self._process is None or self._process.returncode is not None:
                    failures = 0
                    continue
                try:
                    response = await http.get(f"{self.url}/status", params={"token": self.token})
                    response.raise_for_status()
                    failures = 0
                except httpx.HTTPError as exc:
                    failures += 1
                    log.warning(
                        "Rasa sidecar health probe failed (%d/%d): %s",
                        failures,
                        failures_allowed,
                        exc.__class__.__name__,
                    )
                    if failures >= failures_allowed:
                        log.error("Rasa sidecar is alive but not answering; killing it to restart it")
                        self._process.kill()  # the supervisor sees the exit and restarts it
                        failures = 0

    async def _watch(self) -> None:
        backoff = 1.0
        while not self._stopping:
            if self._process is not None:
                await self._process.wait()
            if self._stopping:
                return
            self.state = "restarting"
            log.warning(
                "Rasa sidecar exited (code %s); restarting in %.0f s",
                self._process.returncode if self._process else None,
                backoff,
            )
            await asyncio.sleep(backoff)
            try:
                await self.start()
                self.restarts += 1
                backoff = 1.0
            except NluError as exc:
                log.error("Rasa sidecar restart failed: %s", exc)
                backoff = min(backoff * 2, 60.0)

    async def stop(self) -> None:
        self._stopping = True
        for task in (self._supervisor, self._prober):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self._terminate()
        self.state = "stopped"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process and self._process.returncode is None else None

    async def _terminate(self) -> None:
        process = self._process
        if process is None or process.returncode is not None:
            return
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), timeout=10)
        except TimeoutError:
            process.kill()
            await process.wait()
        with contextlib.suppress(OSError):
            self.pid_path.unlink()

    def _stop_orphan(self) -> None:
        """A sidecar left running by a service that was killed holds the port: stop it (only if it is ours:
        a Rasa launched by this launcher on this port), so that this start does not fail."""
        try:
            pid = int(self.pid_path.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            return
        if _LAUNCH_RASA.encode() not in cmdline or str(self.port).encode() not in cmdline:
            return
        log.warning("stopping an orphaned Rasa sidecar (pid %d) left by a service that did not stop it", pid)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGTERM)  # its own session: the whole group, Rasa's children included
        deadline = time.monotonic() + 10
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            self.pid_path.unlink()

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""
