"""The consent ledger: a signed, hash-chained record of everything the box did (PRODUCT.md §3).

`entry` is the format (kinds, their closed sets of fields, canonical lines, hashes, signatures);
`writer` appends on the box, durably, and `mirror` keeps the card's copy; `verify` checks a whole
ledger. docs/formats.md ("Consent ledger") describes the file.
"""

from consentbox.ledger.entry import RULES, Entry, Kind, LedgerError, SessionRange, SessionRule, genesis
from consentbox.ledger.mirror import LEDGER_NAME
from consentbox.ledger.verify import Summary, Tail, verify
from consentbox.ledger.writer import Ledger, LedgerWriteError

__all__ = [
    "LEDGER_NAME",
    "RULES",
    "Entry",
    "Kind",
    "Ledger",
    "LedgerError",
    "LedgerWriteError",
    "SessionRange",
    "SessionRule",
    "Summary",
    "Tail",
    "genesis",
    "verify",
]
