"""Client methods for the server's PII redaction settings (admin key; see docs/security.md).

Mixed into ``goldloop.client.Client``:

    with Client() as gl:
        gl.set_redaction({"builtins": "all", "mode": "placeholder"})
        gl.set_redaction({"builtins": []}, project="debug-traces")  # a project opts out
        gl.preview_redaction({"q": "mail me at jane@example.com"})
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from goldloop.sdk.client_base import ClientPlumbing, Doc
from goldloop.sdk.client_base import segment as _p


def _path(project: str | None) -> str:
    return f"/projects/{_p(project)}/redaction" if project else "/redaction"


class RedactionMixin(ClientPlumbing):
    """``/redaction``, ``/projects/{project}/redaction`` and ``/redaction/preview``."""

    def get_redaction(self, project: str | None = None) -> Doc:
        """The configuration that applies (to the workspace, or a project) and its source."""
        return self._obj("GET", _path(project))

    def set_redaction(self, config: Mapping[str, Any], *, project: str | None = None) -> Doc:
        """Set the workspace's configuration, or a project's (it replaces the workspace's)."""
        return self._obj("PUT", _path(project), json=dict(config))

    def delete_redaction(self, *, project: str | None = None) -> None:
        """Remove the workspace's (or the project's) own configuration."""
        self._request("DELETE", _path(project))

    def preview_redaction(self, value: Any, *, project: str | None = None) -> Doc:
        """What the server would store for ``value``, and the counts; nothing is stored."""
        return self._obj("POST", "/redaction/preview", json={"value": value, "project": project})
