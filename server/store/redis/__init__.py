"""The Redis store: one consistent read per request, one Lua script per state change."""
