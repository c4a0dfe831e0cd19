#!/usr/bin/env python3
"""Loads HTML pages in headless Chromium and reports every error a reader would hit.

Usage: html_check.py CHROMIUM [--screenshot PAGE=PNG ...] PAGE.html ...

Talks the Chrome DevTools Protocol over --remote-debugging-pipe (fd 3 = commands to the
browser, fd 4 = its replies, messages separated by NUL), so it needs only the Python standard
library: no npm, no websocket client, no chromedriver.

For each page it collects, until the load event:
  * JavaScript exceptions (Runtime.exceptionThrown),
  * console errors and failed asserts (Runtime.consoleAPICalled),
  * browser log errors (Log.entryAdded, level "error"), e.g. "Failed to load resource",
  * failed loads of any sub-resource (Network.loadingFailed: a missing attachment file),
then checks in the DOM that every <img> decoded (lazy ones loaded first) and that every local
link or media source (a[href], source/video/audio[src] with a file: URL) names a file that
exists. Prints one JSON object: {"chromium": VERSION, "pages": [{"page", "errors": [...]}]}.
"""

import base64
import json
import os
import select
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

LOAD_TIMEOUT = 60.0


class Browser:
    def __init__(self, chromium):
        self.profile = tempfile.TemporaryDirectory(prefix="iosnap-chromium-")
        self.log_path = os.path.join(self.profile.name, "chromium-stderr.log")
        log = open(self.log_path, "wb")
        to_browser_r, to_browser_w = os.pipe()
        from_browser_r, from_browser_w = os.pipe()

        def child_fds():
            # Chromium reads commands on fd 3 and writes replies on fd 4.
            os.dup2(to_browser_r, 3)
            os.dup2(from_browser_w, 4)

        self.proc = subprocess.Popen(
            [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--mute-audio",
                "--hide-scrollbars",
                "--window-size=1000,1400",
                "--user-data-dir=" + self.profile.name,
                "--remote-debugging-pipe",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,
            # Not pass_fds: subprocess closes unlisted fds after preexec_fn, which would close
            # the 3 and 4 it just made. os.pipe() ends are non-inheritable, so only the dup2'd
            # copies (inheritable) reach chromium.
            close_fds=False,
            preexec_fn=child_fds,
        )
        log.close()
        os.close(to_browser_r)
        os.close(from_browser_w)
        self.w = to_browser_w
        self.r = from_browser_r
        self.buf = b""
        self.next_id = 0
        self.events = []

    def log_tail(self):
        try:
            with open(self.log_path, "rb") as f:
                lines = f.read().decode(errors="replace").splitlines()
            return "\n".join(l for l in lines if "dbus" not in l)[-3000:]
        except OSError as e:
            return str(e)

    def send(self, method, params=None, session=None):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        data = json.dumps(msg).encode() + b"\0"
        while data:
            try:
                n = os.write(self.w, data)
            except BrokenPipeError:
                raise EOFError("chromium exited; its stderr ends with:\n" + self.log_tail())
            data = data[n:]
        return self.next_id

    def read_one(self, deadline):
        while b"\0" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("chromium did not answer in time")
            ready, _, _ = select.select([self.r], [], [], left)
            if not ready:
                continue
            chunk = os.read(self.r, 1 << 20)
            if not chunk:
                raise EOFError("chromium closed the pipe; its stderr ends with:\n" + self.log_tail())
            self.buf += chunk
        msg, _, self.buf = self.buf.partition(b"\0")
        return json.loads(msg)

    def call(self, method, params=None, session=None, timeout=LOAD_TIMEOUT):
        want = self.send(method, params, session)
        deadline = time.monotonic() + timeout
        while True:
            msg = self.read_one(deadline)
            if msg.get("id") == want:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)

    def wait_event(self, method, session, timeout=LOAD_TIMEOUT):
        deadline = time.monotonic() + timeout
        for i, e in enumerate(self.events):
            if e.get("method") == method and e.get("sessionId") == session:
                del self.events[i]
                return e
        while True:
            msg = self.read_one(deadline)
            if msg.get("method") == method and msg.get("sessionId") == session:
                return msg
            if "method" in msg:
                self.events.append(msg)

    def close(self):
        try:
            self.send("Browser.close")
            self.proc.wait(timeout=10)
        except Exception:
            self.proc.kill()
            self.proc.wait()
        os.close(self.w)
        os.close(self.r)
        self.profile.cleanup()


