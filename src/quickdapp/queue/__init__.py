"""The producer side: QueueManager (submit, schedules, actions on jobs, health) and the reads
of the queue the dashboard and the CLI show."""
