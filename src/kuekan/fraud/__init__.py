"""Fraud rules on outbox events, and their outcomes: alerts, held points, holds, reviews,
strikes, blacklist. Rules are pure (:mod:`kuekan.fraud.model`); the service applies them."""

from kuekan.fraud import refusals as refusals  # registers this domain's codes
