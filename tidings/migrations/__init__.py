"""Alembic migrations, run with `tidings migrate` (and by `serve` in the embedded mode)."""
