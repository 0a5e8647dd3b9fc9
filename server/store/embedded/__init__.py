"""The embedded store: SQLite in WAL mode, one transaction per state change."""
