"""The API documentation pages, `/docs` (Swagger UI) and `/redoc` (ReDoc), with their
scripts and styles served from this server instead of a CDN.

FastAPI's own pages load Swagger UI and ReDoc from jsDelivr (and ReDoc's fonts from Google):
without internet, `/docs` is a blank page. The assets come from the `fastapi-offline`
package (Swagger UI 5, ReDoc 2, a favicon), read once per process, and are served under
`/docs/assets/` by name only (anything else there is a 404), with an ETag and `nosniff`, like
the web inbox's files (`api/web.py`). The pages themselves are FastAPI's
`get_swagger_ui_html` / `get_redoc_html` pointed at those files.
"""

from __future__ import annotations

import hashlib
from functools import cache
from importlib import resources

from fastapi import APIRouter, Request, Response
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html

from tidings.api.web import WebFile, answer

ASSETS_PATH = "/docs/assets"
# name in the fastapi-offline package -> content type.
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "redoc.standalone.js": "text/javascript; charset=utf-8",
    "favicon.png": "image/png",
}
# Swagger UI would otherwise ask validator.swagger.io for a badge of a public document.
SWAGGER_UI_PARAMETERS = {"validatorUrl": None}
# Nothing from another origin: ReDoc's footer would load its maker's logo from a CDN (and
# hide it when that fails). FastAPI's pages start the viewers with an inline script and
# style, and ReDoc runs its search in a blob: worker.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self' 'unsafe-inline'; "
        "style-src 'self' 'unsafe-inline'; img-src 'self' data:; worker-src 'self' blob:; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


@cache
def load_assets() -> dict[str, WebFile]:
    """The vendored files, read once per process (about 2.8 MB; they never change while it
    runs). A missing file fails here, when the app is built, rather than as a 500 later."""
    folder = resources.files("fastapi_offline").joinpath("static")
    loaded: dict[str, WebFile] = {}
    for name, content_type in ASSETS.items():
        body = folder.joinpath(name).read_bytes()
        loaded[name] = WebFile(body, content_type, f'"{hashlib.sha256(body).hexdigest()[:32]}"')
    return loaded


def build_router(title: str, openapi_url: str = "/openapi.json") -> APIRouter:
    assets = load_assets()
    router = APIRouter(include_in_schema=False)

    @router.get("/docs")
    async def swagger_ui(request: Request) -> Response:
        root = request.scope.get("root_path", "")
        page = get_swagger_ui_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{title} - Swagger UI",
            swagger_js_url=f"{root}{ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_PATH}/favicon.png",
            swagger_ui_parameters=SWAGGER_UI_PARAMETERS,
        )
        page.headers.update(PAGE_HEADERS)
        return page

    @router.get("/redoc")
    async def redoc(request: Request) -> Response:
        root = request.scope.get("root_path", "")
        page = get_redoc_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{title} - ReDoc",
            redoc_js_url=f"{root}{ASSETS_PATH}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{ASSETS_PATH}/favicon.png",
            with_google_fonts=False,
        )
        page.headers.update(PAGE_HEADERS)
        return page

    @router.get(ASSETS_PATH + "/{name}")
    async def asset(name: str, request: Request) -> Response:
        file = assets.get(name)
        if file is None:
            return Response(
                b'{"error":{"code":"not_found","message":"no such file"}}',
                status_code=404, media_type="application/json",
            )
        return answer(request, file, {})

    return router
