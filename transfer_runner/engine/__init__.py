"""The playbook engine: waves, ordering, leases and results. It runs the modules
(`transfer_runner.modules`), which get their context from `modules.context`."""
