"""Errors of the age encryption layer.

Every leaf is also a ValueError: each one means "these bytes or this string are not what they
claim to be", which is what callers that only know the builtins expect to catch.
"""

from consentbox.core.errors import ConsentBoxError


class AgeError(ConsentBoxError):
    """Root of every error raised while reading or writing age files and keys."""


class HeaderError(AgeError, ValueError):
    """The age header does not parse, or a recipient stanza addressed to us is malformed."""


class NoIdentityMatch(AgeError, ValueError):
    """None of the given identities can unwrap the file key of this file."""


class HeaderMacError(AgeError, ValueError):
    """The header MAC does not match: the header was edited or belongs to another file."""


class PayloadError(AgeError, ValueError):
    """A payload chunk failed authentication, broke the final-chunk rules, or was followed by data."""


class TruncatedPayload(PayloadError):
    """The file ends before a valid final chunk: it was cut short (a power cut, a copy that stopped)."""


class SealingError(AgeError, ValueError):
    """The writer was asked for a chunk the STREAM rules forbid: after the final one, or of the wrong size."""


class KeyFormatError(AgeError, ValueError):
    """An age recipient or identity string, or an identity file, is malformed."""


class UnsupportedKey(KeyFormatError):
    """A well-formed key of a type this installation cannot use (its cryptography is too old, or lacks it)."""


class IncompatibleRecipients(KeyFormatError):
    """Post-quantum and classic recipients given for one file, which the age spec forbids."""
