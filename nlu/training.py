"""Training the bot's Rasa NLU model in the Rasa virtualenv; skipped when data and config are unchanged."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from callbot.errors import ConfigError, TrainingError
from nlu.training_data import load_training_data, with_digits, write_rasa_yaml
from routing.config_file import read_yaml

TRAINING_FILES = ("config.yml", "nlu.yml")
PREPROCESSING = "digits-v1"
"""Changes when the way examples are prepared for training changes (so models are retrained)."""


@dataclass(frozen=True, slots=True)
class TrainResult:
    model_path: Path
    skipped: bool
    seconds: float


RASA_COMPONENTS = Path(__file__).resolve().parent / "rasa_components"
"""callbot's Rasa components (``callbot_rasa``), run by Rasa's own interpreter."""


def rasa_executable(rasa_venv: Path) -> Path:
    exe = rasa_venv / "bin" / "rasa"
    if not exe.is_file():
        raise TrainingError(
            f"Rasa is not installed in {rasa_venv}; run `make setup` (it creates the Rasa virtualenv "
            "with Python 3.10 and rasa==3.6.21)"
        )
    return exe.resolve()


def rasa_environment() -> dict[str, str]:
    """Rasa's process environment: no telemetry, quiet TensorFlow, callbot's own components importable."""
    env = dict(os.environ)
    path = [str(RASA_COMPONENTS), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    env.update(
        {
            "PYTHONPATH": os.pathsep.join(dict.fromkeys(path)),
            "RASA_TELEMETRY_ENABLED": "false",
            "TF_CPP_MIN_LOG_LEVEL": "3",
            "PYTHONWARNINGS": "ignore",
            "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
            "LOG_LEVEL_LIBRARIES": "ERROR",
        }
    )
    return env


def check_training_files(bot_dir: Path) -> None:
    """Fail early, naming the file and line, when a training file is missing or not valid YAML."""
    for name in TRAINING_FILES:
        read_yaml(bot_dir / name, f"a bot folder needs {' and '.join(TRAINING_FILES)}")


def fingerprint(bot_dir: Path) -> str:
    digest = hashlib.sha256(PREPROCESSING.encode())
    for name in TRAINING_FILES:
        digest.update(name.encode())
        digest.update((bot_dir / name).read_bytes())
    return digest.hexdigest()[:16]


def model_path_for(bot_dir: Path, models_dir: Path) -> Path:
    """Where the model trained from the bot folder's current data lives."""
    return models_dir / "nlu" / f"{bot_dir.resolve().name}-{fingerprint(bot_dir)}.tar.gz"


def train(bot_dir: Path, models_dir: Path, rasa_venv: Path, *, force: bool = False) -> TrainResult:
    """Train the NLU model of ``bot_dir`` unless a model of the same data and config exists."""
    check_training_files(bot_dir)
    bot_dir, models_dir = bot_dir.resolve(), models_dir.resolve()
    target = model_path_for(bot_dir, models_dir)
    if target.is_file() and not force:
        return TrainResult(target, skipped=True, seconds=0.0)
    # one training of a model at a time (the console and `callbot nlu train`, several instances on shared
    # storage): the second waits, then finds the model trained
    with _training_lock(target):
        if target.is_file() and not force:
            return TrainResult(target, skipped=True, seconds=0.0)
        config = bot_dir / "config.yml"
        data = with_digits(load_training_data(bot_dir / "nlu.yml"), pipeline_language(config))
        with tempfile.TemporaryDirectory(prefix="callbot-train-") as work:
            nlu_file = Path(work) / "nlu.yml"
            write_rasa_yaml(data, nlu_file)
            seconds = train_files(config, nlu_file, target, rasa_venv)
    return TrainResult(target, skipped=False, seconds=seconds)


def _bot_name(target: Path) -> str:
    """``fr`` for ``fr-2936f6e8eaae7fcd.tar.gz``."""
    return target.name.rsplit("-", 1)[0]


@contextlib.contextmanager
def _training_lock(target: Path) -> Iterator[None]:
    target.parent.mkdir(parents=True, exist_ok=True)
    with (target.parent / f".{_bot_name(target)}.train-lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def pipeline_language(config: Path) -> str:
    """The ``language`` of a Rasa pipeline config."""
    document = yaml.safe_load(config.read_text(encoding="utf-8"))
    language = document.get("language") if isinstance(document, dict) else None
    if not isinstance(language, str):
        raise ConfigError(f"{config}: 'language' is missing; set it to the bot's language, e.g. 'language: fr'")
    return language


def train_files(config: Path, nlu_file: Path, target: Path, rasa_venv: Path) -> float:
    """Train ``nlu_file`` with ``config`` into the model archive ``target``; the training time in seconds."""
    target = target.resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    # Rasa writes its archive as it goes: train under a temporary name, then move it into place whole, so that a
    # server or a test never loads half a model
    partial = target.with_name(f".partial-{os.getpid()}-{target.name}")
    command = [
        str(rasa_executable(rasa_venv)),
        "train",
        "nlu",
        "--config",
        str(config.resolve()),
        "--nlu",
        str(nlu_file.resolve()),
        "--out",
        str(target.parent),
        "--fixed-model-name",
        partial.name.removesuffix(".tar.gz"),
    ]
    # Rasa keeps a training cache in its working directory: out of the operators' bot folder, one per bot (a
    # bot's trainings are one at a time, see train())
    cache = target.parent / f".rasa-work-{_bot_name(target)}"
    cache.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    completed = subprocess.run(command, capture_output=True, text=True, env=rasa_environment(), cwd=cache, check=False)
    if completed.returncode != 0 or not partial.is_file():
        partial.unlink(missing_ok=True)
        tail = "\n".join((completed.stdout + completed.stderr).strip().splitlines()[-15:])
        raise TrainingError(f"rasa train nlu failed for {nlu_file} (exit {completed.returncode}):\n{tail}")
    os.replace(partial, target)
    return time.perf_counter() - started
