"""The first administrator: created at the first start, so that a fresh install can be used at once."""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

from callbot.access.users import AccessError, UserStore

log = logging.getLogger(__name__)
INITIAL_PASSWORD_FILE = "initial-admin-password"


def ensure_first_admin(users: UserStore, data_dir: Path) -> None:
    """With no user at all, create ``admin`` with a random password written (owner-readable only) to
    ``data_dir/initial-admin-password``; never logged, never in the repository."""
    if users.count_users() > 0:
        return
    password = secrets.token_urlsafe(18)
    try:
        users.add_user("admin", password, "admin", "Administrator")
    except AccessError:
        # another instance sharing the database created it at the same instant: its data folder has the file
        log.warning("first start: the user 'admin' was created by another instance sharing the database")
        return
    path = data_dir / INITIAL_PASSWORD_FILE
    data_dir.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(password + "\n")
    log.warning(
        "first start: created the user 'admin'; its password is in %s. Log in at /login, then change it with "
        "`callbot users passwd admin` and delete the file",
        path,
    )
