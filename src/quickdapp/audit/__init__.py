"""The audit trail: one `worker_jobs` row per attempt and its rollups (store), written by a hook,
read by history pages, metrics and series, trimmed by cleanup."""
