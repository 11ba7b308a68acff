"""The double-entry points ledger (DESIGN.md §3)."""
