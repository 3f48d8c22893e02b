"""Drive headless Chromium over the DevTools protocol (``--remote-debugging-pipe``, stdlib only).

Used by the report browser tests and to make the README screenshots: load a report from disk,
collect console errors/exceptions and log errors (e.g. CSP violations, failed loads), evaluate
a few DOM checks, and take a full-page PNG screenshot. No Playwright, no websocket package, no
network: Chromium talks JSON messages separated by NUL bytes on file descriptors 3 (in) / 4 (out).
"""

from __future__ import annotations

import base64
import json
import os
import select
import shlex
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio",
         "--remote-debugging-pipe")

#: DOM checks run in the page (via DevTools, not by the page itself — reports carry no scripts)
CHECK_JS = r"""
(() => {
  const vis = el => { if (!el) return false; const r = el.getBoundingClientRect();
    const s = getComputedStyle(el); return r.width > 0 && r.height > 0 && s.display !== 'none'
    && s.visibility !== 'hidden' && parseFloat(s.opacity) > 0; };
  const sections = {};
  document.querySelectorAll('section[id]').forEach(s => {
    const h = s.querySelector('h1, h2');
    sections[s.id] = {visible: vis(s), heading: h ? h.textContent.trim() : null, heading_visible: vis(h)}; });
  const imgs = Array.from(document.images);
  return JSON.stringify({
    title: document.title, sections,
    n_img: imgs.length, n_svg: document.querySelectorAll('svg').length,
    n_img_loaded: imgs.filter(i => i.complete && i.naturalWidth > 0).length,
    n_script: document.querySelectorAll('script').length,
    banners: Array.from(document.querySelectorAll('.banner')).map(b => ({cls: b.className, visible: vis(b), text: b.textContent.trim().slice(0, 200)})),
    height: document.documentElement.scrollHeight });
})()
"""


#: layout checks (run after the screenshot; they scroll the page and its scroll boxes):
#: * every table's first body row is visible: after scrolling the page so that the row is in the
#:   middle of the viewport and its scroll box to the top, ``elementFromPoint`` at the row's centre
#:   must return the row or a descendant (a sticky header or anything else on top fails);
#: * nothing overflows its card (``section``) horizontally, no scroll box scrolls sideways, and
#:   no table cell's content is wider than the cell (cut-off headers and values).
LAYOUT_JS = r"""
(() => {
  const where = el => { const s = el.closest('section[id]'); const t = el.closest('table');
    const h = t ? (t.querySelector('th') || {}).textContent || '' : '';
    return (s ? '#' + s.id : 'page') + (t ? ' table[' + Array.from((s || document).querySelectorAll('table')).indexOf(t)
      + '] "' + h.trim().slice(0, 30) + '"' : '') + ' <' + el.tagName.toLowerCase()
      + (el.className ? '.' + String(el.className).split(' ').join('.') : '') + '>'; };
  const scrollers = el => { const out = []; for (let p = el.parentElement; p; p = p.parentElement) {
      const s = getComputedStyle(p); if (/(auto|scroll|hidden)/.test(s.overflowY + s.overflowX)) out.push(p); }
    return out; };
  const tables = [];
  document.querySelectorAll('table').forEach(t => {
    const row = Array.from(t.querySelectorAll('tr')).find(r => r.querySelector('td'));
    if (!row) return;
    const boxes = scrollers(row);
    row.scrollIntoView({block: 'center', inline: 'nearest'});
    boxes.forEach(b => { b.scrollTop = 0; b.scrollLeft = 0; });
    const r = row.getBoundingClientRect();
    // the row's centre (the check asked for) and a point just inside its top edge (a header
    // that covers the upper half of a tall row misses the centre)
    let ok = true, hit = null;
    for (const y of [r.top + r.height / 2, r.top + Math.min(4, r.height / 2)]) {
      const el = document.elementFromPoint(r.left + r.width / 2, y);
      if (!el || !row.contains(el)) { ok = false; hit = el ? where(el) + ' ' + el.textContent.trim().slice(0, 40) : null; }
    }
    tables.push({where: where(row), visible: ok, hit});
  });
  window.scrollTo(0, 0);
  const overflow = [], flagged = new Set();
  // one message per problem: an element inside an element already reported is not repeated
  const report = (el, msg) => { if (!(el.parentElement && flagged.has(el.parentElement))) overflow.push(where(el) + ' ' + msg);
    flagged.add(el); };
  document.querySelectorAll('section[id]').forEach(sec => {
    const c = sec.getBoundingClientRect();
    sec.querySelectorAll('*').forEach(el => {
      if (el.parentElement && flagged.has(el.parentElement)) { flagged.add(el); return; }
      const r = el.getBoundingClientRect();
      if (r.width === 0 && r.height === 0) return;
      const s = getComputedStyle(el);
      if (r.right > c.right + 0.5 || r.left < c.left - 0.5)
        report(el, 'extends ' + Math.round(Math.max(r.right - c.right, c.left - r.left)) + ' px beyond its card');
      else if (/(auto|scroll)/.test(s.overflowX) && el.scrollWidth > el.clientWidth + 1)
        report(el, 'scrolls sideways (' + el.scrollWidth + ' > ' + el.clientWidth + ' px)');
      else if ((el.tagName === 'TD' || el.tagName === 'TH') && el.scrollWidth > el.clientWidth + 1)
        report(el, 'content wider than its cell: "' + el.textContent.trim().slice(0, 40) + '"');
    });
  });
  const doc = document.documentElement;
  if (doc.scrollWidth > doc.clientWidth + 1) overflow.push('page scrolls sideways (' + doc.scrollWidth + ' > ' + doc.clientWidth + ')');
  return JSON.stringify({tables, overflow});
})()
"""


