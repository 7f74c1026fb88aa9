"""State stores: runs, transfers, steps, events and locks (README: "State")."""
