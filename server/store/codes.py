"""Coupon code batches (``CampaignService.CreateCouponCodes``): the records both stores keep,
the code status, and drawing random codes fast.

A batch is generated in chunks (each one atomic step in its store), so a crash part way leaves
a batch with fewer codes than asked; the same request again draws the rest. Codes are unique
across every batch: a drawn code that exists already is left out and drawn again (counted in
``collisions``).
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Callable
from dataclasses import astuple, dataclass

import numpy as np

DEFAULT_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"  # no 0/O, 1/I/L
LOOK_ALIKES = frozenset("0O1IL")
MIN_LENGTH = 8  # random characters when the length is derived
ENTROPY_MARGIN_BITS = 20  # alphabet^length >= count * 2^20
CHUNK = 50_000  # codes per atomic write


STATUSES = ("UNUSED", "USED", "USED_UP", "EXPIRED")


@dataclass(frozen=True, slots=True)
class CodeBatch:
    """A batch as asked (checked): its fingerprint decides idempotency."""

    batch_id: str
    offer_id: str
    count: int
    prefix: str
    pattern: str  # "#" = one random character; "" = ``length`` random characters
    length: int  # random characters per code
    alphabet: str
    uses_per_code: int
    per_member: bool
    valid_from_us: int
    valid_until_us: int
    member_ids: tuple[str, ...] = ()  # code i bound to member_ids[i]; () = none bound

    def __post_init__(self) -> None:
        object.__setattr__(self, "member_ids", tuple(self.member_ids))  # a JSON list reads back

    def member_of(self, start: int, n: int) -> list[str]:
        """The members of codes ``start .. start + n - 1`` of the batch ("" = unbound)."""
        if not self.member_ids:
            return [""] * n
        return list(self.member_ids[start : start + n])

    def fingerprint(self) -> str:
        return hashlib.sha256(repr(astuple(self)).encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class BatchRecord:
    """A stored batch: ``generated`` codes so far (``count`` once complete)."""

    batch: CodeBatch
    created_us: int
    generated: int
    collisions: int


@dataclass(frozen=True, slots=True)
class CodeInfo:
    code: str
    batch_id: str  # "" = created outside a batch
    offer_id: str
    uses_per_code: int
    uses_left: int
    per_member: bool
    valid_from_us: int
    valid_until_us: int
    last_tx: str  # "" = never redeemed
    last_us: int  # 0 = never redeemed
    member_id: str = ""  # the only member who may use it; "" = anyone

    def status(self, now_us: int) -> str:
        return code_status(self.uses_left, self.uses_per_code, self.valid_until_us, now_us)


def code_status(uses_left: int, uses_per_code: int, valid_until_us: int, now_us: int) -> str:
    """UNUSED, USED, USED_UP (no uses left, expired or not) or EXPIRED (with uses left)."""
    if uses_left <= 0:
        return "USED_UP"
    if now_us >= valid_until_us:
        return "EXPIRED"
    return "USED" if uses_left < uses_per_code else "UNUSED"


def needed_length(count: int, alphabet_size: int) -> int:
    """The fewest random characters giving ``alphabet^n >= count * 2^20``."""
    bits = math.log2(max(count, 1)) + ENTROPY_MARGIN_BITS
    return math.ceil(bits / math.log2(alphabet_size) - 1e-9)


def random_slots(batch: CodeBatch) -> int:
    return batch.pattern.count("#") if batch.pattern else batch.length


def draw(batch: CodeBatch, n: int, randbytes: Callable[[int], bytes] = os.urandom) -> list[str]:
    """``n`` random codes of ``batch`` (duplicates possible, as rare as the entropy makes
    them). Characters come from the OS's CSPRNG by rejection sampling (no modulo bias)."""
    if n <= 0:
        return []
    alphabet = np.frombuffer(batch.alphabet.encode("ascii"), dtype=np.uint8)
    size = len(alphabet)
    slots = random_slots(batch)
    need = n * slots
    limit = 256 - 256 % size  # bytes below it map evenly onto the alphabet
    picked = np.empty(0, dtype=np.uint8)
    while picked.size < need:
        raw = np.frombuffer(randbytes(int((need - picked.size) * 1.15) + 64), dtype=np.uint8)
        picked = np.concatenate([picked, raw[raw < limit]])
    chars = alphabet[picked[:need] % size].reshape(n, slots)
    shape = batch.prefix + (batch.pattern or "#" * batch.length)
    out = np.empty((n, len(shape)), dtype=np.uint8)
    k = 0
    for j, c in enumerate(shape):
        if c == "#" and j >= len(batch.prefix):
            out[:, j] = chars[:, k]
            k += 1
        else:
            out[:, j] = ord(c)
    width = len(shape)
    return [s.decode("ascii") for s in out.view(f"S{width}").ravel()]


__all__ = [
    "CHUNK",
    "DEFAULT_ALPHABET",
    "LOOK_ALIKES",
    "MIN_LENGTH",
    "STATUSES",
    "BatchRecord",
    "CodeBatch",
    "CodeInfo",
    "code_status",
    "draw",
    "needed_length",
    "random_slots",
]
