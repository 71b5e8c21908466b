"""The buffers a ConsentBox object holds that a program can zero: to check that audio was zeroed out of them.

`held_buffers(root)` follows `root`'s attributes, and theirs, through ConsentBox's own objects and the
lists, tuples, sets and dicts they hold, and gives every bytearray and ctypes array it meets (behind a
memoryview too). Bytes objects are not among them: Python offers no way to zero one. A test takes the
buffers while a session records (once it ends, the objects that held them may be unreachable) and
checks them after (docs/threat-model.md, "Plaintext audio in memory").
"""

from __future__ import annotations

import ctypes


def held_buffers(root: object) -> list[bytearray | ctypes.Array[ctypes.c_char]]:
    """Every bytearray and ctypes array reachable from `root` through ConsentBox objects and containers."""
    found: list[bytearray | ctypes.Array[ctypes.c_char]] = []
    seen: set[int] = set()
    waiting = [root]
    while waiting:
        item = waiting.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, (bytearray, ctypes.Array)):
            found.append(item)
        elif isinstance(item, memoryview):
            waiting.append(item.obj)
        elif isinstance(item, (list, tuple, set, frozenset)):
            waiting.extend(item)
        elif isinstance(item, dict):
            waiting.extend(item.values())
        elif type(item).__module__.startswith("consentbox."):
            waiting.extend(_attributes(item))
    return found


def _attributes(item: object) -> list[object]:
    values = list(getattr(item, "__dict__", {}).values())
    for kind in type(item).__mro__:
        for name in getattr(kind, "__slots__", ()):
            if hasattr(item, name):
                values.append(getattr(item, name))
    return values


def holding_anything(
        buffers: list[bytearray | ctypes.Array[ctypes.c_char]]) -> list[bytearray | ctypes.Array[ctypes.c_char]]:
    """The buffers among `buffers` that are not all zeros."""
    return [buffer for buffer in buffers if any(bytes(buffer))]
