"""The gRPC edge: server assembly, servicers, request/response conversion,
interceptors (API keys, access log, error mapping), metrics, traces and logs."""
