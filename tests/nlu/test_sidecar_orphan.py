"""``callbot serve`` killed with SIGKILL leaves its Rasa sidecar running (it has its own session, so that a
terminal's Ctrl-C reaches the service first): the next start stops that orphan and serves NLU again, with no
second restart."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import httpx

from nlu.sidecar import RasaSidecar
from tests.conftest import RASA_VENV, ROOT, free_port


def _nlu_up(url: str, timeout: float = 240) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if httpx.get(f"{url}/healthz", timeout=5).json()["components"]["nlu"]["state"] == "up":
            return True
        time.sleep(1)
    return False


def test_a_killed_services_sidecar_is_stopped_and_nlu_serves_again_at_the_next_start(serve, fr_nlu_model, tmp_path):
    data = tmp_path / "data"
    env = {
        "CALLBOT_DATA_DIR": str(data),
        "CALLBOT_BOT_DIR": str(ROOT / "bots" / "fr"),
        "CALLBOT_MODELS_DIR": str(fr_nlu_model.parents[1]),  # models/nlu/<bot>-<data fingerprint>.tar.gz
        "CALLBOT_RASA_URL": "",
        "CALLBOT_RASA_VENV": str(RASA_VENV),
        "CALLBOT_RASA_PORT": str(free_port()),
    }
    first = serve(**env)
    assert _nlu_up(first.url), first.logs()[-3000:]
    orphan = int((data / "logs" / "rasa-sidecar.pid").read_text())
    first.process.send_signal(signal.SIGKILL)
    first.process.wait(timeout=10)
    assert Path(f"/proc/{orphan}").exists(), "the sidecar outlived the killed service (the case to handle)"

    second = serve(**env)
    assert _nlu_up(second.url), second.logs()[-3000:]
    assert "stopping an orphaned Rasa sidecar" in second.logs()
    assert not Path(f"/proc/{orphan}").exists() or _zombie(orphan)
    assert int((data / "logs" / "rasa-sidecar.pid").read_text()) != orphan


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_a_token_that_starts_with_a_dash_still_starts_the_sidecar(fr_nlu_model, tmp_path):
    """Given apart (``--auth-token -x``), a token starting with ``-`` is read as an option and Rasa does not
    start; the sidecar passes it as one argument."""
    sidecar = RasaSidecar(RASA_VENV, fr_nlu_model, free_port(), tmp_path / "rasa.log", 240)
    sidecar.token = "-" + sidecar.token[1:]

    async def run() -> tuple[int, int]:
        await sidecar.start()
        try:
            async with httpx.AsyncClient(timeout=10) as http:
                right = await http.get(f"{sidecar.url}/status", params={"token": sidecar.token})
                wrong = await http.get(f"{sidecar.url}/status", params={"token": sidecar.token[1:]})
            return right.status_code, wrong.status_code
        finally:
            await sidecar.stop()

    assert asyncio.run(run()) == (200, 401)
