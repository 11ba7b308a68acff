"""Transactional outbox → job queue: relay, idempotent handlers, retries, dead letters.

A request writes an outbox row in the transaction of its effect; :mod:`kuekan.outbox.relay`
turns rows into queue jobs whose id is the outbox id; :func:`kuekan.outbox.jobs.handle_outbox`
runs the topic's handlers exactly once per row (``outbox_processed``), retrying with capped
exponential backoff and dead-lettering after ``outbox_max_tries``.
"""

from kuekan.outbox import refusals as refusals  # registers this domain's codes
