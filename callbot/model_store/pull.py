"""``callbot models pull``: download a language's pinned models and install them."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from callbot.errors import ModelStoreError
from callbot.model_store.archive import extract_archive
from callbot.model_store.download import Progress, fetch
from callbot.model_store.install import find_vosk_roots, install_piper_pair, install_vosk_dir, staging_dir
from callbot.model_store.layout import (
    InstalledModel,
    check_language,
    installed_piper,
    installed_vosk,
    is_vosk_model_dir,
    piper_config_path,
    piper_install_path,
    read_piper_config,
    vosk_install_dir,
)
from callbot.model_store.manifest import Manifest, ManifestModel, ModelKind, load_manifest

DOWNLOADS_DIR_NAME = ".downloads"


def _ignore(_message: str) -> None:
    """Progress sink used when the caller gives none."""


def pull(
    language: str,
    models_dir: Path,
    *,
    manifest: Manifest | None = None,
    progress: Callable[[str], None] | None = None,
    timeout_s: float = 30.0,
    allow_unpinned: bool = False,
) -> list[InstalledModel]:
    """Download, verify and install the speech models the manifest lists for ``language``.

    Models already installed are skipped without any network access. A file the manifest pins with neither
    a sha256 nor an md5 is refused unless ``allow_unpinned`` is true.
    """
    check_language(language)
    chosen = manifest if manifest is not None else load_manifest()
    report = progress if progress is not None else _ignore
    wanted = chosen.models_for(language)

    results: list[InstalledModel] = []
    missing: list[tuple[ModelKind, ManifestModel]] = []
    for kind, model in wanted:
        existing = _already_installed(models_dir, language, kind, model)
        if existing is None:
            missing.append((kind, model))
        else:
            report(f"{model.name} is already installed at {existing.path}; skipping the download")
            results.append(existing)
    # Refuse before downloading anything, so a refusal never leaves half a language installed.
    for _kind, model in missing:
        _check_pinned(model, allow_unpinned)
    for kind, model in missing:
        if kind == "asr":
            results.append(_pull_vosk(language, model, models_dir, report, timeout_s))
        else:
            results.append(_pull_piper(language, model, models_dir, report, timeout_s))
    return sorted(results, key=lambda m: (m.kind, m.name))


def _already_installed(models_dir: Path, language: str, kind: ModelKind, model: ManifestModel) -> InstalledModel | None:
    if kind == "asr":
        folder = vosk_install_dir(models_dir, language, model.name)
        return installed_vosk(folder, language) if is_vosk_model_dir(folder) else None
    onnx = piper_install_path(models_dir, language, model.name)
    if onnx.is_file() and piper_config_path(onnx).is_file():
        return installed_piper(onnx, language)
    return None


def _check_pinned(model: ManifestModel, allow_unpinned: bool) -> None:
    unpinned = [spec.filename for spec in model.files if not spec.pinned]
    if unpinned and not allow_unpinned:
        raise ModelStoreError(
            f"refusing to install {model.name}: the manifest pins no sha256 or md5 for "
            f"{', '.join(unpinned)}, "
            "so a corrupted or substituted download could not be detected. Add a checksum to "
            "callbot/model_store/manifest.json, or accept the risk explicitly with allow_unpinned=True."
        )


def _manual_hint(model: ManifestModel) -> str:
    urls = " and ".join(spec.url for spec in model.files)
    if model.engine == "vosk":
        target = model.files[0].filename
        copy = "copy it here"
    else:
        target = f"{model.name}.onnx"
        copy = "copy both files here, side by side"
    return (
        f"Manual alternative: download {urls} on a machine with internet access, {copy}, and run "
        f"`callbot models import {target}`."
    )


def _pull_vosk(
    language: str, model: ManifestModel, models_dir: Path, report: Progress, timeout_s: float
) -> InstalledModel:
    spec = model.files[0]
    archive = fetch(
        spec,
        models_dir / DOWNLOADS_DIR_NAME,
        timeout_s=timeout_s,
        progress=report,
        manual=_manual_hint(model),
    )
    try:
        with staging_dir(models_dir) as staging:
            report(f"{spec.filename}: extracting")
            extract_archive(archive, staging)
            roots = find_vosk_roots(staging, max_depth=3)
            if len(roots) != 1:
                raise ModelStoreError(
                    f"{spec.filename} should hold exactly one Vosk model folder (am/final.mdl and "
                    f"conf/mfcc.conf), found {len(roots)}"
                )
            installed = install_vosk_dir(roots[0], models_dir, language, model.name)
    finally:
        # Verified or not, an archive that could not be installed would fail the same way next time.
        archive.unlink(missing_ok=True)
    report(f"{model.name}: installed at {installed.path}")
    return installed


def _pull_piper(
    language: str, model: ManifestModel, models_dir: Path, report: Progress, timeout_s: float
) -> InstalledModel:
    downloads = models_dir / DOWNLOADS_DIR_NAME
    manual = _manual_hint(model)
    # The config first: it is small, and an unreachable server shows up before the large download.
    ordered = sorted(model.files, key=lambda spec: not spec.filename.endswith(".json"))
    fetched = [fetch(spec, downloads, timeout_s=timeout_s, progress=report, manual=manual) for spec in ordered]
    try:
        with staging_dir(models_dir) as staging:
            onnx = staging / f"{model.name}.onnx"
            for spec, path in zip(ordered, fetched, strict=True):
                os.replace(path, staging / spec.filename)
            read_piper_config(onnx)
            installed = install_piper_pair(onnx, models_dir, language, model.name)
    finally:
        for path in fetched:
            path.unlink(missing_ok=True)
    report(f"{model.name}: installed at {installed.path}")
    return installed
