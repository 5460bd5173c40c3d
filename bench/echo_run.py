#!/usr/bin/env python3
"""Runs one echo workload against a program with the echo command line, and prints one JSON line.

  echo_run.py --bin target/release/examples/echo [--messages N] [--size B]
              [--delivery ordered|reliable|unreliable] [--clients C] [--timeout S]
              [--loss P] [--dup P] [--delay-ms MS] [--jitter-ms MS] [--reorder P] [--seed N]

The program is legume-rs's `echo` example, or any program with its command line (the peer
programs bench/compare.sh compares it with):

  BIN server --listen 127.0.0.1:PORT --seconds S
  BIN client --connect 127.0.0.1:PORT --messages N --size B --delivery D --timeout S --clients C

The client prints one JSON line (echoed, seconds, msgs_per_sec, ...) and exits. With any of
--loss, --dup, --delay-ms, --jitter-ms or --reorder the client talks to the server through
lossy_proxy.py (beside this script), seeded with --seed (default: a fresh seed, reported).

The output is the client's JSON line plus "exit" (the client's exit code, 124 when it outlived
--timeout + 10 s), "server_alive", "loss" and "seed". Loopback only; the processes it starts
are ended by their own PIDs. Python 3 standard library only.
"""
import argparse
import json
import os
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PROXY = os.path.join(HERE, "lossy_proxy.py")
LOOPBACK = "127.0.0.1"
# How long a server (or the proxy) gets to bind its socket before the client starts; clients
# retry their handshake anyway, so this only spares the first packets.
STARTUP_SECONDS = 0.5


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", required=True, help="the echo program (server and client subcommands)")
    ap.add_argument("--messages", type=int, default=10000)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--delivery", default="ordered", choices=["ordered", "reliable", "unreliable"])
    ap.add_argument("--clients", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=60.0, help="the client's own timeout, seconds")
    ap.add_argument("--loss", type=float, default=0.0)
    ap.add_argument("--dup", type=float, default=0.0)
    ap.add_argument("--delay-ms", type=float, default=0.0)
    ap.add_argument("--jitter-ms", type=float, default=0.0)
    ap.add_argument("--reorder", type=float, default=0.0)
    ap.add_argument("--seed", type=int, default=None, help="the proxy's seed (default: fresh)")
    return ap.parse_args(argv)


def free_port():
    """A UDP port nobody holds now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def last_json(lines):
    """The last line of `lines` that is a JSON object, or {}."""
    for line in reversed(lines):
        try:
            d = json.loads(line)
        except ValueError:
            continue
        if isinstance(d, dict):
            return d
    return {}


def stop(procs):
    """Ends every process still running, by its PID: SIGTERM, then SIGKILL after 3 s."""
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout=3)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def run(a):
    exe = os.path.abspath(a.bin)
    if not os.access(exe, os.X_OK):
        return {"error": f"no executable {exe}"}, 2
    impaired = a.loss or a.dup or a.delay_ms or a.jitter_ms or a.reorder
    if impaired and not os.path.isfile(PROXY):
        return {"error": f"no {PROXY}"}, 2
    seed = a.seed if a.seed is not None else int.from_bytes(os.urandom(4), "big")
    life = int(a.timeout + 15)
    server_port = free_port()
    procs = []
    try:
        server = subprocess.Popen(
            [exe, "server", "--listen", f"{LOOPBACK}:{server_port}", "--seconds", str(life)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(server)
        target = server_port
        if impaired:
            target = free_port()
            procs.append(subprocess.Popen(
                [sys.executable, PROXY, "--listen", str(target), "--target", str(server_port),
                 "--loss", str(a.loss), "--dup", str(a.dup), "--delay-ms", str(a.delay_ms),
                 "--jitter-ms", str(a.jitter_ms), "--reorder", str(a.reorder),
                 "--seed", str(seed), "--seconds", str(life)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        time.sleep(STARTUP_SECONDS)
        cmd = [exe, "client", "--connect", f"{LOOPBACK}:{target}", "--messages", str(a.messages),
               "--size", str(a.size), "--delivery", a.delivery, "--timeout", str(int(a.timeout)),
               "--clients", str(a.clients)]
        client = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        procs.append(client)
        try:
            out, _ = client.communicate(timeout=a.timeout + 10)
            result, code = last_json(out.splitlines()), client.returncode
        except subprocess.TimeoutExpired:
            result, code = {}, 124
        result.update(exit=code, server_alive=server.poll() is None, loss=a.loss, seed=seed)
        return result, 0
    finally:
        stop(procs)


def main(argv):
    result, code = run(parse_args(argv))
    print(json.dumps(result), flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
