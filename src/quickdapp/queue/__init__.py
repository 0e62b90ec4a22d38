"""The BullMQ side: Redis connections, the `jobs` queue, QueueManager and the processor."""
