"""Pure helpers (clock, ids, geo math): no I/O."""
