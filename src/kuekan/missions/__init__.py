"""Missions: check-ins at geofences, events, purchases, actions, collections and chains."""
