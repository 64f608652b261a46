"""Speech models on disk: the pinned manifest, ``pull`` (download), ``import_model`` (air-gapped) and lookup.

Installed layout under a models folder (``models/`` by default, ``CALLBOT_MODELS_DIR`` otherwise)::

    <models_dir>/<lang>/vosk/<model-name>/        a Vosk model folder
    <models_dir>/<lang>/piper/<voice>.onnx        a piper voice, with <voice>.onnx.json beside it
"""

from callbot.model_store.importing import import_model
from callbot.model_store.layout import (
    InstalledModel,
    find_piper_voice,
    find_vosk_model,
    list_models,
    require_piper_voice,
    require_vosk_model,
)
from callbot.model_store.manifest import DEFAULT_MANIFEST_PATH, Manifest, load_manifest
from callbot.model_store.pull import pull

__all__ = [
    "DEFAULT_MANIFEST_PATH",
    "InstalledModel",
    "Manifest",
    "find_piper_voice",
    "find_vosk_model",
    "import_model",
    "list_models",
    "load_manifest",
    "pull",
    "require_piper_voice",
    "require_vosk_model",
]
