"""Screenshots of every dashboard screen, taken in Debian's chromium with the network off.

Used by the report notebook (PNG files beside ``report.html``, so a reader sees the
screens without running anything) and by the browser tests. Every request that is not
``file:``, ``data:``, ``blob:`` or loopback is blocked and recorded; console errors and
page errors are recorded too.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from guardian_lib.errors import GuardianError
from guardian_lib.i18n import label, normalize_lang

__all__ = [
    "SCREEN_KEYS",
    "CHROMIUM_ARGS",
    "BrowserMissingError",
    "Capture",
    "chromium_path",
    "launch_chromium",
    "watch_page",
    "open_screen",
    "wait_drawn",
    "capture_screens",
    "content_height",
    "screenshot_content",
    "CONTENT_MARGIN_PX",
]

#: Label keys of the six screens, in tab order.
SCREEN_KEYS = (
    "noc_overview",
    "risk_queue",
    "customer_dossier",
    "kpis_savings",
    "explainability",
    "optical_matrix",
)
#: Flags for a headless chromium that makes no background connections.
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)
_LOCAL = ("file:", "data:", "blob:", "about:")
_LOOPBACK = re.compile(r"^(https?|wss?)://(127\.0\.0\.1|localhost|\[::1\])(:\d+)?(/|$)")


class BrowserMissingError(GuardianError):
    """Debian's chromium is not installed (``apt-get install -y chromium``)."""


@dataclass
class Capture:
    """What a browser session saw: screenshots, console errors and blocked requests."""

    paths: list[Path] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)


def chromium_path() -> str:
    """The chromium executable (``GUARDIAN_CHROMIUM`` overrides ``chromium`` on PATH).

    Raises
    ------
    BrowserMissingError
        None found; the message says how to install it.
    """
    candidates = [
        os.environ.get("GUARDIAN_CHROMIUM"),
        shutil.which("chromium"),
        "/usr/bin/chromium",
    ]
    for c in candidates:
        if c and Path(c).is_file():
            return c
    raise BrowserMissingError(
        "chromium not found (looked at $GUARDIAN_CHROMIUM, PATH and /usr/bin/chromium): install "
        "Debian's package with `apt-get update && apt-get install -y chromium` "
        "(never `playwright install`)"
    )


def launch_chromium(playwright: Any) -> Any:
    """A headless Debian chromium browser from a ``sync_playwright()`` handle."""
    return playwright.chromium.launch(executable_path=chromium_path(), args=list(CHROMIUM_ARGS))


def watch_page(page: Any, capture: Capture) -> None:
    """Block non-local requests on ``page`` and record them and console errors in ``capture``."""

    def route(r: Any) -> None:
        url = r.request.url
        if url.startswith(_LOCAL) or _LOOPBACK.match(url):
            r.continue_()
        else:
            capture.blocked.append(url)
            r.abort()

    page.route("**/*", route)
    page.on(
        "console",
        lambda m: capture.console_errors.append(m.text) if m.type == "error" else None,
    )
    page.on("pageerror", lambda e: capture.console_errors.append(f"pageerror: {e}"))


def open_screen(
    page: Any, key: str, lang: str = "en", settle_ms: int = 0, timeout_s: float = 60.0
) -> bool:
    """Click the tab of screen ``key`` (one of :data:`SCREEN_KEYS`) and wait until it is
    drawn (:func:`wait_drawn`), then ``settle_ms`` more. [ms, s]

    Returns
    -------
    bool
        The screen was drawn within ``timeout_s``.
    """
    text = label(key, normalize_lang(lang))
    tab = page.locator(".bk-tab", has_text=re.compile("^" + re.escape(text) + "$")).first
    tab.click()
    drawn = wait_drawn(page, text, timeout_s)
    if settle_ms:
        page.wait_for_timeout(settle_ms)
    return drawn


#: What the page shows, for :func:`wait_drawn`: the active tab's label, the bottom of the
#: tab bar, and a signature of the content (bottom of the lowest visible leaf, Plotly
#: charts and elements in the page, shadow roots included).
_DRAWN_JS = """() => {
  const contentBottom = (CONTENT_BOTTOM);
  let active = null, tabsBottom = 0, charts = 0, elements = 0;
  const walk = (root) => {
    for (const el of root.querySelectorAll("*")) {
      elements++;
      if (el.shadowRoot) walk(el.shadowRoot);
      if (el.classList.contains("bk-tab")) {
        tabsBottom = Math.max(tabsBottom, el.getBoundingClientRect().bottom + window.scrollY);
        if (el.classList.contains("bk-active")) active = (el.textContent || "").trim();
      } else if (el.classList.contains("main-svg")) {
        charts++;
      }
    }
  };
  walk(document);
  return [active, Math.ceil(tabsBottom), [contentBottom(), charts, elements].join(",")];
}"""
#: Polls of an unchanged page that make it drawn, and the time between polls. [-, ms]
DRAWN_POLLS, DRAWN_POLL_MS = 3, 100


