"""A QEMU virtual machine for the VM test: Debian's kernel, real systemd as PID 1, the box's disks, and
two ways in: QMP (QEMU's own control socket: plug and pull devices, cut the power) and the guest's
command runner on a virtio-serial port (tests/vm/guest/agent.py).

Emulated with TCG, never KVM: on machines like CI's, /dev/kvm exists but a KVM guest hangs right after
the boot loader (issue 18). The hardware is a Pi's, as far as a PC can have it: the card in a USB
reader (usb-storage on an xHCI controller, as the guide's card reader), the Intel 6300ESB watchdog,
no network at all.
"""

from __future__ import annotations

import base64
import itertools
import json
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import required_tool
from tests.vm.image import Guest

MEMORY_MIB = 1024
CPUS = 2
#: Seconds from QEMU's start to the command runner's answer: a TCG boot takes about 30 s.
BOOT_SECONDS = 300
AGENT_PORT = "org.consentbox.vmtest"


@dataclass(frozen=True)
class Done:
    """What a command in the guest did."""

    argv: tuple[str, ...]
    rc: int
    stdout: bytes
    stderr: bytes

    @property
    def text(self) -> str:
        return self.stdout.decode(errors="replace")


class GuestError(AssertionError):
    """A command in the guest failed; the message has its output."""


