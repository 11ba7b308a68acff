"""Geofences: pure rules (model), file import (kml) and the in-memory index (index)."""
