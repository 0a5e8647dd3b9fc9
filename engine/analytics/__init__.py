"""Analytics over purchase history: the history schema, targeting, playbooks,
reports and simulation. Pure functions over polars frames; no I/O beyond the files named."""
