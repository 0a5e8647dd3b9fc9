"""The I/O side of analytics: ledger export, targeting runs written to the store,
simulation charts."""
