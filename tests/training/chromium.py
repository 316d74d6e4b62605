"""A real headless Chromium (the Debian package) for checking pages the way a person opens them.

The browser is driven over the DevTools protocol through `--remote-debugging-pipe` (JSON
messages on file descriptors 3 and 4, no network port, no extra Python package), so a test
sees exactly what the browser's console and network panel would show: console errors, uncaught
exceptions, resources that failed to load, images that did not decode, and a screenshot.

`find_chromium()` finds the browser, or installs it with apt-get when it is missing and this
process may (root, apt-get present, ANYRES_NO_INSTALL unset); otherwise it says why not, for
the test to skip with that reason.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field

NAMES = ("chromium", "chromium-browser")
INSTALL_TIMEOUT = 900


def _which() -> str | None:
    given = os.environ.get("ANYRES_CHROMIUM")
    if given:
        return given if shutil.which(given) else None
    return next(filter(None, map(shutil.which, NAMES)), None)


def _apt_install() -> str:
    """Install the Debian package; '' on success, else what went wrong."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]
    for steps in ([install], [["apt-get", "update"], install]):  # the package lists may be stale
        try:
            done = [subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=INSTALL_TIMEOUT)
                    for cmd in steps]
        except (OSError, subprocess.TimeoutExpired) as exc:
            return str(exc)
        if all(r.returncode == 0 for r in done):
            return ""
    return (done[-1].stderr.strip().splitlines() or ["apt-get failed"])[-1]


def find_chromium() -> tuple[str | None, str]:
    """(path, '') or (None, why there is none)."""
    found = _which()
    if found:
        return found, ""
    if os.environ.get("ANYRES_CHROMIUM"):
        return None, f"ANYRES_CHROMIUM={os.environ['ANYRES_CHROMIUM']} is not an executable"
    if os.environ.get("ANYRES_NO_INSTALL"):
        return None, "chromium is not installed and ANYRES_NO_INSTALL is set (apt-get install chromium)"
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return None, "chromium is not installed and cannot be installed here (needs root and apt-get): " \
                     "apt-get install chromium, or set ANYRES_CHROMIUM to a Chromium binary"
    why = _apt_install()
    found = _which()
    return (found, "") if found else (None, f"apt-get install chromium failed: {why}")


@dataclass
class PageCheck:
    errors: list[str] = field(default_factory=list)  # console errors, exceptions, failed loads
    broken_images: list[str] = field(default_factory=list)  # <img> that did not load and decode
    images: int = 0
    screenshot: bytes = b""


class Chromium:
    """One headless browser; `check(url)` opens a page in a fresh tab and reports on it."""

    def __init__(self, binary: str, width: int = 1200, height: int = 2000, timeout: float = 60):
        self.timeout = timeout
        self.profile = tempfile.TemporaryDirectory(prefix="anyres-chromium-")
        to_browser, self._to_browser = os.pipe()
        self._from_browser, from_browser = os.pipe()

        def descriptors() -> None:  # the protocol's fds: 3 reads commands, 4 writes replies
            high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_browser, from_browser)]
            os.dup2(high[0], 3)
            os.dup2(high[1], 4)

        self.process = subprocess.Popen(
            [binary, "--headless=new", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe",
             "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--mute-audio",
             f"--user-data-dir={self.profile.name}", f"--window-size={width},{height}", "about:blank"],
            pass_fds=(3, 4), preexec_fn=descriptors,  # kept open when the child closes the others, after preexec_fn
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_browser)
        os.close(from_browser)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict] = []

    def _send(self, method: str, params: dict | None = None, session: str | None = None) -> int:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        return self._next_id

    def _read_until(self, done) -> dict:
        deadline = time.monotonic() + self.timeout
        while True:
            while b"\0" in self._buffer:
                raw, self._buffer = self._buffer.split(b"\0", 1)
                message = json.loads(raw)
                if "id" not in message:
                    self.events.append(message)
                if done(message):
                    return message
            ready, _, _ = select.select([self._from_browser], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                raise TimeoutError("chromium did not answer in time")
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                raise EOFError("chromium closed the pipe")
            self._buffer += chunk

    def call(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        number = self._send(method, params, session)
        reply = self._read_until(lambda m: m.get("id") == number)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply["result"]

    def check(self, url: str) -> PageCheck:
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable", session=session)
        self.events.clear()
        self.call("Page.navigate", {"url": url}, session=session)
        self._read_until(lambda m: m.get("method") == "Page.loadEventFired" and m.get("sessionId") == session)
        images = self.call("Runtime.evaluate", {"returnByValue": True, "awaitPromise": True, "expression": (
            "Promise.all(Array.from(document.images).map(i => i.decode().then(() => null, () => i.src)))")},
            session=session)["result"]["value"]
        shot = self.call("Page.captureScreenshot", {"format": "png"}, session=session)["data"]
        result = PageCheck(broken_images=[src for src in images if src], images=len(images),
                           screenshot=base64.b64decode(shot))
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Log.entryAdded" and params["entry"]["level"] == "error":
                result.errors.append(f"{params['entry'].get('text')} ({params['entry'].get('url')})")
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                result.errors.append("console: " + " ".join(str(a.get("value")) for a in params.get("args", [])))
            elif method == "Runtime.exceptionThrown":
                result.errors.append("exception: " + params["exceptionDetails"].get("text", ""))
            elif method == "Network.loadingFailed":
                result.errors.append(f"load failed: {params.get('errorText')}")
        self.call("Target.closeTarget", {"targetId": target})
        return result

    def close(self) -> None:
        try:
            self._send("Browser.close")
            self.process.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()
        finally:
            os.close(self._to_browser)
            os.close(self._from_browser)
            self.profile.cleanup()


def screenshot_is_blank(png: bytes) -> bool:
    """One colour (or nearly): the page did not render."""
    import io

    import numpy as np
    from PIL import Image

    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=np.float64)
    return pixels.std() < 2.0 or len(np.unique(pixels)) < 8

