"""Safe extraction of model archives (.zip, .tar.gz, .tgz).

Every member is checked before anything is written: an absolute path, a ``..`` component, a link or a
special file rejects the whole archive (zip-slip and friends), rather than being silently skipped.
"""

from __future__ import annotations

import shutil
import stat
import tarfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import IO

from callbot.errors import ModelStoreError
from callbot.model_store.manifest import ARCHIVE_SUFFIXES

_CHUNK = 1 << 20


def is_archive(path: Path) -> bool:
    return path.name.lower().endswith(ARCHIVE_SUFFIXES)


def archive_stem(path: Path) -> str:
    """``vosk-model-small-fr-0.22.zip`` -> ``vosk-model-small-fr-0.22``."""
    lowered = path.name.lower()
    for suffix in ARCHIVE_SUFFIXES:
        if lowered.endswith(suffix):
            return path.name[: -len(suffix)]
    return path.stem


def extract_archive(archive: Path, dest: Path) -> None:
    """Extract ``archive`` into the existing folder ``dest``, refusing any member that would escape it.

    The format comes from the content, not the name (a download in progress is named ``*.part``).
    """
    try:
        if zipfile.is_zipfile(archive):
            _extract_zip(archive, dest)
        else:
            _extract_tar(archive, dest)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError) as exc:
        raise ModelStoreError(f"{archive} is not a readable archive: {exc}") from exc
    except OSError as exc:
        raise ModelStoreError(f"could not extract {archive} into {dest}: {exc}") from exc


def _member_path(name: str, archive: Path) -> PurePosixPath:
    normalised = name.replace("\\", "/")
    path = PurePosixPath(normalised)
    drive = len(normalised) >= 2 and normalised[1] == ":"
    if path.is_absolute() or drive or ".." in path.parts:
        raise ModelStoreError(
            f"unsafe archive {archive}: member {name!r} would be written outside the target folder "
            "(absolute path or '..'); refusing to extract it"
        )
    return PurePosixPath(*[part for part in path.parts if part not in ("", ".")])


def _unsafe_kind(archive: Path, name: str, kind: str) -> ModelStoreError:
    return ModelStoreError(f"unsafe archive {archive}: member {name!r} is a {kind}; refusing to extract it")


def _target(dest: Path, relative: PurePosixPath) -> Path:
    target = dest.joinpath(*relative.parts)
    if not target.resolve().is_relative_to(dest.resolve()):  # defence in depth, _member_path already checked
        raise ModelStoreError(f"archive member {relative} would be written outside {dest}")
    return target


def _write_member(source: IO[bytes], target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("wb") as out:
        shutil.copyfileobj(source, out, _CHUNK)


def _extract_zip(archive: Path, dest: Path) -> None:
    with zipfile.ZipFile(archive) as bundle:
        plan: list[tuple[zipfile.ZipInfo, PurePosixPath]] = []
        for info in bundle.infolist():
            relative = _member_path(info.filename, archive)
            if stat.S_ISLNK(info.external_attr >> 16):
                raise _unsafe_kind(archive, info.filename, "symbolic link")
            plan.append((info, relative))
        for info, relative in plan:
            if not relative.parts:
                continue
            target = _target(dest, relative)
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            with bundle.open(info) as source:
                _write_member(source, target)


def _extract_tar(archive: Path, dest: Path) -> None:
    with tarfile.open(archive, "r:*") as bundle:
        members = bundle.getmembers()
        for member in members:
            _member_path(member.name, archive)
            if member.issym() or member.islnk():
                raise _unsafe_kind(archive, member.name, "link")
            if not (member.isfile() or member.isdir()):
                raise _unsafe_kind(archive, member.name, "special file")
        for member in members:
            relative = _member_path(member.name, archive)
            if not relative.parts:
                continue
            target = _target(dest, relative)
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            source = bundle.extractfile(member)
            if source is None:
                raise ModelStoreError(f"{archive}: member {member.name!r} cannot be read")
            with source:
                _write_member(source, target)
