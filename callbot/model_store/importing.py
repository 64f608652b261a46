"""``callbot models import PATH``: install a model that was copied onto this machine by hand."""

from __future__ import annotations

from pathlib import Path

from callbot.errors import ModelStoreError
from callbot.model_store.archive import archive_stem, extract_archive, is_archive
from callbot.model_store.download import verify_file
from callbot.model_store.install import (
    copy_piper_pair,
    copy_vosk_dir,
    find_piper_voices,
    find_vosk_roots,
    install_vosk_dir,
    staging_dir,
)
from callbot.model_store.layout import (
    InstalledModel,
    check_language,
    infer_language,
    piper_config_path,
    read_piper_config,
)
from callbot.model_store.manifest import Manifest, ModelKind, shipped_manifest
from callbot.model_store.whisper import import_whisper, is_whisper_model_dir

_WHAT_WE_IMPORT = (
    "expected a Vosk model folder (with am/final.mdl and conf/mfcc.conf), a .zip, .tar.gz or .tgz archive of "
    "one, a piper voice .onnx with its .onnx.json beside it, a folder of piper voices, or a faster-whisper model "
    "folder (model.bin, config.json, tokenizer.json, vocabulary.txt)"
)


def import_model(source: Path, models_dir: Path, *, language: str | None = None) -> list[InstalledModel]:
    """Install the Vosk model(s) or piper voice(s) found at ``source`` into ``models_dir``.

    ``language`` overrides the language inferred from the model's name. A file whose name matches a manifest
    download is checked against the manifest's checksum first.
    """
    if language is not None:
        check_language(language)
    if not source.exists():
        raise ModelStoreError(f"cannot import {source}: no such file or folder")
    manifest = shipped_manifest()
    if is_whisper_model_dir(source):
        return [import_whisper(source, models_dir)]
    if source.is_dir():
        return _import_folder(source, models_dir, language)
    if is_archive(source):
        return _import_archive(source, models_dir, language, manifest)
    if source.name.endswith(".onnx.json"):
        source = source.with_name(source.name[: -len(".json")])
    if source.name.endswith(".onnx"):
        return [_import_piper(source, models_dir, language, manifest)]
    raise ModelStoreError(f"cannot import {source}: it is not a speech model callbot knows; {_WHAT_WE_IMPORT}")


def _language_for(name: str, kind: ModelKind, given: str | None, source: Path, config: dict[str, object] | None) -> str:
    if given is not None:
        return given
    inferred = infer_language(name, kind, config)
    if inferred is None:
        raise ModelStoreError(
            f"cannot tell the language of {name!r} from its name: run "
            f"`callbot models import {source} --language xx` with its language code "
            "(for example --language fr)"
        )
    return inferred


def _import_folder(folder: Path, models_dir: Path, language: str | None) -> list[InstalledModel]:
    vosk_roots = find_vosk_roots(folder, max_depth=2)
    voices = find_piper_voices(folder, max_depth=2)
    if not vosk_roots and not voices:
        raise ModelStoreError(f"cannot import {folder}: no model found in it; {_WHAT_WE_IMPORT}")
    # Validate everything (and settle every language) before copying anything.
    plans_vosk = [(root, _language_for(root.name, "asr", language, folder, None)) for root in vosk_roots]
    plans_piper = []
    for onnx in voices:
        config = read_piper_config(onnx)
        plans_piper.append((onnx, _language_for(_voice_name(onnx), "tts", language, folder, config)))
    installed = [copy_vosk_dir(root, models_dir, lang, root.name) for root, lang in plans_vosk]
    installed += [copy_piper_pair(onnx, models_dir, lang, _voice_name(onnx)) for onnx, lang in plans_piper]
    return installed


def _import_archive(
    archive: Path, models_dir: Path, language: str | None, manifest: Manifest | None
) -> list[InstalledModel]:
    match = None if manifest is None else manifest.find_file(archive.name)
    if match is not None:
        verify_file(archive, match.file, delete_on_mismatch=False)
    with staging_dir(models_dir) as staging:
        extract_archive(archive, staging)
        roots = find_vosk_roots(staging, max_depth=3)
        if not roots:
            raise ModelStoreError(
                f"cannot import {archive}: the archive does not contain a Vosk model folder "
                "(a folder with am/final.mdl and conf/mfcc.conf)"
            )
        plans = []
        for root in roots:
            name = match.model.name if match is not None and len(roots) == 1 else _folder_name(root, staging, archive)
            given = language if language is not None else (match.language if match is not None else None)
            plans.append((root, name, _language_for(name, "asr", given, archive, None)))
        return [install_vosk_dir(root, models_dir, lang, name) for root, name, lang in plans]


def _import_piper(onnx: Path, models_dir: Path, language: str | None, manifest: Manifest | None) -> InstalledModel:
    config = read_piper_config(onnx)
    name = _voice_name(onnx)
    given = language
    for path in (onnx, piper_config_path(onnx)):
        match = None if manifest is None else manifest.find_file(path.name)
        if match is not None:
            verify_file(path, match.file, delete_on_mismatch=False)
            given = given if given is not None else match.language
    return copy_piper_pair(onnx, models_dir, _language_for(name, "tts", given, onnx, config), name)


def _voice_name(onnx: Path) -> str:
    return onnx.name[: -len(".onnx")]


def _folder_name(root: Path, staging: Path, archive: Path) -> str:
    # An archive whose files sit at its top level (no enclosing folder) is named after the archive.
    return archive_stem(archive) if root == staging else root.name
