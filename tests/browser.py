"""A real headless Chromium for the report tests, driven over its DevTools protocol (a websocket).

Debian's ``chromium`` package is installed with apt-get where it is missing and the tests run as root; elsewhere the
tests that need it skip with the reason. Chromium runs with a fresh profile and with everything that would reach
the network off, so a page that loads something from outside fails to load it (and logs the error).
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
from pathlib import Path
from typing import Any

try:
    import websocket  # websocket-client (dev extra); the tests skip without it
except ImportError:
    websocket = None

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-extensions", "--hide-scrollbars", "--mute-audio")
BINARIES = ("chromium", "chromium-browser", "google-chrome")


def chromium_binary() -> str | None:
    return next((found for name in BINARIES if (found := shutil.which(name))), None)


def install_chromium() -> tuple[str | None, str]:
    """(the binary, "") where Chromium is or could be installed here; (None, why) where it cannot."""
    found = chromium_binary()
    if found:
        return found, ""
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return None, "chromium is not installed and cannot be installed here (as root: apt-get install chromium)"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], capture_output=True, env=env, timeout=600)
    done = subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium"],
                          capture_output=True, text=True, env=env, timeout=900)
    found = chromium_binary()
    if found is None:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        return None, f"apt-get install chromium failed: {tail[0]}"
    return found, ""


class Chromium:
    """One headless Chromium with a fresh profile, and one page driven over the DevTools protocol."""

    def __init__(self, binary: str, width: int = 1280, height: int = 1600) -> None:
        self.profile = tempfile.mkdtemp(prefix="gedge-chromium-")
        self.process = subprocess.Popen(
            [binary, *FLAGS, f"--user-data-dir={self.profile}", "--remote-debugging-port=0",
             f"--window-size={width},{height}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port = self._port()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as answer:
            page = next(t for t in json.loads(answer.read()) if t.get("type") == "page")
        self.socket = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=60, suppress_origin=True)
        self.next_id = 0
        self.events: list[dict[str, Any]] = []
        for domain in ("Page", "Runtime", "Log"):
            self.call(f"{domain}.enable")

    def _port(self) -> int:
        marker = Path(self.profile) / "DevToolsActivePort"
        deadline = time.time() + 60
        while time.time() < deadline:
            if marker.is_file() and marker.read_text().strip():
                return int(marker.read_text().split()[0])
            if self.process.poll() is not None:
                raise RuntimeError(f"chromium exited with code {self.process.returncode} before it listened")
            time.sleep(0.1)
        raise RuntimeError("chromium did not open its DevTools port within 60 s")

    def call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        self.next_id += 1
        self.socket.send(json.dumps({"id": self.next_id, "method": method, "params": params or {}}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def wait_for(self, event: str, timeout: float = 60.0) -> None:
        deadline = time.time() + timeout
        while not any(e.get("method") == event for e in self.events):
            if time.time() > deadline:
                raise RuntimeError(f"no {event} within {timeout} s")
            self.socket.settimeout(max(0.1, deadline - time.time()))
            self.events.append(json.loads(self.socket.recv()))

    def open(self, path: Path) -> None:
        self.events.clear()
        self.call("Page.navigate", {"url": Path(path).resolve().as_uri()})
        self.wait_for("Page.loadEventFired")

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True})
        if "exceptionDetails" in result:
            raise RuntimeError(f"the page's script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def errors(self) -> list[str]:
        """Console errors, uncaught exceptions and failed loads the page reported."""
        found = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                found.append("console: " + " ".join(str(a.get("value", a.get("description"))) for a in
                                                     params.get("args", [])))
            elif method == "Runtime.exceptionThrown":
                found.append(f"exception: {params.get('exceptionDetails', {}).get('text')}")
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                entry = params["entry"]
                found.append(f"log: {entry.get('text')} {entry.get('url', '')}")
        return found

    def screenshot(self, out: Path, width: int, height: int) -> Path:
        self.call("Emulation.setDeviceMetricsOverride", {"width": width, "height": height, "deviceScaleFactor": 1,
                                                         "mobile": False})
        shot = self.call("Page.captureScreenshot", {"format": "png"})
        out.write_bytes(base64.b64decode(shot["data"]))
        return out

    def close(self) -> None:
        try:
            self.socket.close()
        finally:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
            shutil.rmtree(self.profile, ignore_errors=True)


# In the page: wait for every image to decode, then report each one and what the galleries hold.
PAGE_FACTS = """(async () => {
  const images = [...document.images];
  await Promise.all(images.map(i => i.decode().catch(() => null)));
  return {
    images: images.map(i => ({alt: i.alt, complete: i.complete, width: i.naturalWidth, height: i.naturalHeight})),
    galleries: [...document.querySelectorAll('section[data-gallery]')].map(s => ({
      key: s.dataset.gallery, total: Number(s.dataset.total),
      shown: s.querySelectorAll('figure.case').length,
      shownNames: [...s.querySelectorAll('figure.case')].map(f => f.dataset.name),
      listed: [...s.querySelectorAll('tr[data-list]')].map(r => r.dataset.name)})),
    scripts: document.scripts.length,
  };
})()"""
