"""The root of every error ConsentBox raises, and the core's own errors.

Each subpackage adds its leaves under `ConsentBoxError`; a leaf also subclasses the builtin it is a
kind of (ValueError, OSError), so callers that only know the builtins still catch it.
"""


class ConsentBoxError(Exception):
    """Root of all ConsentBox errors."""


class PolicyError(ConsentBoxError, ValueError):
    """A policy or configuration value is unknown or out of range; the message names the key."""


class EventError(ConsentBoxError, ValueError):
    """An event the session machine cannot accept (time going backwards, a seat that does not exist)."""


class UnknownEvent(ConsentBoxError, TypeError):
    """Something handed to the session machine that is not one of its events (`core.events.Event`)."""


class PinDriverMissing(ConsentBoxError):
    """gpiozero could load no pin factory (no pin driver such as lgpio is installed): the front panel
    cannot be driven, so not even the STATUS LED can show why. Its code, 12, is only ever written out
    (docs/status-codes.md, "When the panel cannot start")."""

    code = 12
