"""An external Rasa 3.6 server (the Rasa virtualenv, started on its own with a model-server endpoint) follows
the model callbot publishes: it pulls it within its pull interval, then the next one."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from nlu.publishing import publish
from nlu.training import rasa_environment, rasa_executable
from tests.conftest import RASA_VENV, free_port, open_bot
from tests.test_mailbox_e2e import wait_for

pytestmark = pytest.mark.rasa

PULL_S = 2


def test_an_external_rasa_pulls_each_published_model(serve, tmp_path: Path, fr_nlu_model: Path) -> None:
    server = serve(CALLBOT_MODEL_SERVER_TOKEN="pull-secret")
    bot_dir = open_bot("fr")  # the served bot: its published pointer is models/nlu/fr.published
    models = tmp_path / "models" / "nlu"  # the serve fixture's models folder
    models.mkdir(parents=True, exist_ok=True)
    for name in ("fr-00000000000000a1.tar.gz", "fr-00000000000000a2.tar.gz"):
        shutil.copy(fr_nlu_model, models / name)
    publish(bot_dir, tmp_path / "models", models / "fr-00000000000000a1.tar.gz")

    work = tmp_path / "rasa"
    work.mkdir()
    (work / "endpoints.yml").write_text(
        f"models:\n  url: {server.url}/api/nlu/model/published\n  token: pull-secret\n"
        f"  wait_time_between_pulls: {PULL_S}\n",
        encoding="utf-8",
    )
    port, token = free_port(), "rasa-secret"
    log = tmp_path / "rasa.log"
    with log.open("wb") as out:
        rasa = subprocess.Popen(
            [
                *(str(rasa_executable(RASA_VENV)), "run", "--enable-api", "--endpoints", "endpoints.yml"),
                *("--interface", "127.0.0.1", "--port", str(port), f"--auth-token={token}"),
            ],
            cwd=work,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=rasa_environment(),
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"

    def serving() -> str:
        try:
            status = httpx.get(f"{url}/status", params={"token": token}, timeout=5)
        except httpx.HTTPError:
            return ""
        return str(status.json().get("model_file", "")) if status.status_code == 200 else ""

    try:
        assert wait_for(lambda: "fr-00000000000000a1" in serving(), timeout=240, every=1), log.read_text()[-2000:]
        parsed = httpx.post(f"{url}/model/parse", params={"token": token}, json={"text": "je veux un conseiller"})
        assert parsed.status_code == 200 and parsed.json()["intent"]["name"], parsed.text

        publish(bot_dir, tmp_path / "models", models / "fr-00000000000000a2.tar.gz")
        began = time.monotonic()
        wait_for(lambda: "fr-00000000000000a2" in serving(), timeout=60, every=0.5)
        # Rasa loads the file it pulled (a few seconds for this model) after at most one pull interval
        assert time.monotonic() - began < PULL_S + 30
        pulled = server.api.get("/api/nlu/servers").json()
        assert [(s["address"], s["serving"], s["current"]) for s in pulled] == [
            ("127.0.0.1", "fr-00000000000000a2", True)
        ]
        console, _ = server.console()
        page = console.get("/ops/training").text
        console.close()
        assert 'id="rasa-servers"' in page and "fr-00000000000000a2 ✓" in page
    finally:
        os.killpg(rasa.pid, signal.SIGTERM)
        rasa.wait(timeout=30)
