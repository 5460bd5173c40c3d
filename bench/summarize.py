#!/usr/bin/env python3
"""Helpers for bench/compare.sh: tag one echo_run.py result, and summarize a results file.

  summarize.py tag KEY=VALUE... < line      one echo_run.py JSON line in, the tagged line out
  summarize.py table RESULTS.jsonl          markdown tables of medians, and legume-rs ratios

Every input line is a JSON object with at least "impl" and "workload". A run line carries the
client's fields (echoed, seconds, msgs_per_sec, ...) plus "exit" from echo_run.py and
"expected" (clients x messages); a line with "skipped" records a pair that was not run, and why.
"""
import json
import statistics
import sys

IMPL_ORDER = ["legume-rs", "legume-rs-secure", "renet", "laminar", "udp", "legume-py"]
BASE = "legume-rs"
OTHERS = ["legume-rs-secure", "renet", "laminar", "udp"]


def tag(pairs):
    line = sys.stdin.read().strip()
    try:
        d = json.loads(line) if line else {}
    except ValueError:
        d = {"error": "unparsable output", "output": line[:200]}
    if not isinstance(d, dict):
        d = {"error": "unexpected output", "output": line[:200]}
    reported = d.get("impl")
    for p in pairs:
        k, _, v = p.partition("=")
        try:
            d[k] = int(v)
        except ValueError:
            try:
                d[k] = float(v)
            except ValueError:
                d[k] = v
    if reported and reported != d.get("impl"):
        d["impl_reported"] = reported
    print(json.dumps(d, sort_keys=True))


def load(path):
    runs, skipped, order = {}, {}, []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                d = json.loads(line)
            except ValueError:
                print(f"warning: {path}:{n}: not JSON, ignored", file=sys.stderr)
                continue
            key = (d.get("workload", "?"), d.get("impl", "?"))
            if key not in order:
                order.append(key)
            if "skipped" in d:
                skipped[key] = d["skipped"]
            else:
                runs.setdefault(key, []).append(d)
    return runs, skipped, order


def complete(r):
    """A run delivered what it had to: every reliable message, or (unreliable) it finished."""
    if r.get("exit") != 0 or "echoed" not in r:
        return False
    if r.get("delivery_requested", r.get("delivery")) == "unreliable":
        return True
    return r.get("echoed", 0) >= r.get("expected", 0)


def med(rs, k):
    vals = [r[k] for r in rs if isinstance(r.get(k), (int, float))]
    return statistics.median(vals) if vals else None


def fmt_int(x):
    return "–" if x is None else f"{x:,.0f}"


def summary(rs):
    """Medians over the runs, and whether the median run counts as complete."""
    mps = [r.get("msgs_per_sec", 0.0) for r in rs]
    expected = rs[0].get("expected", 0)
    echoed = med(rs, "echoed")
    ok = sum(complete(r) for r in rs)
    return {
        "runs": len(rs),
        "ok": ok,
        "expected": expected,
        "echoed": echoed,
        "frac": (echoed / expected) if echoed is not None and expected else None,
        "dups": med(rs, "duplicates"),
        "ooo": med(rs, "out_of_order"),
        "seconds": med(rs, "seconds"),
        "mps": statistics.median(mps),
        "mps_min": min(mps),
        "mps_max": max(mps),
        "mbit": med(rs, "mbit_per_sec"),
        "delivery": rs[0].get("delivery_requested", rs[0].get("delivery", "?")),
        # A reliable workload counts only when most runs delivered everything.
        "usable": ok * 2 > len(rs),
        "timeouts": sum(r.get("exit") == 124 for r in rs),
    }


def table(path):
    runs, skipped, order = load(path)
    workloads = []
    for wl, _ in order:
        if wl not in workloads:
            workloads.append(wl)
    impls_seen = {i for _, i in order}
    impls = [i for i in IMPL_ORDER if i in impls_seen] + sorted(impls_seen - set(IMPL_ORDER))

    print("| workload | impl | runs (complete) | echoed, median / expected | dups | out of order"
          " | seconds, median | msgs/s, median [min–max] | Mbit/s, median |")
    print("|---|---|---|---|---|---|---|---|---|")
    sums = {}
    for wl in workloads:
        for impl in impls:
            key = (wl, impl)
            if key in runs:
                s = summary(runs[key])
                sums[key] = s
                note = f", {s['timeouts']} timed out" if s["timeouts"] else ""
                print(f"| {wl} | {impl} | {s['runs']} ({s['ok']}{note}) | {fmt_int(s['echoed'])} / {s['expected']:,}"
                      f" | {fmt_int(s['dups'])} | {fmt_int(s['ooo'])}"
                      f" | {'–' if s['seconds'] is None else format(s['seconds'], '.3f')}"
                      f" | {s['mps']:,.0f} [{s['mps_min']:,.0f}–{s['mps_max']:,.0f}]"
                      f" | {'–' if s['mbit'] is None else format(s['mbit'], '.1f')} |")
            elif key in skipped:
                print(f"| {wl} | {impl} | skipped: {skipped[key]} | | | | | | |")

    others = [i for i in OTHERS if i in impls_seen]
    if BASE not in impls_seen or not others:
        return
    print()
    print(f"Ratio = median msgs/s of {BASE} ÷ median msgs/s of the other implementation "
          "(> 1: legume-rs faster). Echoed share in parentheses. A ratio is given only when "
          "both sides delivered every reliable message in most runs.")
    print()
    head = f"| workload | {BASE} msgs/s |" + "".join(f" {o} msgs/s | {BASE} ÷ {o} |" for o in others)
    print(head)
    print("|---|---|" + "---|---|" * len(others))

    def cell(wl, impl):
        s = sums.get((wl, impl))
        if s is None:
            why = skipped.get((wl, impl))
            return (f"skipped ({why})" if why else "not run"), None
        frac = "" if s["frac"] is None else f" ({100 * s['frac']:.1f} %)"
        text = f"{s['mps']:,.0f}{frac}"
        if not s["usable"]:
            text += " incomplete"
        return text, s

    for wl in workloads:
        if (wl, BASE) not in sums and (wl, BASE) not in skipped:
            continue
        base_text, b = cell(wl, BASE)
        row = f"| {wl} | {base_text} |"
        for o in others:
            text, s = cell(wl, o)
            if b is not None and s is not None and b["usable"] and s["usable"] and s["mps"] > 0:
                ratio = f"{b['mps'] / s['mps']:.2f}×"
            elif s is None:
                ratio = "–"
            else:
                ratio = "n/a"
            row += f" {text} | {ratio} |"
        print(row)


def main(argv):
    if len(argv) >= 2 and argv[1] == "tag":
        tag(argv[2:])
    elif len(argv) == 3 and argv[1] == "table":
        table(argv[2])
    else:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
