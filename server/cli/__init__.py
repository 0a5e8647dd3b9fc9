"""The ``loyalty`` command line: offline pricing, client commands, serve, demo and
analytics."""
