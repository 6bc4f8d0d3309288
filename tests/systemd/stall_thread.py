#!/usr/bin/env python3
"""Stalls one thread of a running process for a while, the others running on:
ptrace(PTRACE_SEIZE) then PTRACE_INTERRUPT put only that thread in a
ptrace-stop (no signal, so no group stop); PTRACE_DETACH resumes it. Used to
make one nlbd worker lcore stop advancing, as a stuck driver call would.

    stall_thread.py PID THREAD_NAME SECONDS
Prints the thread id stalled; exits 1 when no thread has that name.
"""
import ctypes
import os
import sys
import time

PTRACE_DETACH = 17
PTRACE_SEIZE = 0x4206
PTRACE_INTERRUPT = 0x4207

pid, name, seconds = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
tid = None
for t in sorted(os.listdir(f"/proc/{pid}/task")):
    with open(f"/proc/{pid}/task/{t}/comm") as f:
        if f.read().strip() == name:
            tid = int(t)
            break
if tid is None:
    print(f"stall_thread: no thread named {name} in {pid}", file=sys.stderr)
    sys.exit(1)
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
libc.ptrace.restype = ctypes.c_long
if libc.ptrace(PTRACE_SEIZE, tid, None, None) != 0:
    sys.exit(f"stall_thread: PTRACE_SEIZE {tid}: {os.strerror(ctypes.get_errno())}")
if libc.ptrace(PTRACE_INTERRUPT, tid, None, None) != 0:
    sys.exit(f"stall_thread: PTRACE_INTERRUPT {tid}: {os.strerror(ctypes.get_errno())}")
os.waitpid(tid, 0x40000000)  # __WALL: wait for the ptrace-stop
print(tid, flush=True)
time.sleep(seconds)
libc.ptrace(PTRACE_DETACH, tid, None, None)
