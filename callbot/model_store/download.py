"""Resumable, verified downloads of manifest files (httpx, synchronous).

A download goes to ``<downloads_dir>/<filename>.part``. When that file already holds some bytes, the
request asks for the rest (``Range: bytes=N-``); a server that ignores the range (200) restarts the file from
zero, and a 416 means the part is already whole, or is garbage to throw away. Nothing is trusted before its
checksum matches the manifest.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from callbot.errors import ModelStoreError
from callbot.model_store.manifest import ManifestFile

Progress = Callable[[str], None]

_CHUNK = 1 << 16
_MB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class FileDigests:
    sha256: str
    md5: str
    size_bytes: int


def file_digests(path: Path) -> FileDigests:
    sha256 = hashlib.sha256()
    md5 = hashlib.md5(usedforsecurity=False)
    size = 0
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK * 16):
            sha256.update(chunk)
            md5.update(chunk)
            size += len(chunk)
    return FileDigests(sha256=sha256.hexdigest(), md5=md5.hexdigest(), size_bytes=size)


def verify_file(path: Path, spec: ManifestFile, *, delete_on_mismatch: bool) -> None:
    """Check size and checksum (sha256 when pinned, else md5) against the manifest."""
    actual = file_digests(path)
    problems = []
    if spec.sha256 is not None and actual.sha256 != spec.sha256:
        problems.append(f"expected sha256 {spec.sha256}, got sha256 {actual.sha256}")
    elif spec.sha256 is None and spec.md5 is not None and actual.md5 != spec.md5:
        problems.append(f"expected md5 {spec.md5}, got md5 {actual.md5}")
    if spec.size_bytes is not None and actual.size_bytes != spec.size_bytes:
        problems.append(f"expected {spec.size_bytes} bytes, got {actual.size_bytes}")
    if not problems:
        return
    if delete_on_mismatch:
        path.unlink(missing_ok=True)
    outcome = "the file was deleted" if delete_on_mismatch else "nothing was installed"
    raise ModelStoreError(
        f"checksum mismatch for {spec.filename} ({path}): {'; '.join(problems)}; {outcome}. The file is "
        f"corrupt or not the one the manifest pins (source: {spec.url})."
    )


def fetch(spec: ManifestFile, downloads_dir: Path, *, timeout_s: float, progress: Progress, manual: str) -> Path:
    """Download ``spec`` (resuming a previous attempt) and return the verified file.

    ``manual`` is appended to network errors: how to get the file onto this machine by hand.
    """
    downloads_dir.mkdir(parents=True, exist_ok=True)
    part = downloads_dir / f"{spec.filename}.part"
    timeout = httpx.Timeout(timeout_s)
    with httpx.Client(timeout=timeout, follow_redirects=True) as client:
        # A second pass happens only when the first one had to throw the partial file away.
        for _attempt in range(2):
            if _transfer(client, spec, part, progress, manual):
                break
        else:
            raise ModelStoreError(f"{spec.url} does not serve a consistent file (range requests fail). {manual}")
    verify_file(part, spec, delete_on_mismatch=True)
    return part


def _transfer(client: httpx.Client, spec: ManifestFile, part: Path, progress: Progress, manual: str) -> bool:
    """Fill ``part``; False when the partial file was discarded and the transfer must start again."""
    offset = part.stat().st_size if part.exists() else 0
    if spec.size_bytes is not None and offset > spec.size_bytes:
        part.unlink()
        offset = 0
    if spec.size_bytes is not None and offset == spec.size_bytes > 0:
        progress(f"{spec.filename}: already downloaded, verifying")
        return True
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    try:
        with client.stream("GET", spec.url, headers=headers) as response:
            if response.status_code == httpx.codes.REQUESTED_RANGE_NOT_SATISFIABLE:
                return _range_not_satisfiable(response, part, offset)
            if response.status_code == httpx.codes.PARTIAL_CONTENT and offset:
                if _content_range_start(response.headers.get("content-range")) != offset:
                    part.unlink()
                    return False
                progress(f"{spec.filename}: resuming after {offset / _MB:.1f} MB")
                _write_body(response, part, "ab", offset, spec, progress)
            elif response.status_code == httpx.codes.OK:
                progress(f"{spec.filename}: downloading from {spec.url}")
                _write_body(response, part, "wb", 0, spec, progress)
            else:
                raise ModelStoreError(f"{spec.url} answered HTTP {response.status_code}; cannot download it. {manual}")
    except httpx.TransportError as exc:
        raise _network_error(spec, part, exc, manual) from exc
    return True


def _range_not_satisfiable(response: httpx.Response, part: Path, offset: int) -> bool:
    # "bytes */TOTAL": when the part already holds TOTAL bytes it is complete; otherwise it is stale.
    total = response.headers.get("content-range", "").rpartition("/")[2]
    if total.isdigit() and int(total) == offset:
        return True
    part.unlink(missing_ok=True)
    return False


def _content_range_start(value: str | None) -> int | None:
    # "bytes 1000-4999/5000"
    if value is None or not value.startswith("bytes "):
        return None
    start = value[len("bytes ") :].partition("-")[0]
    return int(start) if start.isdigit() else None


def _write_body(
    response: httpx.Response, part: Path, mode: str, offset: int, spec: ManifestFile, progress: Progress
) -> None:
    total = spec.size_bytes
    done = offset
    next_report = done + 8 * _MB if total is None else done + max(total // 10, 1)
    with part.open(mode) as out:
        # No chunk_size: a chunker would hold back the last bytes received before a connection drops.
        for chunk in response.iter_bytes():
            out.write(chunk)
            done += len(chunk)
            if done >= next_report:
                of_total = "" if total is None else f" of {total / _MB:.1f} MB"
                progress(f"{spec.filename}: {done / _MB:.1f} MB{of_total}")
                next_report += 8 * _MB if total is None else max(total // 10, 1)


def _network_error(spec: ManifestFile, part: Path, exc: httpx.TransportError, manual: str) -> ModelStoreError:
    host = httpx.URL(spec.url).host
    kept = part.stat().st_size if part.exists() else 0
    resume = f" {kept} bytes were kept in {part}; run the same command again to resume the download." if kept else ""
    return ModelStoreError(
        f"could not download {spec.url} ({type(exc).__name__}: {exc}).{resume} This machine may be offline, "
        f"or unable to reach {host} (firewall, proxy, DNS). {manual}"
    )
