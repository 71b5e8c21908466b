"""The consent ledger: a signed, hash-chained record of everything the box did.

`entry` is the format (kinds, their closed sets of fields, canonical lines, hashes, signatures);
`verify` checks a whole ledger. Those two are what the workstation's admin tool needs, and all that
this package exports; `extract` (one session's entries, signed as a whole: the card's copy) it imports
from its module. On the box, `writer` appends durably and `card_extracts` keeps the card's extracts:
import them from their modules. docs/formats.md ("Consent ledger") describes the files.
"""

from consentbox.ledger.entry import RULES, Entry, Kind, LedgerError, SessionRange, SessionRule, genesis
from consentbox.ledger.verify import Summary, Tail, verify

__all__ = [
    "RULES",
    "Entry",
    "Kind",
    "LedgerError",
    "SessionRange",
    "SessionRule",
    "Summary",
    "Tail",
    "genesis",
    "verify",
]
