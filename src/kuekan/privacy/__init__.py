"""PDPA: consent with time and version, data export, erasure by pseudonymisation."""
