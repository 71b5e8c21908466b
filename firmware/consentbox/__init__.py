"""ConsentBox: a session recorder that records only with everyone's consent and encrypts to a card."""

__version__ = "0.1.0"
