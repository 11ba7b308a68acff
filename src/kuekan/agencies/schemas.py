"""Agency key and webhook bodies."""

from __future__ import annotations

from typing import Annotated

import msgspec

from kuekan.agencies.model import Scope
from kuekan.kit.bounds import Id, Short

AgencyName = Annotated[str, msgspec.Meta(min_length=1, max_length=120)]
Url = Annotated[str, msgspec.Meta(min_length=8, max_length=2000)]


class KeyIn(msgspec.Struct, forbid_unknown_fields=True):
    agency: AgencyName
    scopes: Annotated[list[Scope], msgspec.Meta(min_length=1, max_length=4)]


class WebhookIn(msgspec.Struct, forbid_unknown_fields=True):
    agency_key_id: Id
    url: Url
    topics: Annotated[list[Short], msgspec.Meta(min_length=1, max_length=8)]
