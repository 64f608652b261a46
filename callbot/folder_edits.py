"""Changes to the running bot folder from the console: validated with the startup validator, written
atomically, kept in a version history (who, when, before/after) that can be reverted, and applied to the
running service at once. Reason corrections proposed by trainees, and their review, live here too."""

from __future__ import annotations

import difflib
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from callbot.errors import ConfigError
from callbot.storage.database import in_transaction
from callbot.storage.tables import ConfigVersionRow, CorrectionRow
from nlu.training_edits import add_example
from routing.bot_folder import BotFolder, load_bot_folder

EDITABLE = ("bot.yml", "routing.yml", "nlu.yml")


@dataclass(frozen=True, slots=True)
class Saved:
    version_id: int
    folder: BotFolder


class FolderEditor:
    def __init__(self, engine: Engine, bot_dir: Path) -> None:
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self.bot_dir = bot_dir
        self.bot = bot_dir.resolve().name

    def read(self, file: str) -> str:
        return (self.bot_dir / _editable(file)).read_text(encoding="utf-8")

    def validate(self, file: str, text: str) -> BotFolder:
        """The whole folder as it would be with ``text`` as ``file``: raises ConfigError (file, key, fix)."""
        return load_bot_folder_from_text(self.bot_dir, file, text)

    def save(self, file: str, text: str, author: str, summary: str) -> Saved:
        """Validate, write atomically, record the version. Nothing is written when the folder would be invalid."""
        before = self.read(file)
        if text == before:
            raise ConfigError("no change to save")
        folder = self.validate(file, text)
        path = self.bot_dir / _editable(file)
        _write_atomically(path, text)
        row = ConfigVersionRow(
            bot=self.bot,
            file=file,
            at=datetime.now(UTC),
            author=author[:64],
            summary=summary[:256],
            before=before,
            after=text,
        )
        in_transaction(self._sessions, lambda s: s.add(row))
        return Saved(row.id, folder)

    def versions(self, limit: int = 100) -> list[ConfigVersionRow]:
        query = select(ConfigVersionRow).where(ConfigVersionRow.bot == self.bot).order_by(ConfigVersionRow.id.desc())
        return in_transaction(self._sessions, lambda s: list(s.scalars(query.limit(limit))))

    def version(self, version_id: int) -> ConfigVersionRow | None:
        return in_transaction(self._sessions, lambda s: s.get(ConfigVersionRow, version_id))

    def revert(self, version_id: int, author: str) -> Saved:
        """Put the file back as it was before ``version_id`` (itself a new, revertible version)."""
        version = self.version(version_id)
        if version is None or version.bot != self.bot:
            raise ConfigError(f"no version {version_id}")
        return self.save(version.file, version.before, author, f"revert of version {version_id}")

    # --- edits made on another instance sharing the database ---

    def latest_version_id(self) -> int:
        query = select(func.max(ConfigVersionRow.id)).where(ConfigVersionRow.bot == self.bot)
        return in_transaction(self._sessions, lambda s: s.scalar(query) or 0)

    def changes_since(self, version_id: int) -> tuple[int, dict[str, str]]:
        """The newest version id, and each file's newest text among the versions after ``version_id``."""
        query = (
            select(ConfigVersionRow.id, ConfigVersionRow.file, ConfigVersionRow.after)
            .where(ConfigVersionRow.bot == self.bot, ConfigVersionRow.id > version_id)
            .order_by(ConfigVersionRow.id)
        )
        rows = in_transaction(self._sessions, lambda s: list(s.execute(query)))
        texts = {file: after for _, file, after in rows if file in EDITABLE}
        return (rows[-1][0] if rows else version_id), texts

    def adopt(self, texts: dict[str, str]) -> BotFolder:
        """Bring this instance's folder to ``texts`` (saved by another instance): each file validated with the
        rest of the folder, then written when it differs (a folder on a shared volume is already written)."""
        for file, text in texts.items():
            if self.read(file) != text:
                self.validate(file, text)
                _write_atomically(self.bot_dir / _editable(file), text)
        return load_bot_folder(self.bot_dir)

    # --- corrections -----------------------------------------------------------------------------------------

    def propose(self, item_id: str | None, text: str, intent: str, author: str) -> None:
        if not text.strip():
            return
        row = CorrectionRow(
            item_id=item_id,
            text=text.strip()[:2000],
            intent=intent,
            proposed_by=author,
            proposed_at=datetime.now(UTC),
            status="pending",
        )
        in_transaction(self._sessions, lambda s: s.add(row))

    def corrections(self, status: str = "pending", limit: int = 200) -> list[CorrectionRow]:
        query = select(CorrectionRow).where(CorrectionRow.status == status).order_by(CorrectionRow.id)
        return in_transaction(self._sessions, lambda s: list(s.scalars(query.limit(limit))))

    def review(self, correction_id: int, accept: bool, reviewer: str, text: str | None = None) -> Saved | None:
        """Accept (the text, possibly edited, becomes a training example of the intent) or reject."""

        def load(s: Session) -> CorrectionRow:
            row = s.get(CorrectionRow, correction_id)
            if row is None or row.status != "pending":
                raise ConfigError(f"no pending correction {correction_id}")
            return row

        row = in_transaction(self._sessions, load)
        saved = None
        if accept:
            example = text if text and text.strip() else row.text
            saved = self.save(
                "nlu.yml",
                add_example(self.read("nlu.yml"), row.intent, example),
                reviewer,
                f"correction {row.id}: {row.intent}",
            )

        def mark(s: Session) -> None:
            current = s.get(CorrectionRow, correction_id)
            assert current is not None
            current.status = "accepted" if accept else "rejected"
            current.reviewed_by, current.reviewed_at = reviewer[:64], datetime.now(UTC)

        in_transaction(self._sessions, mark)
        return saved

    def correction_counts(self, author: str) -> dict[str, int]:
        query = (
            select(CorrectionRow.status, func.count())
            .where(CorrectionRow.proposed_by == author)
            .group_by(CorrectionRow.status)
        )
        return in_transaction(self._sessions, lambda s: {status: count for status, count in s.execute(query)})


def diff(version: ConfigVersionRow) -> str:
    return "".join(
        difflib.unified_diff(
            version.before.splitlines(keepends=True),
            version.after.splitlines(keepends=True),
            fromfile=f"{version.file} (before)",
            tofile=f"{version.file} (version {version.id})",
        )
    )


def load_bot_folder_from_text(bot_dir: Path, file: str, text: str) -> BotFolder:
    """The folder object for the edited file, built from a copy (the real folder is written only after)."""
    with tempfile.TemporaryDirectory(prefix="callbot-edit-") as work:
        trial = Path(work) / bot_dir.name
        shutil.copytree(bot_dir, trial, ignore=shutil.ignore_patterns(".rasa", "tests"))
        (trial / _editable(file)).write_text(text, encoding="utf-8")
        try:
            folder = load_bot_folder(trial)
        except ConfigError as exc:  # name the real folder in the message, not the trial copy
            raise ConfigError(str(exc).replace(str(trial), str(bot_dir))) from exc
    return BotFolder(bot_dir, folder.bot, folder.routing, folder.router)


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8") as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)


def _editable(file: str) -> str:
    if file not in EDITABLE:
        raise ConfigError(f"{file!r} cannot be edited here; the files are {', '.join(EDITABLE)}")
    return file
