"""Helpers for the HTTP service tests: a real server process, and a local web server for URL inputs."""

from __future__ import annotations

import contextlib
import http.server
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Dict, Sequence

import requests

STARTUP_SECONDS = 180.0   # import, model load and warm-up on a busy two-core machine
HOLD_SECONDS = 20.0       # longest a /hold request waits for release


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """``python -m numwhisper serve`` on 127.0.0.1 and a free port, its output kept in a log file."""

    def __init__(self, repo: Path, log_path: Path, args: Sequence[str]):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._log = open(log_path, "wb")
        command = [sys.executable, "-m", "numwhisper", "serve", "--host", "127.0.0.1", "--port", str(self.port),
                   *map(str, args)]
        self.process = subprocess.Popen(command, cwd=repo, stdout=self._log, stderr=subprocess.STDOUT)

    def log(self) -> str:
        """What the server printed so far."""
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = STARTUP_SECONDS) -> None:
        """Block until GET /health answers 200 (AssertionError with the log if the server dies or stalls)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited with {self.process.returncode}:\n{self.log()}")
            try:
                if requests.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.25)
        raise AssertionError(f"server not ready after {timeout:g} s:\n{self.log()}")

    def stop(self) -> None:
        """Terminate the server and wait for it."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


class QuietHandler(http.server.BaseHTTPRequestHandler):
    """A request handler for test web servers: logs nothing, and can answer with a redirect."""

    def log_message(self, *args):  # keep test output quiet
        pass

    def redirect(self, location: str):
        """Answer 302 to ``location``."""
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()


class AudioSite:
    """A local http.server for URL inputs.

    Routes: ``/files/<name>`` serves ``files[name]``; ``/redirect/<name>`` answers 302 to it; ``/loop``
    redirects to itself; ``/to-ftp`` redirects to an ftp:// URL; ``/slow`` sends nothing for
    ``slow_seconds``; ``/hold`` waits until ``release()`` (counting arrivals in ``held``), then 404;
    anything else is 404.
    """

    def __init__(self, files: Dict[str, bytes], slow_seconds: float = 3.0):
        self.files = files
        self.slow_seconds = slow_seconds
        self.released = threading.Event()
        self.held = 0
        self._lock = threading.Lock()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _handler(self):
        site = self

        class Handler(QuietHandler):
            def do_GET(self):
                path = self.path
                if path.startswith("/files/") and path[7:] in site.files:
                    body = site.files[path[7:]]
                    self.send_response(200)
                    self.send_header("Content-Type", "audio/wav")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                elif path.startswith("/redirect/"):
                    self.redirect(f"/files/{path[10:]}")
                elif path == "/loop":
                    self.redirect("/loop")
                elif path == "/to-ftp":
                    self.redirect("ftp://127.0.0.1/clip.wav")
                elif path == "/slow":
                    time.sleep(site.slow_seconds)
                    self.send_error(404)
                elif path == "/hold":
                    with site._lock:
                        site.held += 1
                    site.released.wait(HOLD_SECONDS)
                    self.send_error(404)
                else:
                    self.send_error(404)

        return Handler

    def wait_held(self, count: int, timeout: float = 10.0) -> None:
        """Block until ``count`` requests are waiting on /hold."""
        deadline = time.monotonic() + timeout
        while self.held < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"only {self.held} of {count} requests reached /hold")
            time.sleep(0.02)

    def release(self) -> None:
        """Let every /hold request finish."""
        self.released.set()

    def close(self) -> None:
        """Stop serving."""
        self.release()
        self.server.shutdown()
        self.server.server_close()


def post_json(url: str, payload, timeout: float = 120.0) -> requests.Response:
    """POST ``payload`` as JSON, exactly as PaddleX's client example does."""
    return requests.post(url, json=payload, timeout=timeout)


@contextlib.contextmanager
def serving(directory):
    """A local web server (AudioSite) with the files of ``directory``; yields the URLs' base."""
    site = AudioSite({path.name: path.read_bytes() for path in Path(directory).iterdir()})
    try:
        yield f"{site.url}/files"
    finally:
        site.close()
