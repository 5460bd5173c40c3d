#!/usr/bin/env python3
"""A seeded UDP impairment proxy on loopback, for watching legume-rs under a bad network.

  lossy_proxy.py --listen 40001 --target 40000 [--loss P] [--dup P] [--delay-ms MS]
                 [--jitter-ms MS] [--reorder P] [--reorder-ms MS] [--seed N] [--seconds S]

Clients send to 127.0.0.1:LISTEN instead of the server at 127.0.0.1:TARGET. Every datagram,
in either direction, is dropped with probability --loss; otherwise it is sent once, or twice
with probability --dup, each copy after --delay-ms plus a uniform jitter in +-jitter-ms; with
probability --reorder a copy is held back --reorder-ms more, so that later datagrams overtake
it. Each client address gets its own socket towards the server, so the server sees one peer
per client. The same --seed gives the same decisions for the same sequence of datagrams.

Runs for --seconds (default 60) or until SIGINT/SIGTERM, then prints one JSON line of counts
to stdout. Python 3 standard library only; it binds and sends to 127.0.0.1 only.
"""
import argparse
import heapq
import json
import random
import selectors
import signal
import socket
import sys
import time

LOOPBACK = "127.0.0.1"
MAX_DATAGRAM = 65535


def probability(text):
    p = float(text)
    if not 0.0 <= p <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not a probability (0 to 1)")
    return p


def non_negative(text):
    v = float(text)
    if v < 0:
        raise argparse.ArgumentTypeError(f"{text} is negative")
    return v


def port(text):
    p = int(text)
    if not 1 <= p <= 65535:
        raise argparse.ArgumentTypeError(f"{text} is not a port")
    return p


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--listen", type=port, required=True, help="port the clients send to")
    ap.add_argument("--target", type=port, required=True, help="port of the server")
    ap.add_argument("--loss", type=probability, default=0.0, help="drop probability")
    ap.add_argument("--dup", type=probability, default=0.0, help="duplication probability")
    ap.add_argument("--delay-ms", type=non_negative, default=0.0, help="one-way delay")
    ap.add_argument("--jitter-ms", type=non_negative, default=0.0, help="uniform +- jitter")
    ap.add_argument("--reorder", type=probability, default=0.0,
                    help="probability that a datagram is held back --reorder-ms more")
    ap.add_argument("--reorder-ms", type=non_negative, default=10.0, help="the hold-back")
    ap.add_argument("--seed", type=int, default=1, help="seed of every random decision")
    ap.add_argument("--seconds", type=non_negative, default=60.0, help="lifetime")
    return ap.parse_args(argv)


class Proxy:
    """The sockets, the queue of datagrams waiting for their send time, and the counts."""

    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.server = (LOOPBACK, args.target)
        self.front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.front.bind((LOOPBACK, args.listen))
        self.front.setblocking(False)
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.front, selectors.EVENT_READ, None)
        self.towards_server = {}  # client address -> its socket towards the server
        self.queue = []  # (due, order, socket, bytes, destination)
        self.order = 0
        self.counts = {"received": 0, "dropped": 0, "duplicated": 0, "reordered": 0, "sent": 0,
                       "clients": 0}

    def schedule(self, sock, data, dest):
        """Decides the fate of one datagram: dropped, or queued once or twice."""
        a = self.args
        self.counts["received"] += 1
        if self.rng.random() < a.loss:
            self.counts["dropped"] += 1
            return
        copies = 2 if self.rng.random() < a.dup else 1
        self.counts["duplicated"] += copies - 1
        now = time.monotonic()
        for _ in range(copies):
            delay = a.delay_ms + self.rng.uniform(-a.jitter_ms, a.jitter_ms)
            if self.rng.random() < a.reorder:
                delay += a.reorder_ms
                self.counts["reordered"] += 1
            self.order += 1
            heapq.heappush(self.queue, (now + max(0.0, delay) / 1000.0, self.order, sock, data, dest))

    def receive(self, sock, client):
        """Forwards what is waiting on `sock`: the front socket (`client` None) holds datagrams
        from clients, for the server; a socket towards the server holds the server's replies to
        `client`."""
        while True:
            try:
                data, addr = sock.recvfrom(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                # An ICMP error from an earlier send (e.g. the server is not up yet).
                continue
            if client is not None:
                self.schedule(self.front, data, client)
                continue
            back = self.towards_server.get(addr)
            if back is None:
                back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                back.bind((LOOPBACK, 0))
                back.setblocking(False)
                self.towards_server[addr] = back
                self.sel.register(back, selectors.EVENT_READ, addr)
                self.counts["clients"] += 1
            self.schedule(back, data, self.server)

    def send_due(self):
        now = time.monotonic()
        while self.queue and self.queue[0][0] <= now:
            _, _, sock, data, dest = heapq.heappop(self.queue)
            try:
                sock.sendto(data, dest)
                self.counts["sent"] += 1
            except OSError:
                pass

    def run(self, stop):
        end = time.monotonic() + self.args.seconds
        while not stop and time.monotonic() < end:
            wait = 0.05
            if self.queue:
                wait = min(wait, max(0.0, self.queue[0][0] - time.monotonic()))
            for key, _ in self.sel.select(wait):
                self.receive(key.fileobj, key.data)
            self.send_due()

    def close(self):
        for s in [self.front, *self.towards_server.values()]:
            s.close()
        self.sel.close()


def main(argv):
    args = parse_args(argv)
    stop = []

    def on_signal(_sig, _frame):
        stop.append(True)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        proxy = Proxy(args)
    except OSError as e:
        print(f"lossy_proxy.py: cannot listen on {LOOPBACK}:{args.listen}: {e}", file=sys.stderr)
        return 1
    try:
        proxy.run(stop)
    finally:
        proxy.close()
    print(json.dumps({"proxy": proxy.counts, "seed": args.seed}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
