"""The playbook engine: contexts, ordering, locks and results."""
