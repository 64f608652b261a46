"""Engine creation and migrations."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from callbot.errors import StorageError

_MIGRATIONS = Path(__file__).with_name("migrations")

MAX_PAGE = 1_000_000
"""The highest page number a list accepts: far beyond any history, and its offset still fits SQL's 64-bit
integers (a larger one is refused with 422 at the edge instead of overflowing in the driver)."""


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite files get WAL and foreign keys, PostgreSQL a pre-pinged pool."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 15})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)


def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


MIGRATION_LOCK = 0x63616C6C626F74
"""The PostgreSQL advisory lock held while migrating ("callbot"): instances starting together migrate once."""


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (all migrations by default). On PostgreSQL, under an advisory lock for
    the transaction: a second instance starting at the same instant waits, then finds the schema up to date."""
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    try:
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    except SQLAlchemyError as exc:
        raise StorageError(f"database migration failed on {engine.url.render_as_string()}: {exc}") from exc


T = TypeVar("T")


def in_transaction(sessions: sessionmaker[Session], work: Callable[[Session], T]) -> T:
    """Run ``work`` in one transaction (committed, or rolled back on error); database errors become
    StorageError."""
    try:
        with sessions.begin() as session:
            return work(session)
    except SQLAlchemyError as exc:
        raise StorageError(f"database error: {exc.__class__.__name__}: {str(exc).splitlines()[0]}") from exc
