"""Event modules: one per chain event watchChain turns into notifications (see registry.py)."""
