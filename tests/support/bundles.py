"""Provisioning bundles of any contents, signed as docs/formats.md lays them out, for hostile-stick tests.

Written from the documented layout, not from `provisioning.bundle`, so that a test comparing the two
(tests/provisioning/test_bundle.py) checks the code against the document.
"""

from __future__ import annotations

import base64

from consentbox.crypto.signing import OrgSigningKey

MAGIC = b"consentbox-bundle/v1\n"
SIGNING_CONTEXT = b"consentbox-bundle/v1 payload\n"


def signed_bundle(payload: bytes, key: OrgSigningKey) -> bytes:
    """A bundle file holding `payload` (any bytes at all), validly signed by `key`."""
    return MAGIC + b"signature: " + base64.b64encode(key.sign(SIGNING_CONTEXT + payload)) + b"\n\n" + payload
