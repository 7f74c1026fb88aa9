"""State stores: runs, transfers, steps, events and locks (SPEC §7)."""
