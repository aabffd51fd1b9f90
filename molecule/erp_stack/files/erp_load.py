#!/usr/bin/env python3
"""Steady user traffic through the load balancer, for the zero-downtime check.

    erp-load URL RESULT_FILE [--threads N] [--max-seconds S] [--max-requests N]

A few threads send GET requests to URL paths in turn until the stop file RESULT_FILE.stop
appears, or the time or request budget is spent (it always stops by itself). Any answer
that is not 2xx, and any connection error, is a failed request. Writes
{"ok": n, "failed": n, "errors": [first few], "versions": {version: count}} to RESULT_FILE.
"""

import argparse
import json
import os
import threading
import time
import urllib.error
import urllib.request

PATHS = ("/version", "/api/customers?limit=5", "/")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("result")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--max-seconds", type=float, default=300)
    parser.add_argument("--max-requests", type=int, default=200_000)
    args = parser.parse_args()

    stop_file = args.result + ".stop"
    deadline = time.monotonic() + args.max_seconds
    lock = threading.Lock()
    totals = {"ok": 0, "failed": 0, "errors": [], "versions": {}}
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def done() -> bool:
        return (time.monotonic() >= deadline or totals["ok"] + totals["failed"] >= args.max_requests
                or os.path.exists(stop_file))

    def run(offset: int) -> None:
        n = offset
        while not done():
            path = PATHS[n % len(PATHS)]
            n += 1
            try:
                with opener.open(args.url + path, timeout=15) as response:
                    body = response.read()
                version = json.loads(body)["version"] if path == "/version" else None
                with lock:
                    totals["ok"] += 1
                    if version:
                        totals["versions"][version] = totals["versions"].get(version, 0) + 1
            except (urllib.error.URLError, OSError, ValueError) as exc:
                with lock:
                    totals["failed"] += 1
                    if len(totals["errors"]) < 10:
                        totals["errors"].append(f"{path}: {exc}")

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(args.threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with open(args.result + ".tmp", "w", encoding="utf-8") as handle:
        json.dump(totals, handle)
    os.replace(args.result + ".tmp", args.result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
