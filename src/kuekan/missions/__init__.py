"""Missions: check-ins at geofences, events, purchases, actions, collections and chains."""

from kuekan.missions import refusals as refusals  # registers this domain's codes
