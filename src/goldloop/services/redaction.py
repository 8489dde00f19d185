"""PII redaction at ingest: each workspace's configuration (a project may override it), cached
compiled in each process, and applied to runs, feedback and dataset examples before they are
stored (see docs/security.md).

Which configuration applies: a run's project's own, else its workspace's, else the settings'
default (``redaction_builtins``, ``redaction_mode``). Feedback and examples use the workspace's
(or the default). Each process keeps the compiled configuration of a workspace for
``redaction_cache_s`` seconds; a change made through this process applies at once, one made
through another process (several API processes on PostgreSQL) within that time.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Connection

from goldloop.domain.errors import Forbidden, InvalidInput, NotFound, Overloaded
from goldloop.domain.redaction import (
    BUILTINS,
    Counts,
    RedactionConfig,
    RedactionError,
    Redactor,
    parse_builtins,
    parse_config,
)
from goldloop.domain.run_items import RunPatch
from goldloop.services import audit
from goldloop.services.context import Principal, ServiceContext
from goldloop.services.run_queries import resolve_project
from goldloop.store import redaction as store

log = logging.getLogger("goldloop.redaction")


class Unavailable(Overloaded):
    """Data cannot be stored because the workspace's redaction cannot be applied (503)."""


RUN_FIELDS = ("inputs", "outputs", "error", "metadata", "tags")
"""The run columns redacted (with every value in ``extra``: events, attributes, usage...). Ids,
names, kinds, times and the session, thread and user ids are kept as they are."""

NONE = "none"
SETTINGS = "settings default"
WORKSPACE = "workspace"
PROJECT = "project"


@dataclass(frozen=True)
class WorkspaceRedaction:
    """A workspace's compiled redactors: its own (or the default), and per project name."""

    default: Redactor | None
    by_project: dict[str, Redactor | None] = field(default_factory=dict)

    def for_project(self, name: str | None) -> Redactor | None:
        if name is not None and name in self.by_project:
            return self.by_project[name]
        return self.default

    @property
    def active(self) -> bool:
        return self.default is not None or any(r is not None for r in self.by_project.values())


class RedactorCache:
    """Compiled redaction per workspace, kept ``ttl_s`` seconds (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[str, tuple[float, WorkspaceRedaction]] = {}

    def get(self, workspace_id: str) -> WorkspaceRedaction | None:
        with self._lock:
            found = self._items.get(workspace_id)
        if found is None or found[0] < time.monotonic():
            return None
        return found[1]

    def put(self, workspace_id: str, value: WorkspaceRedaction, ttl_s: float) -> None:
        with self._lock:
            self._items[workspace_id] = (time.monotonic() + ttl_s, value)

    def invalidate(self, workspace_id: str) -> None:
        with self._lock:
            self._items.pop(workspace_id, None)


def default_config(ctx: ServiceContext) -> RedactionConfig:
    """The settings' configuration for workspaces without their own."""
    return RedactionConfig(
        builtins=parse_builtins(ctx.settings.redaction_builtins),
        mode=ctx.settings.redaction_mode,
    )


def _key(ctx: ServiceContext) -> bytes:
    return ctx.settings.redaction_hash_key.encode()


def _compiled(ctx: ServiceContext, config: RedactionConfig) -> Redactor | None:
    if not config.active:
        return None
    return Redactor(config, hash_key=_key(ctx))


def for_workspace(ctx: ServiceContext, workspace_id: str) -> WorkspaceRedaction:
    """The workspace's compiled redaction (cached; see the module docstring)."""
    cached = ctx.redactors.get(workspace_id)
    if cached is not None:
        return cached
    own, by_project = ctx.db.read(lambda c: store.for_workspace(c, workspace_id))
    try:
        default = _compiled(
            ctx, parse_config(own, probe=False) if own is not None else default_config(ctx)
        )
        projects = {
            name: _compiled(ctx, parse_config(doc, probe=False)) for name, doc in by_project.items()
        }
    except RedactionError as exc:
        # Fail closed: nothing is stored unredacted. E.g. hash mode after the server's
        # redaction_hash_key was removed.
        log.error("workspace %s: its redaction configuration cannot be used: %s", workspace_id, exc)
        raise Unavailable(
            f"this workspace's redaction configuration cannot be used ({exc}); nothing was "
            "stored. An admin must set it again (PUT /api/v1/redaction)",
            retry_after=60.0,
        ) from None
    found = WorkspaceRedaction(default, projects)
    ctx.redactors.put(workspace_id, found, ctx.settings.redaction_cache_s)
    return found


def redact_patches(
    ctx: ServiceContext, workspace_id: str, projects: Sequence[str], patches: Sequence[RunPatch]
) -> None:
    """Redact run patches in place, each with its project's configuration."""
    redaction = for_workspace(ctx, workspace_id)
    if not redaction.active:
        return
    counts = Counts()
    for name, patch in zip(projects, patches, strict=True):
        redactor = redaction.for_project(name)
        if redactor is None:
            continue
        fields = patch.fields
        for column in RUN_FIELDS:
            if column in fields:
                fields[column] = redactor.redact(fields[column], counts)
        if patch.extra:
            patch.extra = redactor.redact(patch.extra, counts)
    _count(ctx, counts)


