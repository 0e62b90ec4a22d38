"""The web server: health endpoints, the /admin/queues dashboard and /metrics."""
