"""Screenshots cropped to content, in Debian's chromium: a short screen inside a tall
fixed-height layout (the report's tabs) gives a short PNG, content in a shadow root
(Panel, Bokeh) counts, an inactive tab (opacity 0) does not, and nothing under the
content is lost."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from guardian_lib.dashboards.screenshots import (
    CONTENT_MARGIN_PX,
    content_height,
    launch_chromium,
    screenshot_content,
)

PAGE = """<!doctype html><html><body style="margin:0">
<div style="height:4000px; background:#fff">
  <p id="top" style="margin:0; height:40px">headline</p>
  <div style="height:500px"></div>
  <div id="host"></div>
  <div style="height:2000px"></div>
  <div id="tab" style="opacity:0; visibility:hidden"></div>
</div>
<p style="display:none">hidden text far below</p>
<script>
  const root = document.getElementById("host").attachShadow({mode: "open"});
  root.innerHTML = '<div style="height:60px"><span>chart inside a shadow root</span></div>';
  // an inactive tab as Bokeh hides it: opacity 0 outside, visibility visible inside
  document.getElementById("tab").attachShadow({mode: "open"}).innerHTML =
    '<div style="visibility:visible"><table><tr><td>another tab</td></tr></table></div>';
</script></body></html>"""


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def page():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        pg = browser.new_page(viewport={"width": 800, "height": 600})
        yield pg
        browser.close()


def test_screenshot_stops_under_the_content(page, tmp_path):
    html = tmp_path / "screen.html"
    html.write_text(PAGE)
    page.goto(html.as_uri())
    span_bottom = page.evaluate(
        "() => { const s = document.getElementById('host').shadowRoot.querySelector('span');"
        " return Math.ceil(s.getBoundingClientRect().bottom); }"
    )
    assert span_bottom > 540  # below the spacer: only the shadow root's text is there
    assert content_height(page) == span_bottom
    out = tmp_path / "shot.png"
    height = screenshot_content(page, out)
    assert height == span_bottom + CONTENT_MARGIN_PX
    assert _png_size(out) == (800, height)
    assert height < 4000 / 4  # not the 4000 px layout


def test_screenshot_never_goes_past_the_page(page, tmp_path):
    html = tmp_path / "short.html"
    html.write_text('<!doctype html><html><body style="margin:0"><p style="margin:0">'
                    "one line</p></body></html>")  # fmt: skip
    page.goto(html.as_uri())
    out = tmp_path / "short.png"
    height = screenshot_content(page, out)
    full = page.evaluate("() => document.documentElement.scrollHeight")
    assert height <= full and _png_size(out)[1] == height