# Lazy images (loading="lazy", right for long conversations) load only when scrolled to:
# make them eager and wait until each one decoded or failed.
DOM_CHECK = """
(async () => {
  const bad = [];
  await Promise.all(Array.from(document.images).map(img => {
    img.loading = 'eager';
    return img.decode().catch(() => bad.push(['image did not decode', img.src]));
  }));
  for (const img of document.images) {
    if (!img.complete || img.naturalWidth === 0) bad.push(['image did not load', img.src]);
  }
  const links = [];
  for (const a of document.querySelectorAll('a[href]')) links.push(a.href);
  for (const m of document.querySelectorAll('source[src], video[src], audio[src]')) links.push(m.src);
  return JSON.stringify({bad, links});
})()
"""


def file_path(url):
    p = urllib.parse.urlsplit(url)
    if p.scheme != "file":
        return None
    return urllib.request.url2pathname(p.path)


def check_page(b, session, page, screenshot):
    url = "file://" + urllib.request.pathname2url(os.path.abspath(page))
    b.events.clear()
    b.call("Page.navigate", {"url": url}, session)
    b.wait_event("Page.loadEventFired", session)
    # A round trip after the load event: events queued before it are now in b.events.
    res = b.call(
        "Runtime.evaluate",
        {"expression": DOM_CHECK, "returnByValue": True, "awaitPromise": True},
        session,
    )
    errors = []
    urls = {}
    for e in b.events:
        if e.get("sessionId") != session:
            continue
        m, p = e["method"], e.get("params", {})
        if m == "Network.requestWillBeSent":
            urls[p.get("requestId")] = p.get("request", {}).get("url")
        elif m == "Network.loadingFailed" and not p.get("canceled"):
            errors.append(
                f"failed to load {urls.get(p.get('requestId'), '?')}: {p.get('errorText')}"
            )
        elif m == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            desc = d.get("exception", {}).get("description") or d.get("text")
            errors.append(f"JavaScript exception: {desc}")
        elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            args = " ".join(
                str(a.get("value", a.get("description", ""))) for a in p.get("args", [])
            )
            errors.append(f"console.{p.get('type')}: {args}")
        elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            en = p["entry"]
            errors.append(f"log error: {en.get('text')} {en.get('url', '')}".strip())
    dom = json.loads(res.get("result", {}).get("value", "{}"))
    for what, src in dom.get("bad", []):
        errors.append(f"{what}: {src}")
    for link in dom.get("links", []):
        path = file_path(link)
        if path is not None and not os.path.exists(path):
            errors.append(f"link to a missing file: {link}")
    if screenshot:
        shot = b.call(
            "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": False}, session
        )
        with open(screenshot, "wb") as f:
            f.write(base64.b64decode(shot["data"]))
    return {"page": page, "errors": errors}


def main():
    args = sys.argv[1:]
    if not args:
        sys.exit(__doc__)
    chromium = args.pop(0)
    shots = {}
    pages = []
    while args:
        a = args.pop(0)
        if a == "--screenshot":
            page, _, png = args.pop(0).partition("=")
            shots[os.path.abspath(page)] = png
        else:
            pages.append(a)
    b = Browser(chromium)
    try:
        version = b.call("Browser.getVersion").get("product")
        target = b.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = b.call("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        for domain in ("Page", "Runtime", "Log", "Network"):
            b.call(f"{domain}.enable", {}, session)
        out = [check_page(b, session, p, shots.get(os.path.abspath(p))) for p in pages]
    finally:
        b.close()
    json.dump({"chromium": version, "pages": out}, sys.stdout)


if __name__ == "__main__":
    main()
