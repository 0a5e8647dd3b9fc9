"""Money and rates as a marketer reads and types them: ``29.90`` in the programme's currency
(stored as 2990 minor units), ``20`` % (stored as 2000 bps). Integers only, no floats."""

from __future__ import annotations

import re

# ISO 4217 minor-unit digits where they are not 2
_DIGITS = {
    **dict.fromkeys(("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG"), 0),
    **dict.fromkeys(("RWF", "UGX", "UYI", "VND", "VUV", "XAF", "XOF", "XPF"), 0),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
}
_NUMBER = re.compile(r"^([+-]?)(\d*)(?:\.(\d*))?$")


def minor_digits(currency: str) -> int:
    """Digits after the point in ``currency`` (2 when unknown or empty)."""
    return _DIGITS.get(currency.upper(), 2)


def parse_decimal(text: str, digits: int) -> int:
    """``text`` (e.g. ``"29.9"``) times 10**digits, exactly; ValueError when it is not a number
    or has more decimals than ``digits``."""
    m = _NUMBER.match(text.strip().replace(",", "").replace("_", ""))
    if m is None or not (m.group(2) or m.group(3)):
        raise ValueError("must be a number, e.g. 12.50")
    sign, whole, frac = str(m.group(1)), str(m.group(2) or "0"), str(m.group(3) or "")
    if len(frac) > digits:
        raise ValueError(f"at most {digits} decimal place(s)" if digits else "a whole number")
    scale: int = 10**digits
    value = int(whole) * scale + int(frac.ljust(digits, "0") or "0")
    return -value if sign == "-" else value


def format_decimal(value: int, digits: int) -> str:
    """``value / 10**digits`` written exactly, with all ``digits`` decimals."""
    sign = "-" if value < 0 else ""
    whole, frac = divmod(abs(value), 10**digits)
    return f"{sign}{whole}.{frac:0{digits}d}" if digits else f"{sign}{whole}"


def parse_money(text: str, currency: str) -> int:
    """Minor units of an amount typed in major units."""
    return parse_decimal(text, minor_digits(currency))


def money_input(minor: int, currency: str) -> str:
    """The text a money input shows for ``minor`` units (``2990`` -> ``29.90``)."""
    return format_decimal(minor, minor_digits(currency))


def money(minor: int, currency: str = "") -> str:
    """``2990, "CNY"`` -> ``CNY 29.90`` (thousands separated); for pages."""
    digits = minor_digits(currency)
    sign = "−" if minor < 0 else ""
    whole, frac = divmod(abs(minor), 10**digits)
    text = f"{whole:,}" + (f".{frac:0{digits}d}" if digits else "")
    return f"{sign}{currency} {text}" if currency else f"{sign}{text}"


def parse_percent(text: str) -> int:
    """Basis points of a percentage typed as ``20`` or ``12.5`` (at most 2 decimals)."""
    return parse_decimal(text, 2)


def percent_input(bps: int) -> str:
    """``2000`` -> ``20``, ``1250`` -> ``12.5``."""
    text = format_decimal(bps, 2)
    return text.rstrip("0").rstrip(".") if "." in text else text


def percent(bps: int) -> str:
    """``2000`` -> ``20%``; for pages."""
    return percent_input(bps) + "%"
