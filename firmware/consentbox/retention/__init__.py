"""Retention: every session's expiry, kept on the box, and the wipe that destroys expired sessions."""
