"""The name of every file in the box's state directory (`state_dir`; /var/lib/consentbox on a box).

The state directory is the box's own and never leaves it; the card holds only what is encrypted or
signed. docs/formats.md describes each file's contents.
"""

#: The box's Ed25519 signing key (0600, made once with O_EXCL): it signs the ledger.
DEVICE_KEY = "device.key"
#: The consent ledger: signed, hash-chained JSON lines (the card holds only encrypted extracts of it).
LEDGER = "ledger.jsonl"
#: Directory of the journal: each open session's manifest, encrypted under a key of its own, for recovery.
JOURNAL = "journal"
#: The `flock` held from a session's set-up to its end; provisioning and the wipe take it too.
SESSION_LOCK = "session.lock"
#: The trusted time's floor (POSIX seconds), and the lock around raising it.
CLOCK_FLOOR = "clock-floor"
CLOCK_FLOOR_LOCK = "clock-floor.lock"
#: The expiry index (every session's start and expiry), and the lock around changing it.
RETENTION_INDEX = "retention.json"
RETENTION_LOCK = "retention.lock"
#: The provisioning bundle in force, as the stick held it (signed), and the last stick's outcome.
INSTALLED_BUNDLE = "provisioned.cbundle"
PROVISIONING_RESULT = "provisioning-result.json"
