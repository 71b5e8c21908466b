"""The one strict JSON reader, for everything that is parsed from a file: manifests, ledger entries,
bundles and the box's state files.

Strict: UTF-8 only, no NaN or Infinity, no key twice in one object. Text that would push the parser
past its limits (nesting thousands deep, a number thousands of digits long) is refused like any other
malformed text, never raised as a RecursionError. Callers put the refusal into their own error, which
names the file or field.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, NoReturn

from consentbox.core.errors import ConsentBoxError


class StrictJsonError(ConsentBoxError, ValueError):
    """Bytes the strict reader refuses; the message says why in a phrase ("is not UTF-8", …)."""


def loads(data: bytes) -> Any:
    """The JSON value that `data` holds; StrictJsonError if it is not strict JSON."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise StrictJsonError("is not UTF-8") from None
    try:
        return json.loads(text, object_pairs_hook=_no_repeated_key, parse_constant=_no_constant)
    except json.JSONDecodeError as error:
        raise StrictJsonError(f"is not JSON ({error.msg} at character {error.pos})") from None
    except RecursionError:
        raise StrictJsonError("nests too deep for any file of ours") from None
    except StrictJsonError:
        raise
    except ValueError:  # int() refuses a number of more digits than sys.get_int_max_str_digits()
        raise StrictJsonError("holds a number too long for any file of ours") from None


def _no_repeated_key(pairs: Sequence[tuple[str, Any]]) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for key, item in pairs:
        if key in value:
            raise StrictJsonError(f"repeats the key {key[:40]!r} in one object")
        value[key] = item
    return value


def _no_constant(name: str) -> NoReturn:
    raise StrictJsonError(f"holds {name}, which JSON does not allow")
