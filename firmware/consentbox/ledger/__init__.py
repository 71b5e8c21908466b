"""The consent ledger: a signed, hash-chained record of everything the box did.

`entry` is the format (kinds, their closed sets of fields, canonical lines, hashes, signatures);
`verify` checks a whole ledger. Those two are what the workstation's admin tool needs, and all that
this package exports. On the box, `writer` appends durably and `mirror` keeps the card's copy: import
them from their modules. docs/formats.md ("Consent ledger") describes the file.
"""

from consentbox.ledger.entry import RULES, Entry, Kind, LedgerError, SessionRange, SessionRule, genesis
from consentbox.ledger.lines import LEDGER_NAME
from consentbox.ledger.verify import Summary, Tail, verify

__all__ = [
    "LEDGER_NAME",
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
