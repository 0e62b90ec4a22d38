"""Job types: data models, priorities and handlers, collected in a registry."""
