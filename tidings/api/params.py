"""Query parameters of the list routes: the page size and the cursors, whose form the
OpenAPI document states exactly (`domain/cursor.py`), so a well-formed value is a place in
the list and anything else is refused by validation, as any other bad parameter."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from tidings.domain.cursor import CURSOR_PATTERN, DELIVERY_CURSOR_PATTERN
from tidings.domain.template import KEY_CURSOR_PATTERN

_NEXT = "`next_cursor` of the previous page (opaque; any value of this form is a place "
_NEXT += "in the list)"

Limit = Annotated[int, Query(ge=1, le=100)]
Cursor = Annotated[str | None, Query(max_length=512, pattern=CURSOR_PATTERN,
                                     description=_NEXT)]
DeliveryCursor = Annotated[str | None, Query(max_length=512, pattern=DELIVERY_CURSOR_PATTERN,
                                             description=_NEXT)]
KeyCursor = Annotated[str | None, Query(max_length=512, pattern=KEY_CURSOR_PATTERN,
                                        description=_NEXT)]
