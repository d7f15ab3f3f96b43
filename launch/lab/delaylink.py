#!/usr/bin/python3
"""A network link with a fixed one-way delay, in userspace, for the launch lab's namespace hosts.

The kernels the lab runs on lack sch_netem (`tc qdisc ... netem delay` fails and modules cannot be loaded), so the
delay is made here instead: this process creates one TUN device per host (kt-tun1..kt-tunN, in the namespace it
starts in), hosts.sh moves each into its host's namespace as kt0, and every IPv4 packet a host sends is handed to the
host owning its destination address DELAY later. The devices are not persistent: they vanish when this process exits,
which is how hosts.sh tears the link down.

usage: delaylink.py --hosts N --delay 2ms --net 10.77.0 [--ready FILE]
  --net    the lab's /24 (first three octets): host i owns <net>.i
  --ready  written with our pid once every device exists (hosts.sh waits for it)
"""
import argparse
import collections
import fcntl
import os
import re
import selectors
import signal
import struct
import sys
import time

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000  # bare IP packets, no 4-byte packet-information header


def parse_delay(text):
    """'2ms', '500us', '0.1s' or a bare number of milliseconds -> seconds."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(us|ms|s)?\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"not a delay: {text!r} (e.g. 2ms, 500us)")
    scale = {"us": 1e-6, "ms": 1e-3, "s": 1.0, None: 1e-3}[match.group(2)]
    return float(match.group(1)) * scale


def open_tun(name):
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    return fd


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, required=True)
    parser.add_argument("--delay", type=parse_delay, required=True)
    parser.add_argument("--net", required=True, help="first three octets of the lab's /24")
    parser.add_argument("--ready")
    args = parser.parse_args()

    prefix = bytes(int(octet) for octet in args.net.split("."))
    if len(prefix) != 3:
        parser.error("--net takes three octets, e.g. 10.77.0")
    # Host i's device; index by the last octet of a destination address.
    devices = {i: open_tun(f"kt-tun{i}") for i in range(1, args.hosts + 1)}
    sender_of = {fd: i for i, fd in devices.items()}

    # SIGTERM (hosts.sh stop) must end the loop normally so that the devices close with us.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

    if args.ready:
        with open(args.ready + ".tmp", "w") as ready:
            ready.write(f"{os.getpid()}\n")
        os.replace(args.ready + ".tmp", args.ready)
    print(f"delaylink: {args.hosts} hosts on {args.net}.0/24, one-way delay {args.delay * 1e3:g} ms", flush=True)

    selector = selectors.DefaultSelector()
    for fd in devices.values():
        selector.register(fd, selectors.EVENT_READ)

    # The delay is the same for every packet, so arrival order is delivery order: a FIFO of (due, device, packet).
    in_flight = collections.deque()
    while True:
        now = time.monotonic()
        while in_flight and in_flight[0][0] <= now:
            _, fd, packet = in_flight.popleft()
            try:
                os.write(fd, packet)
            except OSError:
                pass  # the receiving host's queue is full or its device is down: drop, as a wire would
        timeout = max(0.0, in_flight[0][0] - now) if in_flight else None
        for key, _ in selector.select(timeout):
            # Drain the device: one wake-up per packet would cap the rate far below a gigabit.
            while True:
                try:
                    packet = os.read(key.fd, 65535)
                except BlockingIOError:
                    break
                # IPv4 with a destination in the lab's /24 that is another host; anything else (IPv6 neighbour
                # discovery, stray traffic) has nowhere to go.
                if len(packet) < 20 or packet[0] >> 4 != 4 or packet[16:19] != prefix:
                    continue
                target = devices.get(packet[19])
                if target is None or packet[19] == sender_of[key.fd]:
                    continue
                in_flight.append((time.monotonic() + args.delay, target, packet))


if __name__ == "__main__":
    main()
