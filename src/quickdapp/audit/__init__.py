"""The audit trail: one `worker_jobs` row per attempt, written by a hook, read by history queries."""