def active(ctx: ServiceContext, workspace_id: str) -> bool:
    return for_workspace(ctx, workspace_id).active


def redact_values(
    ctx: ServiceContext, workspace_id: str, values: Mapping[str, Any]
) -> Mapping[str, Any]:
    """Feedback or example fields (name -> JSON value) redacted with the workspace's
    configuration; a new dict (the same one when nothing applies)."""
    redactor = for_workspace(ctx, workspace_id).default
    if redactor is None:
        return values
    counts = Counts()
    out = {name: redactor.redact(value, counts) for name, value in values.items()}
    _count(ctx, counts)
    return out


def _count(ctx: ServiceContext, counts: Counts) -> None:
    if counts.by_detector:
        # custom rules' names are a workspace's own: /metrics (one for all workspaces) sums them
        by_detector: dict[str, int] = {}
        for name, n in counts.by_detector.items():
            label = name if name in BUILTINS else "custom"
            by_detector[label] = by_detector.get(label, 0) + n
        ctx.telemetry.redacted(by_detector)


# --- reading and changing the configuration (admin only) -----------------------------------


def _need_admin(who: Principal) -> None:
    if not who.is_admin:
        raise Forbidden("redaction settings need an admin API key")


def view(ctx: ServiceContext, who: Principal, project: str | None = None) -> dict[str, Any]:
    """The configuration that applies (to the workspace, or to one project) and where it comes
    from: ``project``, ``workspace``, ``settings default`` or ``none``."""
    _need_admin(who)
    project_id = resolve_project(ctx, who, project).id if project else None

    def read(conn: Connection) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        own = store.get(conn, who.workspace_id)
        return own, store.get(conn, who.workspace_id, project_id) if project_id else None

    own, override = ctx.db.read(read)
    if override is not None:
        config, source = parse_config(override, probe=False), PROJECT
    elif own is not None:
        config, source = parse_config(own, probe=False), WORKSPACE
    else:
        config = default_config(ctx)
        source = SETTINGS if config.active else NONE
    return {"project": project, "source": source, "active": config.active, **config.to_dict()}


def set_config(
    ctx: ServiceContext, who: Principal, doc: Any, project: str | None = None
) -> dict[str, Any]:
    """Set the workspace's configuration, or a project's override (it replaces the workspace's
    for that project's runs). Applies to data stored from now on."""
    _need_admin(who)
    try:
        config = parse_config(doc)
        if config.mode == "hash" and not ctx.settings.redaction_hash_key:
            raise RedactionError(
                "hash mode needs a server key: set the redaction_hash_key setting "
                "(GOLDLOOP_REDACTION_HASH_KEY)",
                "mode",
            )
    except RedactionError as exc:
        raise InvalidInput(
            f"{exc.field}: {exc}" if exc.field else str(exc), details={"field": exc.field}
        ) from None
    project_id = resolve_project(ctx, who, project).id if project else store.WORKSPACE
    now = ctx.clock()

    def write(conn: Connection) -> None:
        store.put(conn, who.workspace_id, project_id, config.to_dict(), now)
        audit.entry(
            conn,
            now,
            who.workspace_id,
            who,
            "redaction.set",
            target_type="project" if project else "workspace",
            target_id=project_id or who.workspace_id,
            details={
                "builtins": list(config.builtins),
                "rules": [r.name for r in config.rules],
                "mode": config.mode,
            },
        )

    ctx.db.write(write)
    ctx.redactors.invalidate(who.workspace_id)
    return view(ctx, who, project)


def delete_config(ctx: ServiceContext, who: Principal, project: str | None = None) -> None:
    """Remove the workspace's configuration (the settings' default applies again; nothing to
    remove is not an error) or a project's override (the workspace's applies; 404 if none)."""
    _need_admin(who)
    project_id = resolve_project(ctx, who, project).id if project else store.WORKSPACE
    now = ctx.clock()

    def write(conn: Connection) -> bool:
        if not store.delete(conn, who.workspace_id, project_id):
            return False
        audit.entry(
            conn,
            now,
            who.workspace_id,
            who,
            "redaction.removed",
            target_type="project" if project else "workspace",
            target_id=project_id or who.workspace_id,
        )
        return True

    if not ctx.db.write(write) and project:
        # (the workspace's: removing what is not there is no error, it is already the default)
        raise NotFound(f"project {project!r} has no redaction configuration of its own")
    ctx.redactors.invalidate(who.workspace_id)


def preview(
    ctx: ServiceContext, who: Principal, value: Any, project: str | None = None
) -> dict[str, Any]:
    """What the configuration that applies would store for ``value`` (nothing is stored)."""
    _need_admin(who)
    redaction = for_workspace(ctx, who.workspace_id)
    redactor = redaction.for_project(project)
    if redactor is None:
        return {"value": value, "counts": {}}
    counts = Counts()
    return {"value": redactor.redact(value, counts), "counts": dict(counts.by_detector)}


__all__ = [
    "RedactorCache",
    "WorkspaceRedaction",
    "delete_config",
    "for_workspace",
    "preview",
    "redact_patches",
    "redact_values",
    "set_config",
    "view",
]
