"""Ports and adapters to the hardware: the front panel (GPIO), audio capture (ALSA) and the card.

Each port is a `typing.Protocol`; the real adapter is chosen by configuration (gpiozero's pin factory,
the ALSA device name, the card path), never by a testing flag.
"""
