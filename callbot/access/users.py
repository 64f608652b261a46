"""Users, their passwords (argon2id), console sessions and API tokens (expiring, revocable), in the database.

Tokens (session cookies, API tokens) are random 256-bit values shown once; only their SHA-256 is stored, so a
copy of the database does not let anyone log in.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import Engine, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from callbot.errors import CallbotError, StorageError
from callbot.storage.database import in_transaction
from callbot.storage.tables import ApiTokenRow, SessionRow, UserRow

Role = Literal["admin", "ops", "trainee", "acd"]
ROLES: tuple[Role, ...] = ("admin", "ops", "trainee", "acd")
"""``acd``: a program (an ACD, a softphone) reporting agent statuses and reading queue state, nothing else."""
SESSION_LIFETIME = timedelta(hours=12)
TOKEN_LIFETIME = timedelta(days=365)
"""API tokens expire after this unless created with another lifetime."""
LAST_USE_PRECISION = timedelta(minutes=1)
"""A token's last use is written at most this often (not on every request)."""
TOKEN_ID_LENGTH = 12
"""A token is named by the first characters of its SHA-256 (never by the token itself)."""
MIN_PASSWORD_LENGTH = 12

_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
_HASHER = PasswordHasher()
_DUMMY_HASH = _HASHER.hash("no such user: verify anyway so that timing does not tell")
T = TypeVar("T")


class AccessError(CallbotError):
    """A user, password or token is refused; the message is safe to show."""


@dataclass(frozen=True, slots=True)
class User:
    id: int
    username: str
    display_name: str
    role: Role
    language: str

    @property
    def label(self) -> str:
        return self.display_name or self.username


