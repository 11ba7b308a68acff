"""Geofences: pure rules (model), file import (kml) and the in-memory index (index)."""

from kuekan.geo import refusals as refusals  # registers this domain's codes
