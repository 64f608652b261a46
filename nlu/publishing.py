"""Which trained NLU model the service uses: the published one.

``callbot nlu train`` trains and publishes. The console trains a candidate, compares it with the published model,
and publishes it only when operations confirm. A running service follows the published model within seconds.
"""

from __future__ import annotations

import os
from pathlib import Path

from nlu.training import model_path_for


def pointer_path(bot_dir: Path, models_dir: Path) -> Path:
    return models_dir / "nlu" / f"{bot_dir.resolve().name}.published"


def published_model(bot_dir: Path, models_dir: Path) -> Path | None:
    pointer = pointer_path(bot_dir, models_dir)
    try:
        name = pointer.read_text(encoding="utf-8").strip()
    except OSError:
        return None
    model = models_dir / "nlu" / name
    # only a model file of this folder, never a path written into the pointer by hand
    return model if name and "/" not in name and model.is_file() else None


def serving_model(bot_dir: Path, models_dir: Path) -> Path:
    """The published model, or — before anything was published — the model of the current training data."""
    return published_model(bot_dir, models_dir) or model_path_for(bot_dir, models_dir)


def publish(bot_dir: Path, models_dir: Path, model: Path) -> None:
    pointer = pointer_path(bot_dir, models_dir)
    pointer.parent.mkdir(parents=True, exist_ok=True)
    tmp = pointer.with_suffix(".tmp")
    tmp.write_text(model.name + "\n", encoding="utf-8")
    os.replace(tmp, pointer)
