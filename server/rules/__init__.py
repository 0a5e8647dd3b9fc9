"""The rule registry: published versions, the current pointer, hot reload; and
where versions live (SQLite or Redis)."""
