"""``/api/v1/docs``: Swagger UI served from the package, under the dashboard's CSP.

No asset comes from another host, so the page works on a server without internet access and
cannot be changed by a CDN. Swagger UI's files are vendored under ``dashboard/static/vendor/``
(see the README there: version, licence, hashes) and served by the dashboard's ``/static``. The
page's start-up code is a static file too (``static/api-docs.js``): the Content-Security-Policy
forbids inline scripts.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import HTMLResponse

from goldloop.http.dashboard.web import SECURITY_HEADERS

__all__ = ["install"]

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Goldloop API</title>
<link rel="icon" href="/static/favicon.svg">
<link rel="stylesheet" href="/static/vendor/swagger-ui.css">
</head>
<body>
<div id="swagger-ui" data-openapi-url="{openapi_url}"></div>
<script src="/static/vendor/swagger-ui-bundle.js"></script>
<script src="/static/api-docs.js"></script>
</body>
</html>
"""


def install(app: FastAPI, *, docs_url: str, openapi_url: str) -> None:
    """Add the page at ``docs_url``, reading the schema from ``openapi_url``."""
    page = _PAGE.format(openapi_url=openapi_url)

    @app.get(docs_url, include_in_schema=False)
    def api_docs() -> HTMLResponse:
        return HTMLResponse(page, headers=SECURITY_HEADERS)
