#!/usr/bin/python3
"""TEST ONLY (tests/vm): `consentbox run` on gpiozero's mock pins, in the test's virtual machine.

Debian's kernels have no gpio-sim or gpio-mockup, and bookworm's gpiozero 1.6.2 drives /dev/gpiochip
lines only on a Raspberry Pi, so the VM has no GPIO the box could use (docs/reliability.md, "The box
under systemd"). This wrapper, started by the test's drop-in in place of /usr/bin/consentbox, gives
gpiozero a MockFactory before the box makes its pins; everything else is the installed box under its
own unit. Presses come from the FIFO below, one line "PIN SECONDS" each (the pin held low, pressed,
for that long); every change of an output pin is printed, so the journal says when the REC LED went
on and off.
"""

import os
import sys
import threading
import time

from gpiozero import Device
from gpiozero.pins.mock import MockFactory

from consentbox.cli.consentbox import main

BUTTONS = "/run/consentbox-vmtest/buttons"
POLL_SECONDS = 0.005


def press_buttons(factory: MockFactory) -> None:
    if not os.path.exists(BUTTONS):
        os.mkfifo(BUTTONS, 0o600)
    while True:
        with open(BUTTONS, encoding="ascii") as fifo:
            for line in fifo:
                name, seconds = line.split()
                pin = factory.pin(name)
                pin.drive_low()
                time.sleep(float(seconds))
                pin.drive_high()
                print(f"vmtest: pressed {name} for {seconds} s", flush=True)


def log_outputs(factory: MockFactory) -> None:
    seen: dict[str, bool] = {}
    while True:
        for pin in list(factory.pins.values()):
            if pin.function == "output" and seen.get(str(pin)) != bool(pin.state):
                seen[str(pin)] = bool(pin.state)
                print(f"vmtest: pin {pin} {int(pin.state)} at {time.monotonic():.3f}", flush=True)
        time.sleep(POLL_SECONDS)


if __name__ == "__main__":
    factory = MockFactory()
    Device.pin_factory = factory
    for work in (press_buttons, log_outputs):
        threading.Thread(target=work, args=(factory,), daemon=True).start()
    sys.exit(main(sys.argv[1:]))
