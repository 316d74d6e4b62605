"""One training run: its config tree (config), the checks before it starts (validate), process
groups (dist), the optimisation step (trainer), the loop with ticks and snapshots (loop), and
what it writes (checkpoint, report)."""
