"""The playbook engine, by reason to change: `runner` (waves, forks, stop, failure budget),
`transfer` (one transfer), `fast_path` (completed transfers, I5), `task` (one task and the
checks before a write), `leases` (lease and heartbeat), `waves`, `options`, `reporter`,
`results`. It runs the modules (`transfer_runner.modules`)."""
