"""`consentbox-admin audit`: the compliance reviewer's report over a card, a session or a box's ledger.

`sources` reads what is audited (checking the card's files with `admin.evidence`), `sessions` tells
each session from its ledger entries and gives its verdict; `text_table`, `csv_table` and `html_page`
render the report. docs/audit.md says how to read it.
"""
