"""The streaming patch loader: stored bytes -> decoded windows -> patches -> typed batches, split
over ranks and workers (decode, sampler, batch, pipeline), and what a user looks at (preview)."""
