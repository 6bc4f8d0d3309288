#!/usr/bin/env python3
"""A stand-in for nlbd's control socket, for the bash completion check.

    fake_nlbd.py SOCKET dynamic|static

Answers nlbctl's newline-delimited JSON requests (docs/nlbctl.md) with the
shapes nlbd sends: `query` of a dynamic cluster names its rules
("VIP:PORTS/PROTOCOL"); that of a static cluster does not, and `params`
lists them (vip, ports). Prints "ready" once listening; runs until killed.
"""

import json
import os
import socket
import sys

RULES = [("10.0.0.10", 443, 443, "tcp"), ("all", 8080, 8090, "both"), ("2001:db8::1", 80, 80, "udp")]


def rule_name(vip, lo, hi, proto):
    v = f"[{vip}]" if ":" in vip else vip
    ports = str(lo) if lo == hi else f"{lo}-{hi}"
    return f"{v}:{ports}/{proto}"


def answer(kind, command):
    if command == "query":
        rules = [{"rule": i, "state": "enabled"} for i in range(len(RULES))]
        if kind == "dynamic":
            for r, spec in zip(rules, RULES):
                r["name"] = rule_name(*spec)
        return {"host": 1, "cluster": "test", "state": "converged", "rules": rules}
    if command == "params":
        return {"cluster": "test", "vips": ["10.0.0.10", "2001:db8::1"],
                "rules": [{"index": i, "vip": v, "ports": f"{lo}-{hi}", "protocol": p}
                          for i, (v, lo, hi, p) in enumerate(RULES)]}
    return None


def main():
    path, kind = sys.argv[1], sys.argv[2]
    if os.path.exists(path):
        os.unlink(path)
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(8)
    print("ready", flush=True)
    while True:
        conn, _ = srv.accept()
        with conn, conn.makefile("rwb") as f:
            for line in f:
                req = json.loads(line)
                result = answer(kind, req.get("command"))
                if result is None:
                    reply = {"ok": False, "error": f"unknown command '{req.get('command')}'"}
                else:
                    reply = {"ok": True, "result": result}
                f.write((json.dumps(reply) + "\n").encode())
                f.flush()


if __name__ == "__main__":
    main()
