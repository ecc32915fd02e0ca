"""The whole schema: every table on the one metadata, for the migrations and the check
that they match it. The tables live by what they hold, in `tables.py` and
`reference_tables.py`."""

from __future__ import annotations

from tidings.store import reference_tables as reference_tables
from tidings.store.tables import metadata as metadata

__all__ = ["metadata", "reference_tables"]
