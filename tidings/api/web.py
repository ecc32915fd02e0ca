"""The web inbox (`/inbox`), the operator console (`/admin`) and their static files
(`/static/...`): fixed files shipped in the package, read once when the router is built.

Guarantees: only the files named in `FILES` are served (anything else under `/static/` is a
404, so no path ever reaches the file system); every answer carries an exact content type,
`X-Content-Type-Options: nosniff` and an ETag, with `If-None-Match` answered 304; the pages
carry a Content-Security-Policy that allows scripts, styles and connections from the
server's own origin only (no inline script, no CDN), so they work offline on loopback.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources

from fastapi import APIRouter, Request, Response

# name -> content type. The service worker lives under /static/ too (scope /static/ is
# enough for push: a push subscription needs a registration, not control of the page).
FILES = {
    "inbox.html": "text/html; charset=utf-8",
    "admin.html": "text/html; charset=utf-8",
    "tidings-inbox.js": "text/javascript; charset=utf-8",
    "tidings-socket.js": "text/javascript; charset=utf-8",
    "tidings-time.js": "text/javascript; charset=utf-8",
    "tidings-settings.js": "text/javascript; charset=utf-8",
    "tidings-admin.js": "text/javascript; charset=utf-8",
    "tidings-types.js": "text/javascript; charset=utf-8",
    "tidings-feeds.js": "text/javascript; charset=utf-8",
    "tidings-charts.js": "text/javascript; charset=utf-8",
    "tidings-connections.js": "text/javascript; charset=utf-8",
    "tidings-page.js": "text/javascript; charset=utf-8",
    "tidings-sw.js": "text/javascript; charset=utf-8",
    "tidings.css": "text/css; charset=utf-8",
    "tidings-inbox.css": "text/css; charset=utf-8",
}

PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; worker-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": PAGE_CSP,
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
# Pages may change with a release and hold no secret: revalidate each time (a 304 is cheap).
# Static files are embedded by other origins' pages as module scripts (which need CORS).
STATIC_HEADERS = {
    "Cross-Origin-Resource-Policy": "cross-origin",
    "Access-Control-Allow-Origin": "*",
}


@dataclass(frozen=True)
class WebFile:
    body: bytes
    content_type: str
    etag: str


def load_files() -> dict[str, WebFile]:
    """Every file of `FILES`, read from the package (a missing one fails here, at startup,
    rather than as a 500 later)."""
    folder = resources.files("tidings").joinpath("web")
    loaded: dict[str, WebFile] = {}
    for name, content_type in FILES.items():
        body = folder.joinpath(name).read_bytes()
        digest = hashlib.sha256(body).hexdigest()[:32]
        loaded[name] = WebFile(body, content_type, f'"{digest}"')
    return loaded


def answer(request: Request, file: WebFile, extra: dict[str, str]) -> Response:
    """`file` with its ETag, revalidated on every use (`no-cache`), 304 when unchanged."""
    headers = {"ETag": file.etag, "Cache-Control": "no-cache",
               "X-Content-Type-Options": "nosniff", **extra}
    if file.etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(file.body, media_type=file.content_type, headers=headers)


def build_router() -> APIRouter:
    files = load_files()
    router = APIRouter(include_in_schema=False)

    @router.get("/inbox")
    async def inbox(request: Request) -> Response:
        return answer(request, files["inbox.html"], PAGE_HEADERS)

    @router.get("/admin")
    async def admin(request: Request) -> Response:
        return answer(request, files["admin.html"], PAGE_HEADERS)

    @router.get("/static/{name}")
    async def static(name: str, request: Request) -> Response:
        file = files.get(name)
        if file is None or name.endswith(".html"):
            return Response(
                b'{"error":{"code":"not_found","message":"no such file"}}',
                status_code=404, media_type="application/json",
            )
        return answer(request, file, STATIC_HEADERS)

    return router
