#!/usr/bin/env python3
"""Heartbeat injector for the cluster tests (standard library only).

Reads real nlbd heartbeats captured with tcpdump (classic pcap), derives
hostile frames from them and sends them raw on an interface (AF_PACKET), as an
attacker on the segment would:

  replay     every captured frame verbatim (old sequence numbers)   -> replayed
  forge      host 1's frame claiming "stopped", a newer sequence and an
             empty view, the original HMAC kept                       -> bad_mac
  newhost    a frame claiming to be host 9 with a newer sequence        -> bad_mac
  nomac      a frame with its HMAC trailer and flag removed            -> missing_mac
  truncate   a frame cut in the middle of its header                   -> truncated

Payload offsets follow src/cluster/heartbeat.cpp (docs/heartbeat.md).

  hb_inject.py --iface IF --pcap FILE --ethertype 0x88b5 MODE [MODE...] [--repeat N]
Prints one line per mode: "MODE sent N".
"""
import argparse
import socket
import struct
import sys
import time

ETH = 14
OFF_FLAGS = 5
OFF_TOTAL_LEN = 8
OFF_HOST = 18
OFF_STATE = 19
OFF_SEQUENCE = 28
OFF_VIEW = 44
FLAG_MAC = 0x01
MAC_LEN = 32


def read_pcap(path):
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        return []
    magic = struct.unpack("<I", data[:4])[0]
    if magic in (0xA1B2C3D4, 0xA1B23C4D):
        endian = "<"
    elif magic in (0xD4C3B2A1, 0x4D3CB2A1):
        endian = ">"
    else:
        raise SystemExit(f"{path}: not a classic pcap file")
    frames, pos = [], 24
    while pos + 16 <= len(data):
        _, _, incl, _ = struct.unpack(endian + "IIII", data[pos:pos + 16])
        pos += 16
        frames.append(bytearray(data[pos:pos + incl]))
        pos += incl
    return frames


def is_heartbeat(frame, ethertype):
    if len(frame) < ETH + 4:
        return False
    et = struct.unpack(">H", frame[12:14])[0]
    off = 14
    if et in (0x8100, 0x88A8) and len(frame) >= 18:
        et = struct.unpack(">H", frame[16:18])[0]
        off = 18
    return et == ethertype and frame[off:off + 4] == b"NLBh"


def host_of(frame):
    return frame[ETH + OFF_HOST]


def bump_sequence(frame, delta):
    seq = struct.unpack(">Q", frame[ETH + OFF_SEQUENCE:ETH + OFF_SEQUENCE + 8])[0]
    frame[ETH + OFF_SEQUENCE:ETH + OFF_SEQUENCE + 8] = struct.pack(">Q", seq + delta)


def derive(mode, frames):
    out = []
    newer = 10_000_000_000  # 10 s of CLOCK_REALTIME ns: "newer" than anything seen
    if mode == "replay":
        out = [bytearray(f) for f in frames]
    elif mode == "forge":
        src = [f for f in frames if host_of(f) == 1] or frames
        f = bytearray(src[-1])
        f[ETH + OFF_STATE] = 0  # stopped
        f[ETH + OFF_VIEW:ETH + OFF_VIEW + 8] = bytes(8)
        bump_sequence(f, newer)
        out = [f]
    elif mode == "newhost":
        f = bytearray(frames[-1])
        f[ETH + OFF_HOST] = 9
        f[6:12] = bytes.fromhex("020900000009")
        bump_sequence(f, newer)
        out = [f]
    elif mode == "nomac":
        f = bytearray(frames[-1])
        if f[ETH + OFF_FLAGS] & FLAG_MAC:
            f = f[:-MAC_LEN]
            f[ETH + OFF_FLAGS] &= ~FLAG_MAC & 0xFF
            total = struct.unpack(">H", f[ETH + OFF_TOTAL_LEN:ETH + OFF_TOTAL_LEN + 2])[0]
            f[ETH + OFF_TOTAL_LEN:ETH + OFF_TOTAL_LEN + 2] = struct.pack(">H", total - MAC_LEN)
        bump_sequence(f, newer)
        out = [f]
    elif mode == "truncate":
        out = [bytearray(frames[-1][:ETH + 40])]
    else:
        raise SystemExit(f"unknown mode {mode}")
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--iface", required=True)
    ap.add_argument("--pcap", required=True)
    ap.add_argument("--ethertype", default="0x88b5")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("modes", nargs="+")
    a = ap.parse_args()
    ethertype = int(a.ethertype, 0)
    frames = [f for f in read_pcap(a.pcap) if is_heartbeat(f, ethertype)]
    if not frames:
        print("hb_inject: no heartbeat in the capture", file=sys.stderr)
        return 1
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((a.iface, 0))
    for mode in a.modes:
        sent = 0
        for _ in range(a.repeat):
            for f in derive(mode, frames):
                # Ethernet minimum: pad short frames as a NIC would.
                s.send(bytes(f) + bytes(max(0, 60 - len(f))))
                sent += 1
                time.sleep(0.002)
        print(f"{mode} sent {sent}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