def find_chromium() -> str | None:
    for c in CHROMIUM_CANDIDATES:
        p = shutil.which(c) if not os.path.isabs(c) else (c if os.path.exists(c) else None)
        if p:
            return p
    return None


def _above4(fd: int) -> int:
    """Move fd above 4 so that the child's ``3<&a 4>&b`` redirections cannot clobber it."""
    if fd > 4:
        return fd
    import fcntl

    new = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return new


class BrowserError(RuntimeError):
    pass


class _Pipe:
    def __init__(self, proc, wfd: int, rfd: int):
        self.proc, self.wfd, self.rfd = proc, wfd, rfd
        self.buf = b""
        self.next_id = 0
        self.events: list[dict] = []

    def send(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 30):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.wfd, json.dumps(msg).encode() + b"\0")
        return self._wait(lambda m: m.get("id") == self.next_id, timeout)

    def _read(self, deadline: float) -> dict:
        while b"\0" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError("timed out waiting for Chromium")
            r, _, _ = select.select([self.rfd], [], [], left)
            if r:
                chunk = os.read(self.rfd, 1 << 20)
                if not chunk:
                    raise BrowserError("Chromium closed the DevTools pipe")
                self.buf += chunk
        raw, self.buf = self.buf.split(b"\0", 1)
        return json.loads(raw)

    def _wait(self, pred, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            m = self._read(deadline)
            if pred(m):
                if "error" in m:
                    raise BrowserError(f"DevTools error: {m['error']}")
                return m.get("result", m.get("params", {}))
            if "method" in m:
                self.events.append(m)

    def wait_event(self, method: str, timeout: float = 30) -> dict:
        for i, e in enumerate(self.events):
            if e["method"] == method:
                return self.events.pop(i)
        return self._wait(lambda m: m.get("method") == method, timeout)


def inspect_page(html_path, screenshot: str | os.PathLike | None = None, width: int = 1280,
                 height: int = 900, full_page: bool = True, scale: float = 1.0,
                 chromium: str | None = None, timeout: float = 60, layout: bool = False) -> dict:
    """Open ``html_path`` in headless Chromium; return DOM checks and collected errors.

    Returns a dict: title, sections {id: {visible, heading, heading_visible}}, n_img, n_svg,
    n_img_loaded, n_script, banners, height, errors [str] (console errors, uncaught exceptions,
    log entries of level error — CSP violations and failed loads included); with ``layout``
    also ``tables`` [{where, visible, hit}] (first body row of every table) and ``overflow``
    [str] (see ``LAYOUT_JS``).
    """
    exe = chromium or find_chromium()
    if exe is None:
        raise BrowserError("chromium not found")
    url = Path(html_path).resolve().as_uri()
    profile = tempfile.mkdtemp(prefix="nadfit-chromium-")
    to_chrome_r, to_chrome_w = map(_above4, os.pipe())
    from_chrome_r, from_chrome_w = map(_above4, os.pipe())

    # The DevTools pipe must be fds 3 (commands in) and 4 (responses out). A bash ``exec`` does
    # the fd plumbing, so no preexec_fn (and no Python-level fork hooks) is needed.
    cmd = " ".join(shlex.quote(a) for a in [exe, *FLAGS, f"--user-data-dir={profile}", "about:blank"])
    # (bash, not dash: dash only redirects single-digit fds)
    shell = shutil.which("bash") or "/bin/bash"
    proc = subprocess.Popen([shell, "-c", f"exec {cmd} 3<&{to_chrome_r} 4>&{from_chrome_w}"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            pass_fds=(to_chrome_r, from_chrome_w))
    os.close(to_chrome_r)
    os.close(from_chrome_w)
    pipe = _Pipe(proc, to_chrome_w, from_chrome_r)
    try:
        target = pipe.send("Target.createTarget", {"url": "about:blank"}, timeout=timeout)["targetId"]
        sess = pipe.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for m in ("Runtime.enable", "Log.enable", "Page.enable"):
            pipe.send(m, session=sess)
        pipe.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": scale, "mobile": False}, session=sess)
        pipe.send("Page.navigate", {"url": url}, session=sess)
        pipe._wait(lambda m: m.get("method") == "Page.loadEventFired" and m.get("sessionId") == sess, timeout)
        res = pipe.send("Runtime.evaluate", {"expression": CHECK_JS, "returnByValue": True}, session=sess)
        if "exceptionDetails" in res:
            raise BrowserError(f"check script failed: {res['exceptionDetails']}")
        info = json.loads(res["result"]["value"])
        if screenshot is not None:
            params = {"format": "png", "captureBeyondViewport": full_page}
            if full_page:
                params["clip"] = {"x": 0, "y": 0, "width": width, "height": info["height"], "scale": 1}
            shot = pipe.send("Page.captureScreenshot", params, session=sess, timeout=timeout)
            Path(screenshot).parent.mkdir(parents=True, exist_ok=True)
            Path(screenshot).write_bytes(base64.b64decode(shot["data"]))
        if layout:
            res = pipe.send("Runtime.evaluate", {"expression": LAYOUT_JS, "returnByValue": True}, session=sess)
            if "exceptionDetails" in res:
                raise BrowserError(f"layout script failed: {res['exceptionDetails']}")
            info.update(json.loads(res["result"]["value"]))
        # drain pending events briefly
        try:
            while True:
                pipe.events.append(pipe._read(time.monotonic() + 0.3))
        except BrowserError:
            pass
        errors = []
        for e in pipe.events:
            p = e.get("params", {})
            if e["method"] == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                errors.append("console: " + " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", [])))
            elif e["method"] == "Runtime.exceptionThrown":
                errors.append("exception: " + str(p.get("exceptionDetails", {}).get("text")))
            elif e["method"] == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                errors.append(f"log[{p['entry'].get('source')}]: {p['entry'].get('text')}")
        info["errors"] = errors
        try:
            pipe.send("Browser.close", timeout=5)
        except BrowserError:
            pass
        return info
    finally:
        for fd in (to_chrome_w, from_chrome_r):
            try:
                os.close(fd)
            except OSError:
                pass
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(profile, ignore_errors=True)
