"""The bounds every input is held to, named once: ids, integers, free text, instants and days.

PostgreSQL's ``bigint`` is int64 and Python's int is not: an id of 2**63 reached asyncpg and
came back as a 500 (``OverflowError``). A year-9999 date overflowed ``date + timedelta`` in a
report. A NUL character is refused by PostgreSQL's ``text`` (``CharacterNotInRepertoireError``).
Every id and integer a caller sends is therefore bounded here, in the types the OpenAPI
document is generated from, so a client sees the bound and a fuzzer tests it:

- bodies (msgspec Structs) use the ``msgspec.Meta`` aliases (``Id``, ``Int64``, ``Text*``);
- path and query parameters use the ``Parameter`` aliases (``PathId``, ``QueryId``,
  ``QueryLimit``): Litestar reads ``Parameter`` for parameters and ignores ``msgspec.Meta``.

NUL characters in JSON bodies, query strings and paths are refused once for every route by
``kuekan.app.input_guard_middleware``; the text aliases bound lengths. ``ID_MAX`` is 2**62, not
2**63 - 1: the OpenAPI document carries bounds as JSON numbers, and 2**63 - 1 is not a double,
so it would be published as 2**63 — a value the service refuses.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import msgspec
from litestar.params import Parameter

from kuekan.kit.years import YEAR_MAX, YEAR_MIN, out_of_range

ID_MAX = 2**62
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

# Ids of rows (bigint identity columns start at 1).
Id = Annotated[int, msgspec.Meta(ge=1, le=ID_MAX)]
# Any other integer that reaches a bigint column.
Int64 = Annotated[int, msgspec.Meta(ge=-ID_MAX, le=ID_MAX)]

PathId = Annotated[int, Parameter(ge=1, le=ID_MAX)]
QueryId = Annotated[int | None, Parameter(ge=1, le=ID_MAX)]
# The setting page_limit_max (<= 1000) is the real bound; this one keeps huge numbers out.
QueryLimit = Annotated[int | None, Parameter(ge=1, le=1000)]
QueryText = Annotated[str | None, Parameter(max_length=200)]
QueryCursor = Annotated[str | None, Parameter(max_length=64)]

# Free text, by what it is. Labels name things, reasons explain an admin's act, bodies are
# messages to members. Lengths are characters (Thai text is 3 bytes a character in UTF-8).
Label = Annotated[str, msgspec.Meta(min_length=1, max_length=120)]
Reason = Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
Note = Annotated[str, msgspec.Meta(max_length=1000)]
MessageTitle = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
MessageBody = Annotated[str, msgspec.Meta(min_length=1, max_length=5000)]
Short = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]

# Instants and days a caller may name: business data lives between these years.
def check_instant(name: str, value: dt.datetime | None) -> None:
    """For a Struct's ``__post_init__``: msgspec turns the ValueError into a 422."""
    if out_of_range(value):
        raise ValueError(f"{name} must be between {YEAR_MIN} and {YEAR_MAX}")
