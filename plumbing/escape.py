"""Dataset text made safe for the documents it goes into: Markdown, HTML, CSV, and links.

Titles, owners, licences and URLs come from a manifest or an index, which may be hostile
(SECURITY.md). Every string is first `clip`ped: control characters become visible escapes
(`console.printable`) and its length is bounded; then it is escaped for its format, here for
Markdown and CSV, and for HTML by the Jinja2 templates' autoescape (shards/tools/templates/,
training/run/templates/). Only plain http(s) URLs ever become links (`safe_url`): a
`javascript:` or `data:` URL stays text.
"""

from __future__ import annotations

import re
from urllib.parse import quote, urlsplit

from plumbing.console import printable

TEXT_LIMIT = 300  # characters of a title, an owner or a name in a document
URL_LIMIT = 2000  # what browsers and servers reliably accept


def clip(value: object, limit: int = TEXT_LIMIT) -> str:
    """One line of printable text, at most `limit` characters ('' for None)."""
    if value is None:
        return ""
    text = printable(value)  # newlines, ESC, bidi overrides: shown as \x.., never acted on
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


# Dataset text is only ever placed mid-line (after a table's "| " or a label), where block syntax
# (# - + > 1.) means nothing; what remains is inline syntax: emphasis, code, links and images,
# raw HTML and entities, table cells, strikethrough and maths, escaped with a backslash each.
_MARKDOWN = re.compile(r"([\\`*_{}\[\]()<>|&~$@])")
# GFM turns bare URLs, www. names and e-mail addresses into links: broken up the same way.
_AUTOLINK = re.compile(r"(?i)(?<=[a-z0-9])(:)(?=//)|(?<=\bwww)(\.)")


def md(value: object, limit: int = TEXT_LIMIT) -> str:
    """Dataset text as literal Markdown: no markup, link, raw HTML or table cell break in it."""
    return _AUTOLINK.sub(r"\\\1\2", _MARKDOWN.sub(r"\\\1", clip(value, limit)))


def safe_url(value: object) -> str | None:
    """An http(s) URL fit to be a link target in Markdown or HTML, or None.

    Characters that could end a Markdown link or an HTML attribute, or that are not ASCII, are
    percent-encoded; a URL with control characters or over URL_LIMIT is not linked at all.
    """
    if not isinstance(value, str) or not value or len(value) > URL_LIMIT or printable(value) != value:
        return None
    try:
        parts = urlsplit(value.strip())
    except ValueError:  # e.g. an invalid IPv6 netloc
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return quote(value.strip(), safe="/:?#[]@!$&*+,;=%-._~")


def md_link(text: object, url: object, limit: int = TEXT_LIMIT) -> str:
    """`[text](url)` when the URL is safe, else the text alone (or the URL shown as text)."""
    target = safe_url(url)
    label = md(text if text not in (None, "") else url, limit)
    return f"[{label}]({target})" if target else label


def csv_cell(value: object, limit: int = URL_LIMIT) -> str:
    """A CSV field that a spreadsheet shows as text: a leading = + - @ (a formula) is quoted away."""
    text = clip(value, limit)
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text
