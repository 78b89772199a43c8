"""Smaller offline reports: the page's scripts and data stored gzip-compressed.

A Panel page saved with ``resources=INLINE`` carries one copy of each library (plotly.js
alone is 4.8 MB) and the document's JSON as plain text. :func:`compress_scripts` stores
every inline classic script and the document JSON gzip-compressed (base64, in
``<script type="application/x-guardian-gzip">`` elements that the browser does not run)
and adds a small loader at the end of the page that inflates them with the browser's
``DecompressionStream`` and runs them in their original order, so the page behaves as
before (the embed script, last, finds Bokeh and the document). :func:`expand_scripts`
reverses it, for checks that read the page's code (:func:`~.report.external_references`).
"""

from __future__ import annotations

import base64
import gzip
import re

__all__ = ["compress_scripts", "expand_scripts", "PAYLOAD_TYPE"]

#: ``type`` of the compressed elements (not a script type: the browser leaves them alone).
PAYLOAD_TYPE = "application/x-guardian-gzip"
_OPEN = re.compile(r"<script(\s[^>]*)?>", re.I)
_CLOSE = "</script>"
_ATTR = re.compile(r'(\w[\w-]*)\s*=\s*"([^"]*)"')

#: Runs once the page is parsed: inflate each payload and put the original element back
#: (an inserted classic script runs at once, so the order of the page is kept).
_LOADER = (
    """<script>
(async function () {
  const parts = Array.from(document.querySelectorAll('script[type="PAYLOAD_TYPE"]'));
  const texts = await Promise.all(parts.map(async (el) => {
    const bytes = Uint8Array.from(atob(el.textContent.trim()), (c) => c.charCodeAt(0));
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
    return new Response(stream).text();
  }));
  parts.forEach((el, i) => {
    const s = document.createElement("script");
    if (el.dataset.type) s.type = el.dataset.type;
    if (el.dataset.id) s.id = el.dataset.id;
    s.textContent = texts[i];
    el.replaceWith(s);
  });
})();
</script>"""
).replace("PAYLOAD_TYPE", PAYLOAD_TYPE)


def _blocks(text: str):
    """Top-level ``<script>`` elements: ``(start, end, attrs, body)`` in document order."""
    pos = 0
    while True:
        m = _OPEN.search(text, pos)
        if m is None:
            return
        close = text.find(_CLOSE, m.end())
        if close < 0:
            return
        yield (
            m.start(),
            close + len(_CLOSE),
            dict(_ATTR.findall(m.group(1) or "")),
            text[m.end() : close],
        )
        pos = close + len(_CLOSE)


def compress_scripts(text: str) -> str:
    """The page with its inline classic scripts and JSON documents stored compressed.

    Parameters
    ----------
    text : str
        A self-contained HTML page (after :func:`~.report.make_offline`).

    Returns
    -------
    str
        The page; unchanged when it has no inline script or no ``</body>``.
    """
    if "</body>" not in text:
        return text
    out: list[str] = []
    last = 0
    for start, end, attrs, body in _blocks(text):
        kind = attrs.get("type", "text/javascript").lower()
        runs = kind in ("text/javascript", "application/javascript") and "src" not in attrs
        if not (runs or kind == "application/json"):
            continue  # module shims' options, templates: left as they are
        data = base64.b64encode(gzip.compress(body.encode("utf-8"), 9, mtime=0)).decode("ascii")
        extra = f' data-type="{attrs["type"]}"' if "type" in attrs else ""
        extra += f' data-id="{attrs["id"]}"' if "id" in attrs else ""
        out.append(text[last:start])
        out.append(f'<script type="{PAYLOAD_TYPE}"{extra}>{data}</script>')
        last = end
    if not out:
        return text
    out.append(text[last:])
    page = "".join(out)
    i = page.rindex("</body>")
    return page[:i] + _LOADER + "\n" + page[i:]


def expand_scripts(text: str) -> str:
    """The page with every compressed payload of :func:`compress_scripts` inflated in place."""

    def inflate(m: re.Match[str]) -> str:
        body = gzip.decompress(base64.b64decode(m.group(2))).decode("utf-8")
        return f"<script{m.group(1)}>{body}</script>"

    pattern = re.compile(r'<script type="' + re.escape(PAYLOAD_TYPE) + r'"([^>]*)>([^<]*)</script>')
    return pattern.sub(inflate, text)
