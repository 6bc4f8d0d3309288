#!/usr/bin/env python3
"""Plays systemd's side of sd_notify(3) for a test: binds an AF_UNIX datagram
socket at PATH and appends every message received, one line per
assignment, as "<monotonic seconds> <assignment>" to OUT, until killed or
for at most LIMIT seconds.

    notify_listen.py PATH OUT [LIMIT]
"""
import os
import socket
import sys
import time

path, out = sys.argv[1], sys.argv[2]
limit = float(sys.argv[3]) if len(sys.argv) > 3 else 300.0
if os.path.exists(path):
    os.unlink(path)
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
s.settimeout(0.2)
end = time.monotonic() + limit
with open(out, "a", buffering=1) as f:
    while time.monotonic() < end:
        try:
            data = s.recv(4096)
        except socket.timeout:
            continue
        t = time.monotonic()
        for line in data.decode("utf-8", "replace").split("\n"):
            if line:
                f.write(f"{t:.3f} {line}\n")
