"""Slim client for the loyalty engine's gRPC API.

The messages and stubs are ``loyalty.v1`` (``checkout_pb2``, ``checkout_pb2_grpc``, ...); this
package adds the channel (TLS, API key) and the checkout protocol with safe retries::

    from loyalty.v1 import checkout_pb2
    from loyalty_client import CheckoutClient

    with CheckoutClient.connect("loyalty:443", api_key=KEY, root_certificates="ca.pem") as c:
        quote = c.evaluate(basket)
        done = c.commit("SH-001-lane3-000123", basket, expected_payable_minor=quote.payable_minor)
"""

from __future__ import annotations

from loyalty_client.channel import API_KEY_HEADER, DEFAULT_OPTIONS, ApiKeyInterceptor, open_channel
from loyalty_client.checkout import CheckoutClient
from loyalty_client.retry import (
    NO_RETRY,
    RETRYABLE_CODES,
    RetriesExhausted,
    RetryEvent,
    RetryPolicy,
    call_with_retries,
)

__version__ = "0.3.0"

__all__ = [
    "API_KEY_HEADER",
    "DEFAULT_OPTIONS",
    "NO_RETRY",
    "RETRYABLE_CODES",
    "ApiKeyInterceptor",
    "CheckoutClient",
    "RetriesExhausted",
    "RetryEvent",
    "RetryPolicy",
    "call_with_retries",
    "open_channel",
]
