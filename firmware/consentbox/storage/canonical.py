"""Canonical JSON: the one spelling of a value that manifests, ledger entries, bundles and the box's
state files are written in, so that the same value always has the same bytes (and the same digest)."""

from __future__ import annotations

import json
from typing import Any


def canonical_json(value: Any) -> bytes:
    """`value` as canonical JSON: sorted keys, no spaces, UTF-8, no NaN or infinity."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")
