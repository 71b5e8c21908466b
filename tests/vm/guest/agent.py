#!/usr/bin/python3
"""TEST ONLY (tests/vm): runs the VM test's commands in the guest, sent over a virtio-serial port.

Installed into the test's virtual machine only, never into the package. Each request is one JSON line
{"id", "argv", "stdin", "timeout"} and each answer one JSON line {"id", "rc", "stdout", "stderr"}; the
byte strings are base64. A command that outlives its timeout is killed and answers rc -9.
"""

import base64
import json
import os
import subprocess
import time

PORT = "/dev/virtio-ports/org.consentbox.vmtest"


def answer(request: dict) -> dict:
    stdin = base64.b64decode(request.get("stdin") or "")
    try:
        done = subprocess.run(request["argv"], input=stdin, capture_output=True, timeout=request["timeout"])
        rc, stdout, stderr = done.returncode, done.stdout, done.stderr
    except subprocess.TimeoutExpired as expired:
        rc, stdout, stderr = -9, expired.stdout or b"", (expired.stderr or b"") + b"\n(timed out)"
    except OSError as error:
        rc, stdout, stderr = 127, b"", str(error).encode()
    return {"id": request["id"], "rc": rc, "stdout": base64.b64encode(stdout).decode(),
            "stderr": base64.b64encode(stderr).decode()}


def main() -> None:
    while not os.path.exists(PORT):
        time.sleep(0.1)
    # A virtio console port opens once at a time: one descriptor reads and writes.
    port = os.open(PORT, os.O_RDWR)
    pending = b""
    while True:
        data = os.read(port, 1 << 16)
        if not data:  # the host is not connected: wait for it
            time.sleep(0.2)
            continue
        pending += data
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            reply = json.dumps(answer(json.loads(line))).encode() + b"\n"
            while reply:
                reply = reply[os.write(port, reply):]


if __name__ == "__main__":
    main()
