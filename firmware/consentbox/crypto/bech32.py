"""Bech32 (BIP-173, not Bech32m) as age uses it: no length limit, and either all lower or all upper case.

age encodes recipients in lower case (`age1…`) and secret keys in upper case
(`AGE-SECRET-KEY-1…`); the checksum is always computed over the lower-case form.
"""

from consentbox.crypto.errors import KeyFormatError

_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_VALUES = {char: value for value, char in enumerate(_CHARSET)}
_GENERATOR = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
_CHECKSUM_LENGTH = 6


def _polymod(values: list[int]) -> int:
    check = 1
    for value in values:
        top = check >> 25
        check = (check & 0x1FFFFFF) << 5 ^ value
        for bit, generator in enumerate(_GENERATOR):
            if top >> bit & 1:
                check ^= generator
    return check


def _expand_hrp(hrp: str) -> list[int]:
    return [ord(char) >> 5 for char in hrp] + [0] + [ord(char) & 31 for char in hrp]


def _regroup(data: bytes | list[int], from_bits: int, to_bits: int, *, pad: bool) -> list[int]:
    accumulator = 0
    bits = 0
    result = []
    mask = (1 << to_bits) - 1
    for value in data:
        accumulator = accumulator << from_bits | value
        bits += from_bits
        while bits >= to_bits:
            bits -= to_bits
            result.append(accumulator >> bits & mask)
    if pad:
        if bits:
            result.append(accumulator << (to_bits - bits) & mask)
    elif bits >= from_bits or accumulator << (to_bits - bits) & mask:
        # Decoding: leftover bits must be fewer than one input group and all zero, or the
        # same bytes would have more than one encoding.
        raise KeyFormatError("bech32 data has invalid padding bits")
    return result


def encode(hrp: str, data: bytes, *, upper: bool = False) -> str:
    """Encode `data` under the human-readable part `hrp`; `upper` gives the all-upper-case form."""
    hrp = hrp.lower()
    words = _regroup(data, 8, 5, pad=True)
    checksum = _polymod(_expand_hrp(hrp) + words + [0] * _CHECKSUM_LENGTH) ^ 1
    words += [checksum >> 5 * (_CHECKSUM_LENGTH - 1 - i) & 31 for i in range(_CHECKSUM_LENGTH)]
    text = hrp + "1" + "".join(_CHARSET[word] for word in words)
    return text.upper() if upper else text


def decode(text: str) -> tuple[str, bytes]:
    """Decode a Bech32 string into its lower-case human-readable part and its data bytes."""
    if text.lower() != text and text.upper() != text:
        raise KeyFormatError("bech32 string mixes upper and lower case")
    text = text.lower()
    separator = text.rfind("1")
    if separator < 1 or len(text) - separator - 1 < _CHECKSUM_LENGTH:
        raise KeyFormatError("bech32 string has no human-readable part or is too short")
    hrp, tail = text[:separator], text[separator + 1 :]
    if any(not 33 <= ord(char) <= 126 for char in hrp):
        raise KeyFormatError("bech32 human-readable part has characters outside printable ASCII")
    try:
        words = [_VALUES[char] for char in tail]
    except KeyError:
        # The character itself is not quoted: the string may be a secret key.
        raise KeyFormatError("bech32 data has a character outside the bech32 alphabet") from None
    if _polymod(_expand_hrp(hrp) + words) != 1:
        raise KeyFormatError("bech32 checksum does not match: the string was mistyped or cut")
    return hrp, bytes(_regroup(words[:-_CHECKSUM_LENGTH], 5, 8, pad=False))
