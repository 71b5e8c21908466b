"""`make run`: play the shipped demo scenario through the session rules and print it readably."""

from __future__ import annotations

from importlib.resources import files

from consentbox.core.policy import Policy
from consentbox.core.session import SessionMachine
from consentbox.testing.runner import run_scenario
from consentbox.testing.script import parse_script
from consentbox.service.timeline import describe

DEMO = files("consentbox.testing") / "scenarios" / "demo.txt"


def main() -> None:
    """Print the demo script and the timeline it produces."""
    script = DEMO.read_text(encoding="utf-8")
    print("ConsentBox demo (virtual time, simulated panel). Script:\n")
    print(script)
    machine = SessionMachine(Policy(), seats=3)
    for entry in run_scenario(machine, parse_script(script, source="demo.txt")):
        if entry["event"] not in ("tone", "flash"):
            print(describe(entry))


if __name__ == "__main__":
    main()
