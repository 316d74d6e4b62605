"""One training run: its config tree (config), the checks before it starts (validate), the
optimisation step (trainer), the loop with ticks and snapshots (loop), and what it writes
(stats_log: stats.jsonl, curves, sample grids; run_report: RUN/report.html). Checkpoints and process groups are training/checkpoint.py and training/dist.py, below
every command."""
