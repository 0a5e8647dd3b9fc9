"""Pricing: rule sets validated and compiled to arrays, priced by numba kernels
with a plain-Python reference twin. No I/O, no clock."""
