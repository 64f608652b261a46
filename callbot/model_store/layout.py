"""Where installed models live and how to recognise them.

``<models_dir>/<lang>/vosk/<model-name>/`` holds a Vosk model folder and ``<models_dir>/<lang>/piper/`` holds
``<voice>.onnx`` with its ``<voice>.onnx.json``. Entries whose name starts with a dot are work in progress
(downloads, staging folders) and never count as installed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from callbot.errors import ModelMissingError, ModelStoreError
from callbot.model_store.manifest import LANGUAGE_PATTERN, ModelKind, shipped_manifest

_LANGUAGE_RE = re.compile(LANGUAGE_PATTERN)
# vosk-model-small-fr-0.22, vosk-model-fr-0.22, vosk-model-en-us-0.22-lgraph
_VOSK_NAME_RE = re.compile(r"^vosk-model-(?:small-)?([a-z]{2,3})(?=[-_.]|$)")
# fr_FR-siwis-medium, en_US-joe-medium
_PIPER_NAME_RE = re.compile(r"^([a-z]{2,3})_[A-Z]{2}-")


@dataclass(frozen=True, slots=True)
class InstalledModel:
    language: str  # "fr", "en", "ko" ...
    kind: Literal["asr", "tts"]
    name: str  # "vosk-model-small-fr-0.22", "fr_FR-siwis-medium"
    path: Path  # model folder (asr) or .onnx file (tts)
    size_bytes: int


def check_language(language: str) -> str:
    if not _LANGUAGE_RE.fullmatch(language):
        raise ModelStoreError(
            f"{language!r} is not a language code callbot understands: use two or three lowercase letters "
            "such as fr or en"
        )
    return language


def vosk_install_dir(models_dir: Path, language: str, name: str) -> Path:
    return models_dir / language / "vosk" / name


def piper_install_path(models_dir: Path, language: str, name: str) -> Path:
    return models_dir / language / "piper" / f"{name}.onnx"


def piper_config_path(onnx: Path) -> Path:
    return onnx.with_name(onnx.name + ".json")


def is_vosk_model_dir(path: Path) -> bool:
    """A Vosk model folder: ``am/final.mdl`` (or ``final.mdl``, older layout) and ``conf/mfcc.conf``."""
    if not path.is_dir():
        return False
    has_model = (path / "am" / "final.mdl").is_file() or (path / "final.mdl").is_file()
    has_features = (path / "conf" / "mfcc.conf").is_file() or (path / "mfcc.conf").is_file()
    return has_model and has_features


def read_piper_config(onnx: Path) -> dict[str, object]:
    """Check that ``onnx`` is a usable piper voice and return its parsed ``.onnx.json``."""
    config = piper_config_path(onnx)
    if not onnx.is_file() or onnx.stat().st_size == 0:
        raise ModelStoreError(f"{onnx} is not a piper voice: the .onnx file is missing or empty")
    if not config.is_file():
        raise ModelStoreError(
            f"{onnx} is not a complete piper voice: its config {config.name} must sit beside it "
            "(a piper voice is the two files <voice>.onnx and <voice>.onnx.json)"
        )
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelStoreError(f"{config} is not a piper voice config: {exc}") from exc
    audio = data.get("audio") if isinstance(data, dict) else None
    rate = audio.get("sample_rate") if isinstance(audio, dict) else None
    if not isinstance(rate, int) or isinstance(rate, bool) or rate <= 0:
        raise ModelStoreError(f"{config} is not a piper voice config: it has no valid audio.sample_rate")
    return dict(data)


def infer_language(name: str, kind: ModelKind, piper_config: dict[str, object] | None = None) -> str | None:
    """The language a model's name (or, for a voice, its config) announces, or None."""
    match = (_VOSK_NAME_RE if kind == "asr" else _PIPER_NAME_RE).match(name)
    if match:
        return match.group(1)
    language = piper_config.get("language") if piper_config else None
    if isinstance(language, dict):
        family = language.get("family")
        if isinstance(family, str) and _LANGUAGE_RE.fullmatch(family):
            return family
    return None


def installed_vosk(folder: Path, language: str) -> InstalledModel:
    size = sum(item.stat().st_size for item in folder.rglob("*") if item.is_file())
    return InstalledModel(language=language, kind="asr", name=folder.name, path=folder, size_bytes=size)


def installed_piper(onnx: Path, language: str) -> InstalledModel:
    size = onnx.stat().st_size + piper_config_path(onnx).stat().st_size
    return InstalledModel(language=language, kind="tts", name=onnx.name[: -len(".onnx")], path=onnx, size_bytes=size)


def list_models(models_dir: Path) -> list[InstalledModel]:
    """Every installed model under ``models_dir``, sorted by language, kind and name."""
    if not models_dir.is_dir():
        return []
    found: list[InstalledModel] = []
    for language_dir in models_dir.iterdir():
        language = language_dir.name
        if not language_dir.is_dir() or not _LANGUAGE_RE.fullmatch(language):
            continue
        vosk_dir = language_dir / "vosk"
        if vosk_dir.is_dir():
            for folder in vosk_dir.iterdir():
                if not folder.name.startswith(".") and is_vosk_model_dir(folder):
                    found.append(installed_vosk(folder, language))
        piper_dir = language_dir / "piper"
        if piper_dir.is_dir():
            for onnx in piper_dir.glob("*.onnx"):
                if not onnx.name.startswith(".") and onnx.is_file() and piper_config_path(onnx).is_file():
                    found.append(installed_piper(onnx, language))
    from callbot.model_store.whisper import list_whisper

    found += list_whisper(models_dir)
    return sorted(found, key=lambda model: (model.language, model.kind, model.name))


def _find(models_dir: Path, language: str, kind: ModelKind) -> Path | None:
    candidates = [m for m in list_models(models_dir) if m.language == language and m.kind == kind]
    if not candidates:
        return None
    manifest = shipped_manifest()
    preferred = None if manifest is None else manifest.preferred_name(language, kind)
    chosen = next((m for m in candidates if m.name == preferred), candidates[0])
    return chosen.path


def find_vosk_model(models_dir: Path, language: str) -> Path | None:
    """The Vosk model folder for ``language``: the manifest's model if installed, else the first by name."""
    return _find(models_dir, language, "asr")


def find_piper_voice(models_dir: Path, language: str) -> Path | None:
    """The piper ``.onnx`` for ``language``: the manifest's voice if installed, else the first by name."""
    return _find(models_dir, language, "tts")


def _missing(models_dir: Path, language: str, what: str) -> ModelMissingError:
    return ModelMissingError(
        f"no {what} for language {language!r} in {models_dir}: run `callbot models pull {language}`, or on a "
        f"machine without internet access copy the files by hand and run "
        f"`callbot models import PATH --language {language}`"
    )


def require_vosk_model(models_dir: Path, language: str) -> Path:
    """Like :func:`find_vosk_model`; a missing model raises ModelMissingError naming the command to run."""
    found = find_vosk_model(models_dir, language)
    if found is None:
        raise _missing(models_dir, language, "Vosk speech recognition model")
    return found


def require_piper_voice(models_dir: Path, language: str) -> Path:
    """Like :func:`find_piper_voice`; a missing voice raises ModelMissingError naming the command to run."""
    found = find_piper_voice(models_dir, language)
    if found is None:
        raise _missing(models_dir, language, "piper voice")
    return found
