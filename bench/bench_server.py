"""Throughput and latency of the HTTP service: requests/s and latency percentiles per concurrency level.

    python bench/bench_server.py --model tiny.en --clip golden/audio/en_jfk.wav --requests 20 \
        --concurrency 1 2 4 [--workers 1 2] [--url http://host:port] [--output bench/results/server.md]

Without ``--url`` it starts ``python -m numwhisper serve`` on a free local port for each ``--workers``
value in turn (its log goes to a temporary file) and stops it after its levels. Each level sends ``--requests`` POSTs of the clip as base64
to ``/multilingual-speech-recognition`` from that many client threads, after one unmeasured warm-up
request; latency is measured per request from send to the end of the answer. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
ENDPOINT = "/multilingual-speech-recognition"
READY_SECONDS = 300.0


def post(url: str, body: bytes) -> tuple:
    """POST one JSON body -> (HTTP status, seconds taken)."""
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    began = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=600) as response:
            response.read()
            status = response.status
    except urllib.error.HTTPError as err:
        err.read()
        status = err.code
    return status, time.perf_counter() - began


def run_level(url: str, body: bytes, requests: int, concurrency: int, workers) -> dict:
    """Send ``requests`` POSTs from ``concurrency`` threads -> counts, wall time and latencies."""
    began = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(lambda _: post(url, body), range(requests)))
    wall = time.perf_counter() - began
    latencies = np.array([seconds for status, seconds in results if status == 200])  # [ok]
    return {"workers": workers, "concurrency": concurrency, "requests": requests, "ok": len(latencies), "wall": wall,
            "rps": len(latencies) / wall, "latencies": latencies}


def markdown(rows: list, setup: str) -> str:
    """The results as a Markdown table under a line describing the setup."""
    lines = [setup, "", "| workers | concurrency | requests | ok | wall s | requests/s | p50 s | p90 s | p99 s | max s |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        lat = row["latencies"]
        p50, p90, p99 = np.percentile(lat, [50, 90, 99]) if lat.size else (float("nan"),) * 3
        worst = lat.max() if lat.size else float("nan")
        lines.append(f"| {row['workers']} | {row['concurrency']} | {row['requests']} | {row['ok']} | {row['wall']:.1f} | "
                     f"{row['rps']:.2f} | {p50:.2f} | {p90:.2f} | {p99:.2f} | {worst:.2f} |")
    return "\n".join(lines) + "\n"


def free_port() -> int:
    """A local TCP port that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(args, workers: int, log) -> tuple:
    """Start ``numwhisper serve`` -> (process, base URL), once /health answers."""
    port = free_port()
    queue = max(args.concurrency) + 1
    command = [sys.executable, "-m", "numwhisper", "serve", "--port", str(port), "--model", args.model,
               "--workers", str(workers), "--queue-size", str(queue), "--log-level", "warning"]
    process = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited with {process.returncode}; see {log.name}")
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=2):
                return process, base
        except OSError:
            time.sleep(0.25)
    process.terminate()
    raise SystemExit(f"server not ready after {READY_SECONDS:g} s; see {log.name}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", default=None, help="a running server (default: start one)")
    p.add_argument("--model", default="tiny.en")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="inference threads of the started servers")
    p.add_argument("--clip", default=str(REPO / "golden" / "audio" / "en_jfk.wav"))
    p.add_argument("--requests", type=int, default=20, help="requests per concurrency level")
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--output", default=None, help="also write the Markdown here")
    args = p.parse_args()

    body = json.dumps({"audio": base64.b64encode(Path(args.clip).read_bytes()).decode("ascii")}).encode()
    log = tempfile.NamedTemporaryFile(prefix="numwhisper-serve-", suffix=".log", delete=False)
    loads, rows = [], []
    for workers in ([None] if args.url else args.workers):
        process, base = (None, args.url.rstrip("/")) if args.url else start_server(args, workers, log)
        try:
            status, _ = post(f"{base}{ENDPOINT}", body)  # warm-up, not measured
            if status != 200:
                raise SystemExit(f"warm-up request failed with HTTP {status}")
            loads.append(os.getloadavg()[0])
            rows += [run_level(f"{base}{ENDPOINT}", body, args.requests, c, workers or "?") for c in args.concurrency]
        finally:
            if process is not None:
                process.terminate()
                process.wait()
    server = f"server {args.url}" if args.url else f"model {args.model}, one server per workers value"
    setup = (f"`{Path(args.clip).name}` as base64, {server}; {platform.machine()}, {os.cpu_count()} CPUs, "
             f"load average {', '.join(f'{x:.2f}' for x in loads)} at the start of each server's levels; "
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.")
    text = markdown(rows, setup)
    print(text, end="")
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
