"""Shopping-list ids (``ListOffersResponse.list_id``), shared by both stores.

A list id is ``SL-`` and 26 characters of the Crockford base-32 alphabet (0-9 and A-Z without
I, L, O, U): 130 random bits from :mod:`secrets`, so it reveals nothing of the member and
cannot be guessed, and every character is in the QR code's alphanumeric mode (a small code
that every lane scanner reads). Each member has one, drawn on the first
:meth:`server.store.base.Store.shopping_list_id` and kept; the stores map it back to the member
(:meth:`server.store.base.Store.list_member`).
"""

from __future__ import annotations

import re
import secrets

PREFIX = "SL-"
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base 32
RANDOM_CHARS = 26  # 130 bits
LENGTH = len(PREFIX) + RANDOM_CHARS  # 29
MAX_CHARS = 32  # the bound a request's shopping_list_id is checked against
_FORM = re.compile(rf"{PREFIX}[{ALPHABET}]{{{RANDOM_CHARS}}}")


def draw() -> str:
    """A new random list id."""
    return PREFIX + "".join(secrets.choice(ALPHABET) for _ in range(RANDOM_CHARS))


def well_formed(list_id: str) -> bool:
    """Whether ``list_id`` has the form of a list id (it may still be no member's list)."""
    return _FORM.fullmatch(list_id) is not None


__all__ = ["ALPHABET", "LENGTH", "MAX_CHARS", "PREFIX", "draw", "well_formed"]
