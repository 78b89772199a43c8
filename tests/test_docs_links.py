"""Relative links in README.md and docs/*.md point at files and headings that exist.

A link ``[text](path.md#anchor)`` or ``[text](#anchor)`` resolves when the file exists
(relative to the page) and, for an anchor, one of the target page's headings has that
anchor as GitHub renders it (lower case, punctuation dropped, spaces to hyphens, ``-1``,
``-2`` … for repeated headings). External links (``http:``, ``https:``, ``mailto:``) are
not followed. Fenced code blocks are skipped, in the pages and in their headings.
"""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
LINK = re.compile(r"(?<!!)\[(?:[^\[\]]|\[[^\]]*\])*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
EXTERNAL = ("http://", "https://", "mailto:")


def _prose(text: str) -> list[str]:
    """The page's lines outside fenced code blocks (a fenced line becomes empty)."""
    out, fence = [], None
    for line in text.splitlines():
        mark = re.match(r"\s*(`{3,}|~{3,})", line)
        if mark and (fence is None or mark.group(1)[0] == fence[0]):
            fence = None if fence else mark.group(1)
            out.append("")
            continue
        out.append("" if fence else line)
    return out


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading's text (before de-duplication).

    Code and emphasis marks go with the rest of the punctuation; ``_`` stays (a word
    character), so a heading with ``_emphasis_`` is not supported.
    """
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip())  # a link: its text
    text = re.sub(r"[^\w\- ]", "", text.lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every heading anchor of a markdown page, repeated headings numbered as GitHub does."""
    seen: dict[str, int] = {}
    out = set()
    for line in _prose(page.read_text(encoding="utf-8")):
        m = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not m:
            continue
        base = slug(m.group(1))
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def links(page: Path) -> list[tuple[int, str]]:
    """(line number, target) of every relative link of a page, outside code; a link
    whose text wraps onto the next line counts (at the line where it starts)."""
    lines = [re.sub(r"`[^`]*`", "", line) for line in _prose(page.read_text(encoding="utf-8"))]
    text = "\n".join(lines)  # inline code is not a link; link texts may wrap
    out = []
    for m in LINK.finditer(text):
        if not m.group(1).startswith(EXTERNAL):
            out.append((text.count("\n", 0, m.start()) + 1, m.group(1)))
    return out


def broken(page: Path) -> list[str]:
    """The page's relative links whose file or anchor does not exist, as ``line: target``."""
    bad = []
    for no, target in links(page):
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            bad.append(f"{no}: {target} (no such file)")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            bad.append(f"{no}: {target} (no such heading in {dest.name})")
    return bad


def test_slug_follows_github():
    assert slug("Headline on unseen variants (closing note of issue 15, 2026-12-05)") == (
        "headline-on-unseen-variants-closing-note-of-issue-15-2026-12-05"
    )
    assert slug("Two more layouts: 1:2 × 1:8") == "two-more-layouts-12--18"
    assert slug("The closed loop (`guardian_lib.loop`)") == "the-closed-loop-guardian_libloop"


def test_repeated_headings_are_numbered_and_code_is_not_a_heading(tmp_path):
    page = tmp_path / "p.md"
    page.write_text(
        "# A\n\n```\n# not a heading\n```\n\n## A\n\n[ok](#a-1) [bad](#not-a-heading)\n"
    )
    assert anchors(page) == {"a", "a-1"}
    assert broken(page) == ["9: #not-a-heading (no such heading in p.md)"]


def test_a_link_whose_text_wraps_is_checked(tmp_path):
    page = tmp_path / "a.md"
    page.write_text("# Top\n\nSee [the top\nheading](#top) and [a\nmissing one](#nowhere).\n")
    assert links(page) == [(3, "#top"), (4, "#nowhere")]
    assert broken(page) == ["4: #nowhere (no such heading in a.md)"]


def test_a_missing_file_is_reported(tmp_path):
    page = tmp_path / "p.md"
    page.write_text("[x](other.md) [y](https://example.org/none.md) `[z](gone.md)`\n")
    assert broken(page) == ["1: other.md (no such file)"]
    (tmp_path / "other.md").write_text("# Other\n")
    assert broken(page) == []


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_relative_links_resolve(page):
    assert broken(page) == []
