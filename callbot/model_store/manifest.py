"""The manifest of downloadable speech models: pinned URLs, sizes and checksums (``manifest.json`` here)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from callbot.errors import ModelStoreError

# The manifest ships in the repository, beside the (git-ignored) model files it describes.
DEFAULT_MANIFEST_PATH = Path(__file__).with_name("manifest.json")
"""Shipped with the package (package data): ``callbot models pull`` works from an installed wheel or an image."""

ModelKind = Literal["asr", "tts"]
ARCHIVE_SUFFIXES = (".zip", ".tar.gz", ".tgz")
LANGUAGE_PATTERN = r"[a-z]{2,3}"


class ManifestFile(BaseModel):
    """One file to download. A file is *pinned* when it carries a sha256 or an md5."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    filename: str
    url: str = Field(pattern=r"^https?://\S+$")
    size_bytes: int | None = Field(default=None, gt=0)
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    md5: str | None = Field(default=None, pattern=r"^[0-9a-f]{32}$")

    @field_validator("sha256", "md5", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("filename")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        # The name becomes a path under models_dir/.downloads: no folders, no hidden files.
        if not value or value.startswith(".") or "/" in value or "\\" in value:
            raise ValueError("must be a plain file name (no folder, not hidden)")
        return value

    @property
    def pinned(self) -> bool:
        return self.sha256 is not None or self.md5 is not None


class ManifestModel(BaseModel):
    """A Vosk model (one archive) or a piper voice (``<name>.onnx`` + ``<name>.onnx.json``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    engine: Literal["vosk", "piper", "faster-whisper"]
    license: str | None = None
    notes: str | None = None
    files: tuple[ManifestFile, ...] = Field(min_length=1)

    def file_named(self, filename: str) -> ManifestFile | None:
        return next((spec for spec in self.files if spec.filename == filename), None)


class LanguageModels(BaseModel):
    """The speech recogniser (asr) and the voice (tts) of one language."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    asr: ManifestModel | None = None
    tts: ManifestModel | None = None

    @model_validator(mode="after")
    def _check_shapes(self) -> LanguageModels:
        if self.asr is not None:
            if self.asr.engine != "vosk":
                raise ValueError("asr must be a vosk model")
            names = [spec.filename for spec in self.asr.files]
            if len(names) != 1 or not names[0].lower().endswith(ARCHIVE_SUFFIXES):
                raise ValueError("a vosk model is exactly one .zip, .tar.gz or .tgz archive")
        if self.tts is not None:
            if self.tts.engine != "piper":
                raise ValueError("tts must be a piper voice")
            expected = {f"{self.tts.name}.onnx", f"{self.tts.name}.onnx.json"}
            if sorted(spec.filename for spec in self.tts.files) != sorted(expected):
                raise ValueError(f"a piper voice is exactly the two files {sorted(expected)}")
        return self

    def models(self) -> list[tuple[ModelKind, ManifestModel]]:
        found: list[tuple[ModelKind, ManifestModel]] = []
        if self.asr is not None:
            found.append(("asr", self.asr))
        if self.tts is not None:
            found.append(("tts", self.tts))
        return found


@dataclass(frozen=True, slots=True)
class ManifestMatch:
    """Where a file name was found in the manifest."""

    language: str
    kind: ModelKind
    model: ManifestModel
    file: ManifestFile


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1]
    notes: str | None = None
    languages: dict[str, LanguageModels]
    whisper: dict[str, ManifestModel] = Field(default_factory=dict)
    """Multilingual Whisper models for faster-whisper, by name (``callbot models pull whisper-base``)."""

    @field_validator("languages")
    @classmethod
    def _language_codes(cls, value: dict[str, LanguageModels]) -> dict[str, LanguageModels]:
        for code in value:
            if not _is_language_code(code):
                raise ValueError(f"{code!r} is not a two- or three-letter lowercase language code")
        return value

    def models_for(self, language: str) -> list[tuple[ModelKind, ManifestModel]]:
        entry = self.languages.get(language)
        if entry is None:
            known = ", ".join(sorted(self.languages)) or "none"
            raise ModelStoreError(f"the model manifest has no models for language {language!r} (known: {known})")
        return entry.models()

    def preferred_name(self, language: str, kind: ModelKind) -> str | None:
        entry = self.languages.get(language)
        model = None if entry is None else (entry.asr if kind == "asr" else entry.tts)
        return None if model is None else model.name

    def find_file(self, filename: str) -> ManifestMatch | None:
        """The manifest entry whose download is named ``filename``, if any."""
        for language, entry in sorted(self.languages.items()):
            for kind, model in entry.models():
                spec = model.file_named(filename)
                if spec is not None:
                    return ManifestMatch(language=language, kind=kind, model=model, file=spec)
        return None


def _is_language_code(code: str) -> bool:
    return re.fullmatch(LANGUAGE_PATTERN, code) is not None


def load_manifest(path: Path | None = None) -> Manifest:
    """Read and validate a manifest; the default is the one shipped in the repository."""
    source = DEFAULT_MANIFEST_PATH if path is None else path
    try:
        raw = json.loads(source.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ModelStoreError(f"cannot read the model manifest {source}: {exc.strerror or exc}") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelStoreError(f"the model manifest {source} is not valid JSON: {exc}") from exc
    try:
        return Manifest.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or '<top>'}: {error['msg']}" for error in exc.errors()
        )
        raise ModelStoreError(f"the model manifest {source} is invalid: {problems}") from exc


def shipped_manifest() -> Manifest | None:
    """The shipped manifest, or None when it is missing (a broken installation)."""
    if not DEFAULT_MANIFEST_PATH.is_file():
        return None
    return load_manifest(DEFAULT_MANIFEST_PATH)
