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


class OnWithdrawal(enum.Enum):
    """What happens to a session's audio when someone withdraws consent."""

    DESTROY = "destroy"
    KEEP = "keep"


@dataclass(frozen=True)
class Policy:
    """Session rules. Times are in seconds; defaults are those of PRODUCT.md §1."""

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
    retention_days: int = 30

    def __post_init__(self) -> None:
        _check_int(self, "default_parties", 1, 64)
        _check_int(self, "max_parties", 1, 64)
        _check_int(self, "retention_days", 1, 3650)
        _check_seconds(self, "consent_timeout", 10.0, 24 * 3600.0)
        _check_seconds(self, "pause_timeout", 10.0, 24 * 3600.0)
        _check_seconds(self, "max_session", 60.0, 24 * 3600.0)
        _check_seconds(self, "record_hold", 0.2, 10.0)
        _check_seconds(self, "end_hold", 0.2, 10.0)
        _check_seconds(self, "withdraw_hold", 0.2, 10.0)
        _check_seconds(self, "shared_tap_gap", 0.1, 10.0)
        _check_seconds(self, "notice_timeout", 1.0, 600.0)
        if not isinstance(self.on_withdrawal, OnWithdrawal):
            raise PolicyError(f"policy key on_withdrawal: expected an OnWithdrawal, got {self.on_withdrawal!r}")
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
        if "on_withdrawal" in converted:
            raw = converted["on_withdrawal"]
            try:
                converted["on_withdrawal"] = OnWithdrawal(raw)
            except ValueError:
                choices = " or ".join(repr(o.value) for o in OnWithdrawal)
                raise PolicyError(f"{source} key on_withdrawal: {raw!r} is not {choices}") from None
        try:
            return cls(**converted)
        except PolicyError as error:
            raise PolicyError(str(error).replace("policy key", f"{source} key", 1)) from None

    def to_mapping(self) -> dict[str, Any]:
        """The policy as plain values, the inverse of `from_mapping` (for manifests and digests)."""
        out: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        out["on_withdrawal"] = self.on_withdrawal.value
        return out


def _check_int(policy: Policy, key: str, low: int, high: int) -> None:
    value = getattr(policy, key)
    # bool is an int subclass; `true` is never a valid count.
    if isinstance(value, bool) or not isinstance(value, int):
        raise PolicyError(f"policy key {key}: expected a whole number, got {value!r}")
    if not low <= value <= high:
        raise PolicyError(f"policy key {key}: {value} is out of range ({low} to {high})")


def _check_seconds(policy: Policy, key: str, low: float, high: float) -> None:
    value = getattr(policy, key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise PolicyError(f"policy key {key}: expected a number of seconds, got {value!r}")
    if not low <= value <= high:
        raise PolicyError(f"policy key {key}: {value} s is out of range ({low:g} to {high:g} s)")
