"""A legume 0.5 program for the interoperability tests (tests/legume_interop.rs).

It runs the real Python legume as a server or a client with the message types
of tests/data/legume05_messages.json, sends `--count` reliable and
`--unreliable` unreliable messages whose field values are derived from their
index, checks every message it receives the same way, and prints one JSON
summary line on stdout when it ends.

    python legume_peer.py server --port 4000 --count 1000
    python legume_peer.py client --port 4000 --count 1000 --disconnect
"""

import argparse
import json
import logging
import sys
import time

import legume
from legume import messages


def message_class(name, type_id, values):
    return type(name, (messages.BaseMessage,), {
        "MessageTypeID": type_id,
        "MessageValues": values,
    })


# The vector types, field order as in the vectors (dicts keep insertion order).
Empty = message_class("Empty", 20, {})
Chat = message_class("Chat", 21, {
    "sender_name": "string 24", "message": "string 256", "channel": "string 24"})
Position = message_class("Position", 22, {
    "x": "float", "y": "float", "z": "float", "id": "int"})
Flags = message_class("Flags", 23, {
    "alive": "bool", "team": "uchar", "score": "short", "hp": "int"})
Text = message_class("Text", 24, {"body": "varstring", "tag": "string 4"})
EmptyText = message_class("EmptyText", 25, {"body": "varstring", "tag": "string 1"})
IntEdges = message_class("IntEdges", 26, {
    "a": "int", "b": "int", "c": "short", "d": "uchar"})
Mixed = message_class("Mixed", 200, {
    "n": "int", "name": "varstring", "f": "float", "ok": "bool", "pad": "string 8"})

KINDS = [Empty, Chat, Position, Flags, Text, EmptyText, IntEdges, Mixed]


def values_for(i):
    """The kind and field values of message number `i` (as the Rust side)."""
    kind = KINDS[i % len(KINDS)]
    if kind is Empty or kind is EmptyText:
        values = {} if kind is Empty else {"body": "", "tag": ""}
    elif kind is Chat:
        values = {"sender_name": "user%d" % (i % 97), "message": "message number %d" % i,
                  "channel": "ch%d" % (i % 5)}
    elif kind is Position:
        values = {"x": i * 0.5, "y": -1.25 * i, "z": 1e10 + i, "id": -i}
    elif kind is Flags:
        values = {"alive": i % 2, "team": i % 256, "score": (i * 7) % 65536, "hp": i - 500}
    elif kind is Text:
        values = {"body": "text %d" % i, "tag": "t%d" % (i % 10)}
    elif kind is IntEdges:
        values = {"a": i, "b": -2147483648 + i, "c": (65535 - i) % 65536, "d": i % 256}
    else:
        values = {"n": i, "name": "x" * (i % 40), "f": i / 4.0, "ok": 1 - i % 2,
                  "pad": "p%d" % (i % 100)}
    return kind, values


def unreliable_indexes(count):
    """Indexes of unreliable messages: from 1,000,000, skipping the two kinds
    without fields, so that every unreliable message can be told apart."""
    out, i = [], 1000000
    while len(out) < count:
        if i % 8 not in (0, 5):
            out.append(i)
        i += 1
    return out


def build(i):
    kind, values = values_for(i)
    msg = kind()
    for name, value in values.items():
        getattr(msg, name).value = value
    return msg


def index_of(msg):
    """The index a received message carries, or None for the field-less kinds."""
    name = type(msg).__name__
    if name == "Chat":
        return int(msg.message.value.split()[-1])
    if name == "Position":
        return -msg.id.value
    if name == "Flags":
        return msg.hp.value + 500
    if name == "Text":
        return int(msg.body.value.split()[-1])
    if name in ("IntEdges", "Mixed"):
        return msg.a.value if name == "IntEdges" else msg.n.value
    return None