@dataclass(frozen=True, slots=True)
class TokenInfo:
    id: str
    username: str
    name: str
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None

    def state(self, now: datetime | None = None) -> str:
        """``active``, ``expired`` or ``revoked``."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= (now or datetime.now(UTC)):
            return "expired"
        return "active"


@dataclass(frozen=True, slots=True)
class LoginSession:
    token: str
    csrf_token: str
    user: User
    expires_at: datetime


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_password_strength(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccessError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")


class UserStore:
    def __init__(self, engine: Engine) -> None:
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    # --- users -----------------------------------------------------------------------------------------------

    def add_user(self, username: str, password: str, role: Role, display_name: str = "", language: str = "fr") -> User:
        if not _USERNAME.match(username):
            raise AccessError(f"'{username}': a username is 2-64 lowercase letters, digits, '.', '_' or '-'")
        if role not in ROLES:
            raise AccessError(f"unknown role '{role}'; use one of {', '.join(ROLES)}")
        check_password_strength(password)
        row = UserRow(
            username=username,
            display_name=display_name[:128],
            role=role,
            password_hash=_HASHER.hash(password),
            language=language if language in ("fr", "en") else "fr",
            created_at=datetime.now(UTC),
            failed_logins=0,
            active=True,
        )
        try:
            self._run(lambda s: s.add(row))
        except StorageError as exc:
            if isinstance(exc.__cause__, IntegrityError):
                raise AccessError(f"user '{username}' already exists") from exc
            raise
        return _user(row)

    def set_password(self, username: str, password: str) -> None:
        """A new password; the user's console sessions and API tokens end (whoever knew the old one is out)."""
        check_password_strength(password)

        def change(s: Session) -> None:
            row = self._by_name(s, username)
            row.password_hash = _HASHER.hash(password)
            row.failed_logins, row.locked_until = 0, None
            _end_access(s, row.id)

        self._run(change)

    def set_active(self, username: str, active: bool) -> None:
        """Disable (or enable again) a user: a disabled user cannot log in, and their sessions and API tokens
        end at once (enabling does not bring the tokens back)."""

        def change(s: Session) -> None:
            row = self._by_name(s, username)
            row.active = active
            if not active:
                _end_access(s, row.id)

        self._run(change)

    def is_active(self, username: str) -> bool:
        return self._run(lambda s: self._by_name(s, username).active)

    def set_language(self, user_id: int, language: str) -> None:
        def update(s: Session) -> None:
            row = s.get(UserRow, user_id)
            if row is not None and language in ("fr", "en"):
                row.language = language

        self._run(update)

    def list_accounts(self) -> list[tuple[User, bool]]:
        """Every user and whether they are enabled."""
        return self._run(
            lambda s: [(_user(r), r.active) for r in s.scalars(select(UserRow).order_by(UserRow.username))]
        )

    def list_users(self) -> list[User]:
        return self._run(lambda s: [_user(r) for r in s.scalars(select(UserRow).order_by(UserRow.username))])

    def count_users(self) -> int:
        return self._run(lambda s: int(s.scalar(select(func.count()).select_from(UserRow)) or 0))

    def get_user(self, user_id: int) -> User | None:
        return self._run(lambda s: _user(row) if (row := s.get(UserRow, user_id)) and row.active else None)

    # --- login -----------------------------------------------------------------------------------------------

    def login(self, username: str, password: str) -> LoginSession:
        """A new session for valid credentials; the error never says whether the user exists (the delays
        after repeated failures are the login page's, per client: callbot/access/throttle.py)."""
        now = datetime.now(UTC)

        def attempt(s: Session) -> LoginSession | str:
            row = s.scalar(select(UserRow).where(UserRow.username == username.strip().lower()))
            if row is None or not row.active:
                _verify(_DUMMY_HASH, password)
                return "unknown or wrong password"
            if not _verify(row.password_hash, password):
                row.failed_logins += 1  # a count since the last good login; the delays are LoginThrottle's
                return "unknown or wrong password"
            row.failed_logins, row.locked_until = 0, None
            if _HASHER.check_needs_rehash(row.password_hash):
                row.password_hash = _HASHER.hash(password)
            token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
            expires = now + SESSION_LIFETIME
            s.add(SessionRow(id=token_hash(token), user_id=row.id, csrf_token=csrf, created_at=now, expires_at=expires))
            return LoginSession(token, csrf, _user(row), expires)

        result = self._run(attempt)
        if isinstance(result, str):
            raise AccessError("unknown user or wrong password")
        return result

    def session(self, token: str) -> LoginSession | None:
        now = datetime.now(UTC)

        def load(s: Session) -> LoginSession | None:
            row = s.get(SessionRow, token_hash(token))
            if row is None or row.expires_at <= now:
                return None
            user = s.get(UserRow, row.user_id)
            if user is None or not user.active:
                return None
            return LoginSession(token, row.csrf_token, _user(user), row.expires_at)

        return self._run(load)

    def logout(self, token: str) -> None:
        self._run(lambda s: s.execute(delete(SessionRow).where(SessionRow.id == token_hash(token))))

    # --- API tokens ------------------------------------------------------------------------------------------

    def new_api_token(self, username: str, name: str, lifetime: timedelta | None = TOKEN_LIFETIME) -> str:
        """A new API token acting as ``username`` (with its role), valid for ``lifetime`` (None: until revoked);
        shown once, stored hashed."""
        token = "cbt_" + secrets.token_urlsafe(32)
        now = datetime.now(UTC)

        def create(s: Session) -> None:
            row = self._by_name(s, username)
            if not row.active:
                raise AccessError(f"user '{username}' is disabled")
            expires = now + lifetime if lifetime is not None else None
            s.add(ApiTokenRow(id=token_hash(token), user_id=row.id, name=name[:64], created_at=now, expires_at=expires))

        self._run(create)
        return token

    def api_user(self, token: str) -> User | None:
        now = datetime.now(UTC)

        def load(s: Session) -> User | None:
            row = s.get(ApiTokenRow, token_hash(token))
            if row is None or row.revoked_at is not None or (row.expires_at is not None and row.expires_at <= now):
                return None
            user = s.get(UserRow, row.user_id)
            if user is None or not user.active:
                return None
            if row.last_used_at is None or now - row.last_used_at >= LAST_USE_PRECISION:
                row.last_used_at = now
            return _user(user)

        return self._run(load)

    def list_tokens(self, username: str | None = None) -> list[TokenInfo]:
        """Every API token (of ``username``), newest first, with its last use and state."""

        def load(s: Session) -> list[TokenInfo]:
            query = select(ApiTokenRow, UserRow.username).join(UserRow, UserRow.id == ApiTokenRow.user_id)
            if username is not None:
                query = query.where(UserRow.username == self._by_name(s, username).username)
            rows = s.execute(query.order_by(ApiTokenRow.created_at.desc())).all()
            return [_token_info(row, name) for row, name in rows]

        return self._run(load)

    def revoke_token(self, token_id: str) -> TokenInfo:
        """Revoke the token whose id (``callbot users token list``) is ``token_id``; revoking twice is harmless."""
        token_id = token_id.strip().lower()
        if len(token_id) != TOKEN_ID_LENGTH or not re.fullmatch(r"[0-9a-f]+", token_id):
            raise AccessError(f"'{token_id[:64]}' is not a token id (12 hex digits, from `callbot users token list`)")

        def revoke(s: Session) -> TokenInfo:
            row = s.scalar(select(ApiTokenRow).where(ApiTokenRow.id.startswith(token_id)))
            if row is None:
                raise AccessError(f"no token '{token_id}'; `callbot users token list` shows them")
            row.revoked_at = row.revoked_at or datetime.now(UTC)
            user = s.get(UserRow, row.user_id)
            return _token_info(row, user.username if user else "?")

        return self._run(revoke)

    # --- plumbing --------------------------------------------------------------------------------------------

    def _by_name(self, s: Session, username: str) -> UserRow:
        row = s.scalar(select(UserRow).where(UserRow.username == username))
        if row is None:
            raise AccessError(f"no user '{username}'; `callbot users list` shows them")
        return row

    def _run(self, work: Callable[[Session], T]) -> T:
        return in_transaction(self._sessions, work)

    async def arun(self, work: Callable[[], T]) -> T:
        """Run one of the blocking methods off the event loop (argon2 is deliberately slow)."""
        return await asyncio.to_thread(work)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def _end_access(s: Session, user_id: int) -> None:
    """End a user's console sessions and revoke their API tokens."""
    s.execute(delete(SessionRow).where(SessionRow.user_id == user_id))
    s.execute(
        update(ApiTokenRow)
        .where(ApiTokenRow.user_id == user_id, ApiTokenRow.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
    )


def _token_info(row: ApiTokenRow, username: str) -> TokenInfo:
    return TokenInfo(
        row.id[:TOKEN_ID_LENGTH], username, row.name, row.created_at, row.last_used_at, row.expires_at, row.revoked_at
    )


def _user(row: UserRow) -> User:
    return User(row.id, row.username, row.display_name, row.role, row.language)  # type: ignore[arg-type]
