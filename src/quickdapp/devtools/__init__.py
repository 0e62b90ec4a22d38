"""Local services for development and tests: Redis (and later a chain)."""
