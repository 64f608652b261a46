"""Storage: calls and their turns, in SQLite by default or PostgreSQL, behind Alembic migrations."""
