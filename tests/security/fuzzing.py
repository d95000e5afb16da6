"""What the fuzz tests of the two file readers share: numbers spelt several ways, bad
cells, and random damage to the bytes of a text file."""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import strategies as st


def spell(value: float, style: int) -> str:
    """``value`` as text in one of several spellings that ``float()``, pandas and
    pyarrow all read: repr, 17 significant digits, exponent (upper case when
    negative), a plain integer, or with a leading ``+``."""
    if style == 1:
        return f"{value:.17g}"
    if style == 2:
        return f"{value:e}".upper() if value < 0 else f"{value:e}"
    if style == 3 and value.is_integer() and abs(value) < 1e18:
        return str(int(value))
    if style == 4 and not str(value).startswith("-"):
        return f"+{value!r}"
    return repr(value)


#: cells both readers refuse: not numbers, not finite, or in spellings they do not take
#: (a decimal comma, hex, Unicode digits and minus sign)
BAD_CELLS = [
    "",
    " ",
    "abc",
    "nan",
    "NaN",
    "inf",
    "-inf",
    "Infinity",
    "1,5",
    "0x10",
    "1e400",
    "-1e999",
    "--1",
    "1.2.3",
    "\u0661\u0662",  # Arabic-Indic digits: float() reads them, the readers do not
    "TRUE",
    "#",
    "1 2",
    "None",
    "NULL",
    "\u22121",  # a minus sign, not a hyphen
]

#: every kind :func:`damage` knows; a test samples the ones it wants
DAMAGE_KINDS = (
    "truncate",
    "insert",
    "delete",
    "flip",
    "nul",
    "quote",
    "newline",
    "cr",
    "separator",
)


def damage(
    raw: bytes,
    how: str,
    data: st.DataObject,
    *,
    newlines: Sequence[bytes],
    insert_max: int = 8,
    separator: bytes = b",",
) -> bytes:
    """``raw`` with one damage of kind ``how`` at a drawn position: cut there, insert
    1 to ``insert_max`` random bytes, delete 1 to 8 bytes, flip one bit, or insert a
    NUL, a quote, one of ``newlines``, a bare CR or ``separator``."""
    out = bytearray(raw)
    at = data.draw(st.integers(0, len(out)))
    if how == "truncate":
        del out[at:]
    elif how == "insert":
        out[at:at] = data.draw(st.binary(min_size=1, max_size=insert_max))
    elif how == "delete":
        del out[at : at + data.draw(st.integers(1, 8))]
    elif how == "flip":
        if out:
            out[min(at, len(out) - 1)] ^= 1 << data.draw(st.integers(0, 7))
    elif how == "nul":
        out[at:at] = b"\x00"
    elif how == "quote":
        out[at:at] = b'"'
    elif how == "newline":
        out[at:at] = data.draw(st.sampled_from(list(newlines)))
    elif how == "cr":
        out[at:at] = b"\r"
    elif how == "separator":
        out[at:at] = separator
    else:
        raise ValueError(f"unknown damage {how!r}")
    return bytes(out)
