"""`callbot nlu train` while `callbot serve` runs: the running sidecar picks up the new model by itself."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import httpx

from nlu.training import model_path_for
from tests.conftest import RASA_VENV, ROOT, free_port


def test_retraining_hot_reloads_the_running_sidecar(serve, tmp_path):
    bot = tmp_path / "bot"
    shutil.copytree(ROOT / "bots" / "fr", bot, ignore=shutil.ignore_patterns(".rasa"))
    models = tmp_path / "models"
    env = {**os.environ, "CALLBOT_MODELS_DIR": str(models), "CALLBOT_RASA_VENV": str(RASA_VENV)}

    def train() -> None:
        completed = subprocess.run(
            [sys.executable, "-m", "callbot.cli", "nlu", "train", "--bot", str(bot)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert completed.returncode == 0, completed.stderr[-2000:]

    train()
    first = model_path_for(bot, models)
    server = serve(
        CALLBOT_BOT_DIR=str(bot),
        CALLBOT_MODELS_DIR=str(models),
        CALLBOT_RASA_URL="",
        CALLBOT_RASA_PORT=str(free_port()),
    )
    assert _wait_for_model(server.url, first.name), server.logs()[-3000:]

    with (bot / "nlu.yml").open("a", encoding="utf-8") as handle:
        handle.write("\n- intent: greet\n  examples: |\n    - coucou c'est encore moi\n")
    train()
    second = model_path_for(bot, models)
    assert second != first
    assert _wait_for_model(server.url, second.name), server.logs()[-3000:]
    assert f"NLU model {second.name} loaded" in server.logs()


def _wait_for_model(url: str, name: str, timeout: float = 240) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        nlu = httpx.get(f"{url}/healthz", timeout=5).json()["components"]["nlu"]
        if nlu["state"] == "up" and name in nlu["detail"]:
            return True
        time.sleep(1)
    return False
