"""Building blocks for what the box writes and reads: durable and atomic writes, canonical JSON, the
one strict JSON reader, and session ids. They know nothing of sessions, ledgers or bundles."""
