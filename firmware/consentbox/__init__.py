"""ConsentBox: a session recorder that records only with everyone's consent and encrypts to a card."""

__version__ = "0.1.0"

#: The day this release was made (UTC). A box whose clock reads earlier, and that has never had a
#: clock floor, has never known the date: it refuses to record (core/timekeeping.py).
BUILD_DATE = "2026-11-23"
