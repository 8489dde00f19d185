"""Issue 22 (8): ``/api/v1/docs`` loads nothing from another host and has the dashboard's CSP.

Swagger UI's files come from the installed package; the page and its assets are served with the
same security headers as the dashboard. A real browser check is in tests/browser.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import httpx

import goldloop.http.dashboard
from goldloop.http.dashboard.web import CONTENT_SECURITY_POLICY, SECURITY_HEADERS

DOCS = "/api/v1/docs"
VENDOR = Path(goldloop.http.dashboard.__file__).parent / "static" / "vendor"


def _references(html: str) -> list[str]:
    return re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html)


async def test_the_docs_page_references_no_other_host_and_has_the_csp(
    anon: httpx.AsyncClient,
) -> None:
    r = await anon.get(DOCS)  # no key needed, as for the schema itself
    assert r.status_code == 200
    assert r.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    for name, value in SECURITY_HEADERS.items():
        assert r.headers[name] == value, name
    html = r.text
    assert "<script>" not in html  # no inline script: the CSP would block it anyway
    assert re.search(r"(?i)\b(https?:)?//", html) is None, "an absolute or protocol-relative URL"
    refs = _references(html)
    assert len(refs) >= 4
    for ref in refs:
        assert ref.startswith("/"), ref
        assert not ref.startswith("//"), ref
        asset = await anon.get(ref)
        assert asset.status_code == 200, ref
        assert asset.headers["x-content-type-options"] == "nosniff"
        if ref.endswith(".js"):
            assert asset.headers["content-type"].startswith("text/javascript"), ref
    assert 'data-openapi-url="/api/v1/openapi.json"' in html


async def test_the_start_up_script_turns_the_public_validator_off(anon: httpx.AsyncClient) -> None:
    script = (await anon.get("/static/api-docs.js")).text
    assert "validatorUrl: null" in script
    assert re.search(r"https?://", script.split("\n", 2)[2]) is None


def test_the_vendored_files_are_the_published_ones() -> None:
    """The hashes in the vendor README are those of the files served (an edit shows here)."""
    readme = (VENDOR / "README.md").read_text()
    for name, digest in re.findall(r"- `([^`]+)`: `([0-9a-f]{64})`", readme):
        assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() == digest, name
    assert "swagger-ui-bundle.js" in readme


async def test_the_docs_page_is_not_in_the_schema(anon: httpx.AsyncClient) -> None:
    paths = (await anon.get("/api/v1/openapi.json")).json()["paths"]
    assert not [p for p in paths if p.startswith(DOCS)]
