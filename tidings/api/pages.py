"""The frame of the small server-rendered pages that links in emails open (unsubscribe,
the preference centre): the language, the stylesheet of the other pages, and headers that
keep a page whose URL is a credential out of caches, indexes and Referers."""

from __future__ import annotations

from html import escape

from fastapi.responses import HTMLResponse

# The token is a credential in the URL: keep it out of caches, search indexes and the
# Referer of anything the page might link to. No script at all; forms post to the page.
HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": ("default-src 'none'; style-src 'self'; img-src 'self' data:; "
                                "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"),
}
# Relative, so that the pages work behind a proxy that serves Tidings under a path: a page
# at `.../preferences/{token}` finds the stylesheet at `.../static/tidings.css` (one folder
# up: `depth` 1; a bad link with more path segments is deeper).
STYLESHEET = "static/tidings.css"


def html_lang(language: str) -> str:
    return language.replace("_", "-")


def depth_of(token: str) -> int:
    """How many folders below the site's root a page at `/{kind}/{token}` is."""
    return token.count("/") + 1


def page(language: str, title: str, body: str, status: int = 200,
         depth: int = 1) -> HTMLResponse:
    """A whole page: `body` is HTML already escaped by the caller; `title` is text."""
    html = (
        f'<!doctype html>\n<html lang="{escape(html_lang(language))}">\n<head>\n'
        '<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)}</title>\n"
        '<link rel="icon" href="data:,">\n'
        f'<link rel="stylesheet" href="{"../" * depth}{STYLESHEET}">\n'
        '</head>\n<body class="linked">\n'
        '<header class="top"><span class="brand">Tidings</span></header>\n'
        f'<main class="narrow">\n<section class="card">\n<h1>{escape(title)}</h1>\n{body}\n'
        "</section>\n</main>\n</body>\n</html>\n"
    )
    return HTMLResponse(html, status_code=status, headers=HEADERS)