class Machine:
    """One QEMU process, started by `start` and ended by `power_off` or `cut_power`."""

    def __init__(self, guest: Guest, directory: Path, disks: dict[str, tuple[Path, str]], card: Path,
                 card_file_system: str) -> None:
        """`disks`: id -> (image, cache mode) of virtio disks after the root; `card`: the card's image, formatted
        `card_file_system`."""
        self.guest = guest
        self.card_file_system = card_file_system
        self.directory = directory
        self.serial_log = directory / "serial.log"
        self._disks = disks
        self.card = card
        self._process: subprocess.Popen[bytes] | None = None
        self._agent: socket.socket | None = None
        self._agent_lines = b""
        self._qmp: socket.socket | None = None
        self._ids = itertools.count(1)
        self.started = 0.0
        self.boot_state = ""
        self._root = Path()
        self.card_reader = "card-reader"  # the id of the USB device that holds the card now
        self._card_plugs = itertools.count(1)

    def disk(self, disk_id: str) -> Path:
        """The image of the virtio disk `disk_id` (as given to the constructor)."""
        return self._disks[disk_id][0]

    # -- life --------------------------------------------------------------------------------------

    def command(self, root: Path) -> list[str]:
        drives = [f"file={root},format=qcow2,if=virtio,cache=unsafe"]
        drives += [f"file={image},format=raw,if=virtio,cache={cache}" for image, cache in self._disks.values()]
        return [
            required_tool("qemu-system-x86_64"), "-accel", "tcg", "-m", str(MEMORY_MIB), "-smp", str(CPUS),
            "-kernel", str(self.guest.kernel), "-initrd", str(self.guest.initrd),
            "-append", "root=/dev/vda rw console=ttyS0 quiet",
            *[part for drive in drives for part in ("-drive", drive)],
            "-device", "qemu-xhci,id=xhci",
            "-drive", f"file={self.card},format=raw,if=none,id=card,cache=writethrough",
            "-device", "usb-storage,bus=xhci.0,drive=card,id=card-reader,removable=on",
            "-device", "i6300esb",
            "-chardev", f"socket,id=agent,path={self.directory / 'agent.sock'},server=on,wait=off",
            "-device", "virtio-serial-pci", "-device", f"virtserialport,chardev=agent,name={AGENT_PORT}",
            "-qmp", f"unix:{self.directory / 'qmp.sock'},server=on,wait=off",
            "-nic", "none", "-display", "none", "-monitor", "none", "-serial", f"file:{self.serial_log}",
        ]

    def start(self, root: Path) -> None:
        """Boot from `root` (a qcow2 overlay) and wait for the command runner."""
        self._root = root
        self.started = time.monotonic()
        self.card_reader, self._agent_lines = "card-reader", b""
        self._process = subprocess.Popen(self.command(root), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self._qmp = self._connect("qmp.sock")
        self._qmp_read()  # the greeting
        self.qmp("qmp_capabilities")
        self._agent = self._connect("agent.sock")
        # The runner starts early in the boot: wait for the rest of it (running, or degraded if a unit failed).
        self.boot_state = self.run("systemctl", "is-system-running", "--wait", timeout=BOOT_SECONDS, check=False).text

    @property
    def running(self) -> bool:
        """Whether QEMU is running, its command runner connected."""
        return self._process is not None and self._process.poll() is None and self._agent is not None

    def save_journal(self) -> Path:
        """The guest's journal, every boot's, written beside its disks for the report; its path."""
        saved = self.directory / "journal.txt"
        saved.write_bytes(self.run("journalctl", "--no-pager", "-o", "short-monotonic", timeout=300).stdout)
        return saved

    def boot_again(self) -> None:
        """Power on again after `power_off` or `cut_power`: the same disks, as they were left."""
        self.start(self._root)

    def power_off(self) -> None:
        """A clean shutdown (systemd's poweroff), waited for."""
        self.run("systemctl", "--no-block", "poweroff")
        self._wait_exit(120)

    def cut_power(self) -> None:
        """The power cut: QEMU quits at once; what the guest had not written to a disk is lost."""
        self.qmp("quit")
        self._wait_exit(30)

    def close(self) -> None:
        """Whatever state it is in, no QEMU is left running."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        for connection in (self._agent, self._qmp):
            if connection is not None:
                connection.close()
        self._agent = self._qmp = None

    def _wait_exit(self, seconds: float) -> None:
        assert self._process is not None
        try:
            self._process.wait(seconds)
        except subprocess.TimeoutExpired:
            self.close()
            pytest.fail(f"QEMU did not stop within {seconds} s; the console: {self.serial_log}")
        self.close()

    def _connect(self, name: str) -> socket.socket:
        path = self.directory / name
        deadline = time.monotonic() + 30
        while True:
            assert self._process is not None
            if self._process.poll() is not None:
                output = self._process.stdout.read().decode(errors="replace") if self._process.stdout else ""
                pytest.fail(f"QEMU exited {self._process.returncode}: {output}")
            try:
                connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                connection.connect(str(path))
                return connection
            except (FileNotFoundError, ConnectionRefusedError):
                connection.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    # -- QMP ---------------------------------------------------------------------------------------

    def qmp(self, command: str, **arguments: Any) -> Any:
        """Run a QMP command; its return value (a QMP error fails the test)."""
        reply = self._qmp_request(command, arguments)
        if "error" in reply:
            pytest.fail(f"QMP {command} {arguments}: {reply['error']}")
        return reply["return"]

    def _qmp_request(self, command: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """QMP's answer to `command`: {"return": ...} or {"error": ...}."""
        assert self._qmp is not None
        request: dict[str, Any] = {"execute": command}
        if arguments:
            request["arguments"] = arguments
        self._qmp.sendall(json.dumps(request).encode() + b"\r\n")
        while True:
            reply = self._qmp_read()
            if "return" in reply or "error" in reply:
                return reply

    def plug_in(self, image: Path, name: str, *, read_only: bool) -> None:
        """A USB mass-storage device holding `image`, plugged into the xHCI controller."""
        self.qmp("blockdev-add", driver="raw", **{"node-name": name, "read-only": read_only},
                 file={"driver": "file", "filename": str(image), "read-only": read_only})
        self.qmp("device_add", driver="usb-storage", bus="xhci.0", drive=name, id=name, removable=True)

    def pull_out(self, name: str) -> None:
        """The USB device `name` pulled out: the guest gets nothing more from it, nor it from the guest.
        Its image is let go (QEMU locks an image while a node holds it)."""
        self.qmp("device_del", id=name)
        deadline = time.monotonic() + 30
        while name in {node.get("node-name") for node in self.qmp("query-named-block-nodes")}:
            if self._qmp_request("blockdev-del", {"node-name": name}).get("error") is None:
                return
            assert time.monotonic() < deadline, f"QEMU kept the node {name} after its device went"
            time.sleep(0.1)

    def pull_card(self) -> None:
        """The card pulled out of its reader."""
        self.pull_out(self.card_reader)

    def put_card_back(self) -> None:
        """The same card put back (a new USB device on the same image)."""
        self.card_reader = f"card-{next(self._card_plugs)}"
        self.plug_in(self.card, self.card_reader, read_only=False)

    def _qmp_read(self) -> dict[str, Any]:
        assert self._qmp is not None
        data = b""
        while not data.endswith(b"\n"):
            chunk = self._qmp.recv(65536)
            if not chunk:
                return {"return": None}  # QEMU closed it (after `quit`)
            data += chunk
        # Events (asynchronous) and the answer may arrive together: the last line is what was asked.
        replies = [json.loads(line) for line in data.splitlines() if line.strip()]
        answers = [reply for reply in replies if "event" not in reply]
        return answers[-1] if answers else self._qmp_read()

    # -- the guest's command runner ----------------------------------------------------------------

    def run(self, *argv: str, stdin: bytes = b"", timeout: float = 120, check: bool = True) -> Done:
        """Run `argv` in the guest as root; fail the test if it fails (unless `check` is false)."""
        assert self._agent is not None, "the machine is not running"
        request_id = next(self._ids)
        request = {"id": request_id, "argv": list(argv), "stdin": base64.b64encode(stdin).decode(),
                   "timeout": timeout}
        self._agent.sendall(json.dumps(request).encode() + b"\n")
        self._agent.settimeout(timeout + 30)
        while True:
            while b"\n" not in self._agent_lines:
                try:
                    chunk = self._agent.recv(1 << 20)
                except TimeoutError:
                    pytest.fail(f"the guest did not answer {argv} within {timeout + 30} s; console: {self.serial_log}")
                if not chunk:
                    pytest.fail(f"the guest's command runner went away during {argv}")
                self._agent_lines += chunk
            line, self._agent_lines = self._agent_lines.split(b"\n", 1)
            answer = json.loads(line)
            if answer["id"] == request_id:
                break
        done = Done(tuple(argv), answer["rc"], base64.b64decode(answer["stdout"]), base64.b64decode(answer["stderr"]))
        if check and done.rc != 0:
            raise GuestError(f"{' '.join(argv)} exited {done.rc} in the guest:\n{done.text}\n"
                             f"{done.stderr.decode(errors='replace')}")
        return done

    def shell(self, script: str, *, timeout: float = 120, check: bool = True) -> Done:
        """Run a shell script in the guest."""
        return self.run("sh", "-c", script, timeout=timeout, check=check)

    def put(self, path: str, data: bytes, mode: str = "0600") -> None:
        """Write a file in the guest."""
        self.run("install", "-m", mode, "/dev/stdin", path, stdin=data)

    def get(self, path: str) -> bytes:
        """A file's bytes from the guest."""
        return self.run("cat", path).stdout
