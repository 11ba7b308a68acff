"""Which Korat district a mission's geofence lies in, to announce it to that district's members.

A district fence (code ``district:<code>``) names its district; any other fence is placed by a
point inside its shape (:mod:`kuekan.geo.districts`).
"""

from __future__ import annotations

from typing import Any

from kuekan.geo.districts import districts

DISTRICT_FENCE_PREFIX = "district:"


def fence_district(geofence_code: str | None, geometry: Any) -> str | None:
    if geofence_code and geofence_code.startswith(DISTRICT_FENCE_PREFIX):
        return geofence_code.removeprefix(DISTRICT_FENCE_PREFIX)
    if isinstance(geometry, dict):
        try:
            return districts().of_shape(geometry)
        except (ValueError, TypeError, KeyError):
            return None
    return None
