"""The reference evaluator: the pricing contract in plain Python, read like the
spec; the kernels' twin in tests."""
