#!/usr/bin/env python3
"""Answers ICMP echo requests late, for the "late" hosts of scripts/lab.sh.

This machine's kernel has no `tc netem`, so a host that answers ping 200 ms late is a
network namespace whose kernel ignores echo requests (net.ipv4.icmp_echo_ignore_all=1; it
still answers ARP itself) plus this process: one raw ICMP socket opened inside each such
namespace (setns), every echo request answered with an echo reply after --delay-ms.

One process serves every late host. It writes its PID to --pid-file once all its sockets
are open (lab.sh waits for that), and stops by itself after --max-s seconds, or as soon as
the --guard namespace is gone (lab.sh down), so it never outlives the lab. Every loop is
bounded.
"""

import argparse
import ctypes
import heapq
import itertools
import os
import select
import socket
import struct
import sys
import time

CLONE_NEWNET = 0x40000000
LIBC = ctypes.CDLL(None, use_errno=True)
# Replies waiting for their time; beyond this, requests are dropped (a flood, not a scan).
MAX_PENDING = 20000
# Packets read from one socket per wake-up before looking at the others.
MAX_DRAIN = 256


def enter_netns(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        if LIBC.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({path}): {os.strerror(err)}")
    finally:
        os.close(fd)


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def echo_reply(packet):
    """The echo reply to an IPv4 packet holding an echo request, or None."""
    if len(packet) < 20:
        return None
    ihl = (packet[0] & 0x0F) * 4
    icmp = bytearray(packet[ihl:])
    if len(icmp) < 8 or icmp[0] != 8 or icmp[1] != 0:
        return None
    icmp[0] = 0
    icmp[2:4] = b"\0\0"
    icmp[2:4] = struct.pack("!H", checksum(bytes(icmp)))
    return bytes(icmp)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--delay-ms", type=int, default=200)
    ap.add_argument("--max-s", type=int, default=3600)
    ap.add_argument("--guard", default="lab-scan", help="stop when this netns is gone")
    ap.add_argument("--pid-file", required=True)
    ap.add_argument("namespaces", nargs="+")
    args = ap.parse_args()

    home = os.open("/proc/self/ns/net", os.O_RDONLY)
    sockets = []
    for ns in args.namespaces:
        enter_netns(f"/run/netns/{ns}")
        s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        s.setblocking(False)
        sockets.append(s)
    if LIBC.setns(home, CLONE_NEWNET) != 0:
        sys.exit("cannot return to the original network namespace")
    os.close(home)

    tmp = args.pid_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"{os.getpid()}\n")
    os.rename(tmp, args.pid_file)

    delay = args.delay_ms / 1000.0
    guard = f"/run/netns/{args.guard}"
    pending = []
    order = itertools.count()
    end = time.monotonic() + args.max_s
    next_guard_check = 0.0
    while True:
        now = time.monotonic()
        if now >= end:
            break
        if now >= next_guard_check:
            if not os.path.exists(guard):
                break
            next_guard_check = now + 1.0
        wait = 1.0 if not pending else max(0.0, min(1.0, pending[0][0] - now))
        readable, _, _ = select.select(sockets, [], [], wait)
        now = time.monotonic()
        for s in readable:
            for _ in range(MAX_DRAIN):
                try:
                    packet, (src, _port) = s.recvfrom(65535)
                except BlockingIOError:
                    break
                reply = echo_reply(packet)
                if reply is not None and len(pending) < MAX_PENDING:
                    heapq.heappush(pending, (now + delay, next(order), s, src, reply))
        while pending and pending[0][0] <= time.monotonic():
            _, _, s, dst, reply = heapq.heappop(pending)
            try:
                s.sendto(reply, (dst, 0))
            except OSError:
                pass


if __name__ == "__main__":
    main()
