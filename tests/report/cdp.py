"""A small client of the Chrome DevTools Protocol, enough to open a page in headless Chromium,
collect its console errors and network requests, evaluate JavaScript and take a screenshot.

Why not Playwright: it drives its own browser builds, downloaded at install time, which a
machine that only reaches package registries cannot fetch; pointed at Debian's `chromium` it
works, but then the protocol calls the test needs are six, and a websocket client
(websocket-client, pinned) and the browser's own `--remote-debugging-port` are all it takes.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import websocket


class BrowserError(Exception):
    """Chromium did not start, or a protocol call failed or timed out."""


@dataclass
class PageLog:
    """What the page reported while it was open."""

    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def ensure_chromium() -> str:
    """Debian's `chromium`, installed with apt-get when missing and we may (root, as in CI)."""
    found = find_chromium()
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-q"], capture_output=True, env=env, check=False)
        subprocess.run(
            ["apt-get", "install", "-y", "-q", "chromium"],
            capture_output=True,
            env=env,
            check=False,
        )
        found = find_chromium()
    if found is None:
        raise BrowserError("chromium not found: apt-get install chromium (as root)")
    return found


class Page:
    """One tab, driven over its websocket; events are read while waiting for replies."""

    def __init__(self, url: str, timeout_s: float) -> None:
        self._ws = websocket.create_connection(url, timeout=timeout_s, suppress_origin=True)
        self._next = 0
        self._events: list[dict[str, Any]] = []
        self.log = PageLog()

    def close(self) -> None:
        self._ws.close()

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self._next += 1
        ident = self._next
        self._ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            message = json.loads(self._ws.recv())
            if message.get("id") == ident:
                if "error" in message:
                    raise BrowserError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result
            self._record(message)

    def wait_for(self, event: str, timeout_s: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for seen in self._events:
                if seen["method"] == event:
                    self._events.remove(seen)
                    return seen
            self._record(json.loads(self._ws.recv()))
        raise BrowserError(f"no {event} within {timeout_s} s")

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression[:60]}…: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self, path: Path, width: int) -> None:
        """The whole page, `width` CSS pixels wide."""
        height = int(self.evaluate("document.documentElement.scrollHeight"))
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )
        shot = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        path.write_bytes(base64.b64decode(shot["data"]))

    def _record(self, message: dict[str, Any]) -> None:
        method = message.get("method", "")
        params = message.get("params", {})
        if method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            self.log.errors.append(
                str(details.get("exception", {}).get("description") or details.get("text"))
            )
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            self.log.errors.append(
                " ".join(str(a.get("value", a.get("description"))) for a in params["args"])
            )
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            self.log.errors.append(f"{params['entry']['source']}: {params['entry']['text']}")
        elif method == "Network.requestWillBeSent":
            self.log.requests.append(params["request"]["url"])
        if method:
            self._events.append(message)


@contextmanager
def open_page(url: str, *, width: int = 1280, timeout_s: float = 60) -> Iterator[Page]:
    """Start headless Chromium, open `url` in its first tab and wait for the load event."""
    chromium = ensure_chromium()
    profile = tempfile.mkdtemp(prefix="parcours-chromium-")
    args = [
        chromium,
        "--headless",
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        "--remote-debugging-port=0",
        f"--user-data-dir={profile}",
        f"--window-size={width},900",
        "about:blank",
    ]
    if os.geteuid() == 0:
        args.insert(1, "--no-sandbox")  # Chromium refuses to run its sandbox as root
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    page: Page | None = None
    try:
        port = _debugging_port(Path(profile), process, timeout_s)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as reply:
            targets = json.load(reply)
        tab = next(t for t in targets if t["type"] == "page")
        page = Page(tab["webSocketDebuggerUrl"], timeout_s)
        for domain in ("Page", "Runtime", "Log", "Network"):
            page.call(f"{domain}.enable")
        page.call("Page.navigate", url=url)
        page.wait_for("Page.loadEventFired", timeout_s)
        yield page
    finally:
        if page is not None:
            page.close()
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
        shutil.rmtree(profile, ignore_errors=True)


def _debugging_port(profile: Path, process: subprocess.Popen[bytes], timeout_s: float) -> int:
    """Chromium writes the port it chose (`--remote-debugging-port=0`) to DevToolsActivePort."""
    marker = profile / "DevToolsActivePort"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BrowserError(f"chromium exited with {process.returncode} before listening")
        if marker.exists():
            first = marker.read_text().split("\n", 1)[0].strip()
            if first.isdigit():
                return int(first)
        time.sleep(0.05)
    raise BrowserError(f"chromium did not listen within {timeout_s} s")


if __name__ == "__main__":
    import sys

    # python -m tests.report.cdp REPORT.html OUT.png [WIDTH]: the README's screenshot
    report, shot = Path(sys.argv[1]).resolve(), Path(sys.argv[2])
    with open_page(report.as_uri()) as page:
        time.sleep(3)  # let every chart draw
        page.screenshot(shot, width=int(sys.argv[3]) if len(sys.argv) > 3 else 1280)
        if page.log.errors:
            raise SystemExit(f"console errors: {page.log.errors}")
    print(shot)