def wait_drawn(page: Any, tab_label: str, timeout_s: float = 60.0) -> bool:
    """Wait until the tab ``tab_label`` is active and its screen drawn: content shown under
    the tab bar, and the same content (its bottom, charts, elements) in
    :data:`DRAWN_POLLS` polls :data:`DRAWN_POLL_MS` apart. Polled from Python (a page's
    content security policy may forbid the browser-side polling of ``wait_for_function``).

    Returns
    -------
    bool
        Drawn within ``timeout_s``; ``False`` once the time is up. [s]
    """
    deadline = time.monotonic() + timeout_s
    last, same = None, 0
    while True:
        active, tabs_bottom, sig = page.evaluate(_DRAWN_JS)
        bottom = int(sig.split(",")[0])
        if active == tab_label and bottom > tabs_bottom:
            same = same + 1 if sig == last else 1
            last = sig
            if same >= DRAWN_POLLS:
                return True
        else:
            last, same = None, 0
        if time.monotonic() > deadline:
            return False
        page.wait_for_timeout(DRAWN_POLL_MS)


#: Bottom of the lowest visible leaf element (text, chart, image, input), looking inside
#: the shadow roots Panel and Bokeh render into. Containers are not counted: their fixed
#: heights are what leaves a tall blank area under a short screen. A leaf under an
#: ancestor of opacity 0 is not visible (Bokeh hides inactive tabs that way, and their
#: content may set ``visibility: visible`` again inside its shadow root).
_CONTENT_BOTTOM_JS = """() => {
  let bottom = 0;
  const leafTags = new Set(["CANVAS", "SVG", "svg", "IMG", "INPUT", "SELECT", "BUTTON",
                            "TEXTAREA", "VIDEO"]);
  const transparent = new Map();  // element -> it or an ancestor has opacity 0
  const parentOf = (n) => {
    const p = n.parentNode;
    return p && p.nodeType === 11 ? p.host : p;  // step out of a shadow root to its host
  };
  const seeThrough = (el) => {
    if (!el || el.nodeType !== 1) return false;
    if (transparent.has(el)) return transparent.get(el);
    const v = getComputedStyle(el).opacity === "0" || seeThrough(parentOf(el));
    transparent.set(el, v);
    return v;
  };
  const walk = (root) => {
    for (const el of root.querySelectorAll("*")) {
      if (el.shadowRoot) walk(el.shadowRoot);
      const leaf = leafTags.has(el.tagName) ||
        (el.childElementCount === 0 && (el.textContent || "").trim() !== "");
      if (!leaf) continue;
      const r = el.getBoundingClientRect();
      if (r.width <= 0 || r.height <= 0 || r.bottom + window.scrollY <= bottom) continue;
      const st = getComputedStyle(el);
      if (st.visibility === "hidden" || st.display === "none" || seeThrough(el)) continue;
      bottom = r.bottom + window.scrollY;
    }
  };
  walk(document);
  return Math.ceil(bottom);
}"""
_DRAWN_JS = _DRAWN_JS.replace("CONTENT_BOTTOM", _CONTENT_BOTTOM_JS)
#: Space kept under the lowest content. [px]
CONTENT_MARGIN_PX = 24


def content_height(page: Any) -> int:
    """Height of the page's visible content: the bottom of its lowest visible leaf
    element (text, chart, image, form control). [px]"""
    return int(page.evaluate(_CONTENT_BOTTOM_JS))


def screenshot_content(page: Any, path: Path | str) -> int:
    """Save a PNG of the page cropped to its content (full width, from the top down to the
    lowest visible content plus :data:`CONTENT_MARGIN_PX`); returns its height. [px]

    A full-page screenshot of a short screen in a tall fixed-height layout is mostly
    blank; this one stops under the content (never below the page's own end).
    """
    full = int(page.evaluate("() => document.documentElement.scrollHeight"))
    width = int(page.evaluate("() => document.documentElement.clientWidth"))
    height = max(1, min(full, content_height(page) + CONTENT_MARGIN_PX))
    page.screenshot(path=str(path), full_page=True,
                    clip={"x": 0, "y": 0, "width": width, "height": height})  # fmt: skip
    return height


def capture_screens(
    url: str,
    out_dir: Path | str,
    lang: str = "en",
    timeout_s: float = 180.0,
    width_px: int = 1400,
) -> Capture:
    """Open ``url`` and save ``NN_<screen>.png`` of each screen in ``out_dir``, cropped to
    its content (:func:`screenshot_content`).

    Parameters
    ----------
    url : str
        ``file://…/report.html`` or ``http://127.0.0.1:<port>/``.
    out_dir : path
    lang : {'en', 'pt-BR'}, default 'en'
        Language of the page (tabs are found by their label).
    timeout_s : float, default 180
        Time allowed for the page to show its tabs. [s]
    width_px : int, default 1400
        Viewport width. [px]

    Returns
    -------
    Capture
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # no loop here: Playwright's sync API can run in this thread
        return _capture(url, Path(out_dir), lang, timeout_s, width_px)
    # Inside a running loop (a Jupyter kernel): the sync API needs a thread without one.
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(_capture, url, Path(out_dir), lang, timeout_s, width_px).result()


def _capture(url: str, out: Path, lang: str, timeout_s: float, width_px: int) -> Capture:
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    cap = Capture()
    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        try:
            page = browser.new_page(viewport={"width": width_px, "height": 1000})
            watch_page(page, cap)
            page.goto(url, timeout=timeout_s * 1000)
            page.wait_for_selector(".bk-tab", timeout=timeout_s * 1000)
            for i, key in enumerate(SCREEN_KEYS, start=1):
                open_screen(page, key, lang)
                path = out / f"{i:02d}_{key}.png"
                screenshot_content(page, path)
                cap.paths.append(path)
        finally:
            browser.close()
    return cap
