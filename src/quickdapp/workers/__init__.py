"""The consumer side: the supervisor, worker processes, the processor that runs each attempt
between the attempt hooks, heartbeats and the audit of stalled attempts."""
