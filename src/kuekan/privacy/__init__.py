"""PDPA: consent with time and version, data export, erasure by pseudonymisation."""

from kuekan.privacy import refusals as refusals  # registers this domain's codes
