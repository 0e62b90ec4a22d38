"""Worker processes: each runs a bullmq Worker on the `jobs` queue."""
