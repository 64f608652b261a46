"""Atomic installation into the models folder.

Everything is first assembled in a staging folder inside ``models_dir`` (same file system), then moved into
place with ``os.replace``: a reader never sees half a model, and a crash leaves only a hidden staging folder.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from callbot.errors import ModelStoreError
from callbot.model_store.layout import (
    InstalledModel,
    installed_piper,
    installed_vosk,
    is_vosk_model_dir,
    piper_config_path,
    piper_install_path,
    vosk_install_dir,
)


@contextmanager
def staging_dir(models_dir: Path) -> Iterator[Path]:
    """A fresh hidden folder inside ``models_dir``, removed on exit whatever happened."""
    models_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=models_dir))
    try:
        yield staging
    finally:
        if staging.exists():
            shutil.rmtree(staging)


def find_vosk_roots(top: Path, *, max_depth: int) -> list[Path]:
    """Vosk model folders at ``top`` or below it (not inside one another), shallowest first."""
    found: list[Path] = []
    level = [top]
    for _depth in range(max_depth + 1):
        below: list[Path] = []
        for folder in level:
            if is_vosk_model_dir(folder):
                found.append(folder)
            elif folder.is_dir() and not folder.is_symlink():
                below.extend(sorted(p for p in folder.iterdir() if p.is_dir() and not p.is_symlink()))
        level = below
    return found


def find_piper_voices(top: Path, *, max_depth: int) -> list[Path]:
    """``.onnx`` files at ``top`` or in its subfolders, down to ``max_depth`` levels."""
    found: list[Path] = []
    level = [top]
    for _depth in range(max_depth + 1):
        below: list[Path] = []
        for folder in level:
            found.extend(sorted(p for p in folder.glob("*.onnx") if p.is_file()))
            below.extend(sorted(p for p in folder.iterdir() if p.is_dir() and not p.is_symlink()))
        level = below
    return found


def install_vosk_dir(staged: Path, models_dir: Path, language: str, name: str) -> InstalledModel:
    """Move ``staged`` (a Vosk model folder inside ``models_dir``) to ``<lang>/vosk/<name>``."""
    if not is_vosk_model_dir(staged):
        raise ModelStoreError(f"{staged} is not a Vosk model folder (am/final.mdl and conf/mfcc.conf)")
    target = vosk_install_dir(models_dir, language, name)
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        os.replace(staged, target)
        return installed_vosk(target, language)
    # A folder cannot replace a non-empty folder in one step: park the old one, swap, then delete it.
    parked = Path(tempfile.mkdtemp(prefix=f".{name}.old-", dir=target.parent))
    os.replace(target, parked / name)
    try:
        os.replace(staged, target)
    except OSError:
        os.replace(parked / name, target)
        raise
    shutil.rmtree(parked)
    return installed_vosk(target, language)


def copy_vosk_dir(source: Path, models_dir: Path, language: str, name: str) -> InstalledModel:
    target = vosk_install_dir(models_dir, language, name)
    if target.exists() and target.resolve() == source.resolve():
        return installed_vosk(target, language)
    with staging_dir(models_dir) as staging:
        staged = staging / name
        shutil.copytree(source, staged, symlinks=False)
        return install_vosk_dir(staged, models_dir, language, name)


def install_piper_pair(onnx: Path, models_dir: Path, language: str, name: str) -> InstalledModel:
    """Move ``onnx`` and its ``.onnx.json`` (both inside ``models_dir``) to ``<lang>/piper/<name>.onnx``.

    The config moves first and the .onnx last: a voice only counts as installed once its .onnx is there.
    """
    target = piper_install_path(models_dir, language, name)
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(piper_config_path(onnx), piper_config_path(target))
    os.replace(onnx, target)
    return installed_piper(target, language)


def copy_piper_pair(onnx: Path, models_dir: Path, language: str, name: str) -> InstalledModel:
    target = piper_install_path(models_dir, language, name)
    if target.exists() and target.resolve() == onnx.resolve():
        return installed_piper(target, language)
    with staging_dir(models_dir) as staging:
        staged = staging / f"{name}.onnx"
        shutil.copyfile(piper_config_path(onnx), piper_config_path(staged))
        shutil.copyfile(onnx, staged)
        return install_piper_pair(staged, models_dir, language, name)
