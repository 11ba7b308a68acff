"""Refuse NUL characters in paths, query strings and JSON bodies, once for every route.

PostgreSQL's ``text`` and ``jsonb`` cannot hold U+0000: a NUL that reached a query came back as
a 500 (``CharacterNotInRepertoireError``, ``UntranslatableCharacterError``). Bounding each
string field would leave nested values (lists of codes, GeoJSON properties) and query
parameters to chance, so the check is made here on the raw request:

- the path and the query string: a decoded NUL or its percent-encoding ``%00``;
- JSON bodies: the escape ``\\u0000`` (a raw NUL byte is not valid JSON and msgspec refuses it),
  found while the body streams through ``receive`` — an escaped backslash before ``u0000`` is
  text, not a NUL, and passes. The refusal is raised from ``receive`` as a DomainError, so the
  app's exception handler answers it as 422 problem+json like any other validation failure.

Non-JSON bodies (KML/KMZ uploads, which are binary) are left to their own parsers.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, Scope, Send

from kuekan.errors import DomainError
from kuekan.web import PROBLEM_JSON

# An odd number of backslashes before "u0000": the last one starts the escape.
JSON_NUL = re.compile(rb"(?:^|[^\\])(?:\\\\)*\\u0000")
# Bytes of the previous chunk kept so an escape split across two chunks is still found.
CARRY_BYTES = 64
NUL_EN = "NUL characters are not accepted"
NUL_TH = "ไม่รับอักขระ NUL ในข้อมูล"


def nul_refused() -> DomainError:
    return DomainError("validation_failed", 422, NUL_EN, "ข้อมูลที่ส่งมาไม่ถูกต้อง: " + NUL_TH)


def _in_url(scope: Scope) -> bool:
    query = scope.get("query_string", b"")
    return "\x00" in scope.get("path", "") or b"%00" in query or b"\x00" in query


def _is_json(scope: Scope) -> bool:
    for name, value in scope.get("headers", []):
        if name == b"content-type":
            return b"json" in value.lower()
    return False


async def _refuse(scope: Scope, send: Send) -> None:
    body = msgspec.json.encode(nul_refused().to_problem(scope.get("path")))
    start: Any = {"type": "http.response.start", "status": 422,
                  "headers": [(b"content-type", PROBLEM_JSON.encode()),
                              (b"content-length", str(len(body)).encode())]}
    await send(start)
    end: Any = {"type": "http.response.body", "body": body}
    await send(end)


def input_guard_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        if _in_url(scope):
            await _refuse(scope, send)
            return
        if not _is_json(scope):
            await app(scope, receive, send)
            return
        carry = b""

        async def checked_receive() -> Any:
            nonlocal carry
            message = await receive()
            chunk = message.get("body", b"") if message["type"] == "http.request" else b""
            if chunk:
                window = carry + chunk
                if b"\\u0000" in window and JSON_NUL.search(window):
                    raise nul_refused()
                carry = window[-CARRY_BYTES:]
            return message

        await app(scope, checked_receive, send)

    return middleware
