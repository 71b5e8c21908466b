"""Plaintext audio held in memory in one buffer that is zeroed, never left to the allocator unzeroed.

The ALSA adapter holds here what it read from the device and has not returned yet; the box holds here
what it captured while a CONSENT press may yet become a withdrawal (`consentbox.box.hold_back`).
docs/threat-model.md ("Plaintext audio in memory") lists every such buffer.
"""

from __future__ import annotations

from collections.abc import Callable


class HeldAudio:
    """Audio held, in one buffer that `wipe` zeroes.

    A bytearray left to grow and shrink by itself hands its old storage, audio and all, back to the
    allocator at every change; this one is only ever replaced when it must grow, and zeroed first.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self.size = 0

    def add(self, data: bytes | bytearray | memoryview) -> None:
        """Hold `data` after what is held."""
        end = self.size + len(data)
        if end > len(self._buffer):
            grown = bytearray(end)
            grown[: self.size] = memoryview(self._buffer)[: self.size]
            zero(self._buffer)
            self._buffer = grown
        self._buffer[self.size : end] = data
        self.size = end

    def take(self, size: int) -> bytes:
        """The first `size` bytes held, which are held no longer (a copy: Python cannot zero it)."""
        taken = bytes(memoryview(self._buffer)[:size])
        self._drop(size)
        return taken

    def pass_on(self, size: int, write: Callable[[memoryview], object]) -> None:
        """Give the first `size` bytes held to `write` without copying them, then hold them no longer;
        `write` must not keep the view."""
        with memoryview(self._buffer) as view:
            write(view[:size])
        self._drop(size)

    def wipe(self) -> None:
        """Zero the buffer and hold nothing."""
        zero(self._buffer)
        self.size = 0

    def _drop(self, size: int) -> None:
        view = memoryview(self._buffer)
        view[: self.size - size] = view[size : self.size]
        self.size -= size


def zero(buffer: bytearray) -> None:
    """Overwrite `buffer` with zeros in place: same length, so its storage is not replaced."""
    buffer[:] = bytes(len(buffer))
