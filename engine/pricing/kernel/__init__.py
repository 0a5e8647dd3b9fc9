"""The numba kernels: one basket (``price_one``) or many (``price_many``) over the
compiled arrays of :mod:`engine.pricing.layout`."""
