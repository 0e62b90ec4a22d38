"""The SQL side: engine, schema, audit trail and migrations."""