class Tally:
    """What arrived: counts per kind, indexes seen, values that were wrong."""

    def __init__(self):
        self.by_kind = {}
        self.seen = set()
        # legume message ids of what was delivered: a message legume
        # delivers twice (a resend after its memory of 1,000 ids has moved
        # past the first copy) has the same id both times.
        self.message_ids = set()
        self.duplicates = 0
        self.bad = []

    def check(self, msg):
        name = type(msg).__name__
        self.by_kind[name] = self.by_kind.get(name, 0) + 1
        self.message_ids.add(msg.message_id)
        i = index_of(msg)
        if i is None:
            return
        if (name, i) in self.seen:
            self.duplicates += 1
        self.seen.add((name, i))
        kind, values = values_for(i)
        if kind.__name__ != name:
            self.bad.append("%s carries index %d of a %s" % (name, i, kind.__name__))
            return
        for field, want in values.items():
            got = getattr(msg, field).value
            if isinstance(want, str) and isinstance(got, bytes):
                got = got.decode("utf-8")
            if got != want:
                self.bad.append("%s %d: %s is %r, expected %r" % (name, i, field, got, want))

    def total(self):
        return sum(self.by_kind.values())

    def distinct(self):
        """Messages delivered at least once (by legume message id)."""
        return len(self.message_ids)


def factory():
    f = messages.MessageFactory()
    f.add(*KINDS)
    return f


