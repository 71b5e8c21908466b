"""Hardware errors. Each is an OSError too: it is the machine's world failing, not a bad value."""

from __future__ import annotations

from consentbox.core.errors import ConsentBoxError
from consentbox.core.reasons import Problem


class HardwareError(ConsentBoxError, OSError):
    """Root of the errors raised by the adapters; `problem` is what the session machine is told."""

    problem: Problem = Problem.CARD_WRITE_ERROR


class AudioUnavailable(HardwareError):
    """The audio device cannot be opened for capture."""

    problem = Problem.NO_AUDIO_DEVICE


class AudioLost(HardwareError):
    """The audio device vanished or failed while capturing."""

    problem = Problem.AUDIO_LOST


class CardFull(HardwareError):
    """The card has no room left for the recording."""

    problem = Problem.CARD_FULL


class CardLost(HardwareError):
    """The card was removed, unmounted or turned read-only while in use."""

    problem = Problem.CARD_LOST


class CardWriteError(HardwareError):
    """Any other failure to write or sync the card."""

    problem = Problem.CARD_WRITE_ERROR
