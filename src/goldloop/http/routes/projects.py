"""/api/v1/projects"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from goldloop.domain.clock import to_iso
from goldloop.domain.errors import NotFound
from goldloop.http.deps import Admin, Ctx, Who
from goldloop.services import projects as svc
from goldloop.store.projects import ProjectRow

router = APIRouter(prefix="/projects", tags=["projects"])


class ProjectIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str = Field(min_length=1, max_length=svc.MAX_NAME)
    description: str | None = None


class ProjectPatch(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str | None = Field(default=None, min_length=1, max_length=svc.MAX_NAME)
    description: str | None = None


class ProjectOut(BaseModel):
    id: str
    name: str
    description: str | None
    created_at: str | None
    extra: dict[str, Any] | None = Field(
        default=None,
        description="Attributes the sender gave (metadata, reference_dataset_id, end_time).",
    )

    @classmethod
    def of(cls, row: ProjectRow) -> ProjectOut:
        return cls(
            id=row.id,
            name=row.name,
            description=row.description,
            created_at=to_iso(row.created_at),
            extra=row.extra,
        )


class ProjectList(BaseModel):
    items: list[ProjectOut]
    next_cursor: str | None = Field(description="Pass as `cursor` to get the next page.")


class ProjectDeleted(BaseModel):
    id: str
    deleted: bool
    runs_deleted: int


@router.post("", status_code=201, response_model=ProjectOut)
def create_project(body: ProjectIn, ctx: Ctx, who: Who) -> ProjectOut:
    return ProjectOut.of(svc.create(ctx, who, body.name, body.description))


@router.get("", response_model=ProjectList)
def list_projects(
    ctx: Ctx,
    who: Who,
    name: str | None = Query(default=None, description="Return only the project with this name."),
    limit: int = Query(default=100, ge=1, le=1000),
    cursor: str | None = Query(default=None),
) -> ProjectList:
    if name is not None:
        try:
            return ProjectList(
                items=[ProjectOut.of(svc.get_by_name(ctx, who, name))], next_cursor=None
            )
        except NotFound:
            return ProjectList(items=[], next_cursor=None)
    page = svc.list_projects(ctx, who, limit=limit, cursor=cursor)
    return ProjectList(items=[ProjectOut.of(p) for p in page.items], next_cursor=page.next_cursor)


@router.get("/{project_id}", response_model=ProjectOut)
def get_project(project_id: str, ctx: Ctx, who: Who) -> ProjectOut:
    return ProjectOut.of(svc.get(ctx, who, project_id))


@router.patch("/{project_id}", response_model=ProjectOut)
def update_project(project_id: str, body: ProjectPatch, ctx: Ctx, who: Who) -> ProjectOut:
    row = svc.update(ctx, who, project_id, name=body.name, description=body.description)
    return ProjectOut.of(row)


@router.delete("/{project_id}", response_model=ProjectDeleted)
def delete_project(project_id: str, ctx: Ctx, who: Admin) -> ProjectDeleted:
    removed = svc.delete(ctx, who, project_id)
    return ProjectDeleted(id=project_id, deleted=True, runs_deleted=removed)