def run(args):
    out = {"role": args.role, "connected": False, "rejected": False, "errors": [],
           "disconnected_by_peer": False, "sent": 0, "sent_unreliable": 0}
    tally = Tally()
    unreliable = Tally()
    state = {"peer": None, "sent": 0, "done_at": None}

    def on_message(sender, msg):
        # Reliable and unreliable share the kinds; unreliable ones are sent
        # with indexes from 1,000,000.
        i = index_of(msg)
        (unreliable if i is not None and i >= 1000000 else tally).check(msg)

    def on_error(sender, error):
        out["errors"].append(str(error))

    def unacked():
        """Reliable messages this side sent that the other has not acked."""
        peer = state["peer"]
        conn = getattr(peer, "_connection", None) if peer is not None else None
        if conn is None:
            return 0
        return sum(1 for m in conn._outgoing if m.require_ack)

    def on_disconnect(sender, args_):
        out["disconnected_by_peer"] = True

    if args.role == "server":
        endpoint = legume.Server(factory())
        endpoint.setTimeout(args.timeout)

        def on_connect_request(peer, msg):
            if args.reject:
                out["rejected"] = True
                return False
            out["connected"] = True
            state["peer"] = peer
            return True

        endpoint.OnConnectRequest += on_connect_request
        endpoint.listen(("127.0.0.1", args.port))
    else:
        endpoint = legume.Client(factory())
        endpoint.setTimeout(args.timeout)

        def on_accepted(sender, args_):
            out["connected"] = True
            state["peer"] = endpoint

        def on_rejected(sender, args_):
            out["rejected"] = True

        endpoint.OnConnectRequestAccepted += on_accepted
        endpoint.OnConnectRequestRejected += on_rejected
        endpoint.connect(("127.0.0.1", args.port))

    endpoint.OnMessage += on_message
    endpoint.OnError += on_error
    endpoint.OnDisconnect += on_disconnect

    start = time.time()
    idle_until = None
    while time.time() - start < args.max_seconds:
        try:
            endpoint.update()
        except Exception as e:  # legume raises out of update() on bad input
            out["errors"].append("update raised %s: %s" % (type(e).__name__, e))
            break
        peer = state["peer"]
        if peer is not None and state["sent"] < args.count + args.unreliable:
            if idle_until is None:
                idle_until = time.time() + args.idle
            if time.time() >= idle_until:
                # At most --window reliable messages unacked: legume 0.5's
                # write loop rescans its whole outgoing list for every
                # datagram and resends whatever has waited 0.3 s, so with
                # 1,200 messages queued at once it never ends on a slow CPU
                # (docs/LEGUME_COMPAT.md section 4).
                while state["sent"] < args.count and (
                        args.window == 0 or unacked() < args.window):
                    peer.send_reliable_message(build(state["sent"]))
                    state["sent"] += 1
                if state["sent"] == args.count:
                    for i in unreliable_indexes(args.unreliable):
                        peer.send_message(build(i))
                    state["sent"] += args.unreliable
                out["sent"] = min(state["sent"], args.count)
                out["sent_unreliable"] = max(0, state["sent"] - args.count)
        if args.role == "client" and (endpoint.errored or out["rejected"]):
            break
        if out["disconnected_by_peer"] and args.role == "client":
            break
        # Everything expected arrived, and everything sent was acked, so
        # that ending now loses nothing on either side.
        finished = (peer is not None and state["sent"] == args.count + args.unreliable
                    and tally.distinct() >= args.expect and unacked() == 0)
        if finished and state["done_at"] is None:
            state["done_at"] = time.time()
        if finished and args.disconnect and time.time() - state["done_at"] > args.linger:
            if args.role == "client":
                endpoint.disconnect()
                for _ in range(50):
                    endpoint.update()
                    time.sleep(0.002)
            else:
                peer.disconnect()
                for _ in range(50):
                    endpoint.update()
                    time.sleep(0.002)
            out["disconnected"] = True
            break
        if args.role == "server" and out["disconnected_by_peer"] and args.stop_on_disconnect:
            break
        if out["rejected"] and args.role == "server" and args.stop_on_reject:
            # Long enough for the rejection to be resent and acked.
            if time.time() - start > 1.0:
                break
        if args.debug and time.time() - state.get("dumped", 0) > 1.0:
            state["dumped"] = time.time()
            conn = getattr(peer, "_connection", None) if peer is not None else None
            if conn is not None:
                sys.stderr.write("py t=%.1f recv=%d outgoing=%d latency=%r transport=%r in=%d\n" % (
                    time.time() - start, tally.total(), len(conn._outgoing),
                    conn.latency, conn._transport_latency, conn._in_bytes))
        time.sleep(0.001)

    out["received"] = tally.total()
    out["received_distinct"] = tally.distinct()
    out["received_by_kind"] = tally.by_kind
    out["received_indexes"] = len(tally.seen)
    out["duplicates"] = tally.duplicates
    out["bad"] = tally.bad[:20]
    out["received_unreliable"] = unreliable.total()
    out["unreliable_duplicates"] = unreliable.duplicates
    out["bad"] += unreliable.bad[:20]
    if args.role == "client":
        out["state"] = {endpoint.CONNECTED: "connected", endpoint.ERRORED: "errored",
                        endpoint.DISCONNECTED: "disconnected",
                        endpoint.CONNECTING: "connecting"}.get(endpoint.state, "other")
    print(json.dumps(out), flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("role", choices=["server", "client"])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--count", type=int, default=0, help="reliable messages to send")
    p.add_argument("--unreliable", type=int, default=0, help="unreliable messages to send")
    p.add_argument("--expect", type=int, default=0,
                   help="distinct reliable messages to wait for")
    p.add_argument("--window", type=int, default=100,
                   help="reliable messages unacked at most (0: no limit)")
    p.add_argument("--timeout", type=float, default=10.0, help="legume's connection timeout")
    p.add_argument("--idle", type=float, default=0.0, help="seconds to wait before sending")
    p.add_argument("--linger", type=float, default=0.5,
                   help="seconds to keep updating after everything arrived")
    p.add_argument("--disconnect", action="store_true", help="disconnect when done")
    p.add_argument("--reject", action="store_true", help="server: reject connect requests")
    p.add_argument("--stop-on-disconnect", action="store_true")
    p.add_argument("--stop-on-reject", action="store_true")
    p.add_argument("--max-seconds", type=float, default=30.0)
    p.add_argument("--debug", action="store_true", help="print the connection's state each second")
    args = p.parse_args()
    # legume logs a warning for every duplicate ack it gets (legume-rs acks
    # every copy of a resent message); keep stderr for real errors.
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.ERROR)
    run(args)


if __name__ == "__main__":
    sys.exit(main())
