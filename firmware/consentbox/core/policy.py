"""The session policy: the timings and rules a clinic sets, parsed once into a frozen, validated value.

Policy arrives from a TOML file or a provisioning bundle as a plain mapping; `Policy.from_mapping`
is the one place that turns it into a value the rest of the box can trust. A bad value is a one-line
`PolicyError` that names the key.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from consentbox.core.errors import PolicyError

#: The largest segment file a policy allows (`segment_bytes`, its age header included): 1 GiB, so that
#: segments fit any FAT32/exFAT card. A file larger than this is no segment the box wrote.
MAX_SEGMENT_BYTES = 1 << 30


class SampleFormat(enum.Enum):
    """PCM sample formats the box records (ALSA names); all little-endian signed integers."""

    S16_LE = "S16_LE"
    S32_LE = "S32_LE"

    @property
    def bytes_per_sample(self) -> int:
        """Bytes one sample of one channel takes."""
        return {SampleFormat.S16_LE: 2, SampleFormat.S32_LE: 4}[self]


class OnWithdrawal(enum.Enum):
    """What happens to a session's audio when someone withdraws consent."""

    DESTROY = "destroy"
    KEEP = "keep"


@dataclass(frozen=True)
class Policy:
    """Session rules and recording format. Times are in seconds; defaults are those of docs/product.md."""

    default_parties: int = 2
    max_parties: int = 12
    consent_timeout: float = 180.0
    pause_timeout: float = 30 * 60.0
    max_session: float = 4 * 3600.0
    on_withdrawal: OnWithdrawal = OnWithdrawal.DESTROY
    record_hold: float = 1.0
    end_hold: float = 2.0
    withdraw_hold: float = 2.0
    shared_tap_gap: float = 1.0
    notice_timeout: float = 10.0
    # After a session ends, how long a party who consented to it can still withdraw (0: not at all).
    withdraw_window: float = 15 * 60.0
    # Minutes between soft reminder tones while recording, heard and so recorded by all (0: none).
    cue_every: float = 0.0
    # While recording, how long the microphone may hear nothing (SILENCE_FLOOR_DBFS, core/level.py) before the
    # box alerts: amber code 11, a tone, a ledger fault; recording goes on (0: never).
    silence_alert: float = 20.0
    retention_days: int = 30
    # How far after the box's own time a provisioning bundle may be dated (its date raises the clock floor).
    bundle_ahead_days: int = 366
    # Recording (docs/product.md, "Recording and encryption"): the ALSA capture format, and how files
    # are cut on the card.
    rate: int = 48_000
    channels: int = 1
    sample_format: SampleFormat = SampleFormat.S16_LE
    period_frames: int = 1024
    segment_bytes: int = 1 << 30
    min_free_mb: int = 64

    def __post_init__(self) -> None:
        _check_int(self, "default_parties", 1, 64)
        _check_int(self, "max_parties", 1, 64)
        _check_int(self, "retention_days", 1, 3650)
        _check_int(self, "bundle_ahead_days", 1, 3650)
        _check_int(self, "rate", 8000, 192_000)
        _check_int(self, "channels", 1, 8)
        _check_int(self, "period_frames", 32, 65_536)
        # At least a few chunks per segment; at most MAX_SEGMENT_BYTES.
        _check_int(self, "segment_bytes", 1 << 20, MAX_SEGMENT_BYTES)
        _check_int(self, "min_free_mb", 0, 1 << 20)
        _check_seconds(self, "consent_timeout", 10.0, 24 * 3600.0)
        _check_seconds(self, "pause_timeout", 10.0, 24 * 3600.0)
        _check_seconds(self, "max_session", 60.0, 24 * 3600.0)
        _check_seconds(self, "record_hold", 0.2, 10.0)
        _check_seconds(self, "end_hold", 0.2, 10.0)
        _check_seconds(self, "withdraw_hold", 0.2, 10.0)
        _check_seconds(self, "shared_tap_gap", 0.1, 10.0)
        _check_seconds(self, "notice_timeout", 1.0, 600.0)
        _check_seconds(self, "withdraw_window", 0.0, 24 * 3600.0)
        _check_seconds(self, "cue_every", 0.0, 120.0)  # minutes, checked as a plain number
        _check_seconds(self, "silence_alert", 0.0, 3600.0)
        _check_enum(self, "on_withdrawal", OnWithdrawal)
        _check_enum(self, "sample_format", SampleFormat)
        if self.default_parties > self.max_parties:
            raise PolicyError(
                f"policy key default_parties: {self.default_parties} is more than max_parties ({self.max_parties})"
            )
        if self.end_hold <= self.record_hold:
            # Otherwise holding RECORD to start could run on into ending the session.
            raise PolicyError(
                f"policy key end_hold: {self.end_hold} s must be longer than record_hold ({self.record_hold} s)"
            )

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], *, source: str = "policy") -> Policy:
        """Build a policy from parsed TOML/JSON values over the defaults; unknown keys are errors."""
        known = {f.name for f in fields(cls)}
        for key in values:
            if key not in known:
                raise PolicyError(f"{source}: unknown key {key!r} (known keys: {', '.join(sorted(known))})")
        converted = dict(values)
        for key, kind in (("on_withdrawal", OnWithdrawal), ("sample_format", SampleFormat)):
            if key in converted:
                raw = converted[key]
                try:
                    converted[key] = kind(raw)
                except ValueError:
                    choices = " or ".join(repr(o.value) for o in kind)
                    raise PolicyError(f"{source} key {key}: {raw!r} is not {choices}") from None
        try:
            return cls(**converted)
        except PolicyError as error:
            raise PolicyError(str(error).replace("policy key", f"{source} key", 1)) from None

    def to_mapping(self) -> dict[str, Any]:
        """The policy as plain values, the inverse of `from_mapping` (for manifests and digests)."""
        out: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        out["on_withdrawal"] = self.on_withdrawal.value
        out["sample_format"] = self.sample_format.value
        return out

    @property
    def frame_bytes(self) -> int:
        """Bytes of one audio frame (one sample of every channel)."""
        return self.channels * self.sample_format.bytes_per_sample

    @property
    def period_bytes(self) -> int:
        """Bytes of one ALSA period of audio."""
        return self.period_frames * self.frame_bytes

    @property
    def period_seconds(self) -> float:
        """How long one ALSA period of audio lasts."""
        return self.period_frames / self.rate


def _check_int(policy: Policy, key: str, low: int, high: int) -> None:
    value = getattr(policy, key)
    # bool is an int subclass; `true` is never a valid count.
    if isinstance(value, bool) or not isinstance(value, int):
        raise PolicyError(f"policy key {key}: expected a whole number, got {value!r}")
    if not low <= value <= high:
        raise PolicyError(f"policy key {key}: {value} is out of range ({low} to {high})")


def _check_enum(policy: Policy, key: str, kind: type[enum.Enum]) -> None:
    value = getattr(policy, key)
    if not isinstance(value, kind):
        raise PolicyError(f"policy key {key}: expected a {kind.__name__}, got {value!r}")


def _check_seconds(policy: Policy, key: str, low: float, high: float) -> None:
    value = getattr(policy, key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise PolicyError(f"policy key {key}: expected a number of seconds, got {value!r}")
    if not low <= value <= high:
        raise PolicyError(f"policy key {key}: {value} s is out of range ({low:g} to {high:g} s)")
