"""PII redaction settings: /redaction (the workspace's) and /projects/{project}/redaction (a
project's override), admin only; /redaction/preview shows what would be stored. See
docs/security.md."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from goldloop.http.deps import Admin, Ctx
from goldloop.services import redaction as svc

router = APIRouter(tags=["redaction"])


class RuleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(description="Lower-case name (letters, digits, _), counted under it.")
    pattern: str = Field(description="A Python regular expression (checked when saved).")
    placeholder: str | None = Field(
        default=None, description="What replaces a match; default `<NAME>`."
    )


class RedactionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    builtins: list[str] | str = Field(
        default_factory=list,
        description='Built-in detectors: "all" or a list of email, phone, card, iban, ip, secret.',
    )
    rules: list[RuleIn] = Field(default_factory=list, description="Custom regex rules.")
    mode: str = Field(
        default="placeholder",
        description="placeholder (`<EMAIL>`) or hash (`<EMAIL:3f9a12bc>`, keyed HMAC).",
    )


class RuleOut(BaseModel):
    name: str
    pattern: str
    placeholder: str


class RedactionOut(BaseModel):
    project: str | None = Field(description="The project asked about; null: the workspace.")
    source: str = Field(
        description="Where the configuration that applies comes from: project, workspace, "
        "settings default or none."
    )
    active: bool = Field(description="Whether anything is redacted.")
    builtins: list[str]
    rules: list[RuleOut]
    mode: str


class PreviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    value: Any = Field(description="Any JSON value.")
    project: str | None = Field(default=None, description="Use this project's configuration.")


class PreviewOut(BaseModel):
    value: Any = Field(description="The value as it would be stored.")
    counts: dict[str, int] = Field(description="Values replaced, by detector or rule.")


def _doc(body: RedactionIn) -> dict[str, Any]:
    return body.model_dump(exclude_none=True)


@router.get("/redaction", response_model=RedactionOut)
def get_redaction(ctx: Ctx, who: Admin) -> dict[str, Any]:
    return svc.view(ctx, who)


@router.put("/redaction", response_model=RedactionOut)
def put_redaction(body: RedactionIn, ctx: Ctx, who: Admin) -> dict[str, Any]:
    return svc.set_config(ctx, who, _doc(body))


@router.delete("/redaction", status_code=204)
def delete_redaction(ctx: Ctx, who: Admin) -> None:
    svc.delete_config(ctx, who)


@router.post("/redaction/preview", response_model=PreviewOut)
def preview_redaction(body: PreviewIn, ctx: Ctx, who: Admin) -> dict[str, Any]:
    return svc.preview(ctx, who, body.value, body.project)


@router.get("/projects/{project}/redaction", response_model=RedactionOut)
def get_project_redaction(project: str, ctx: Ctx, who: Admin) -> dict[str, Any]:
    return svc.view(ctx, who, project)


@router.put("/projects/{project}/redaction", response_model=RedactionOut)
def put_project_redaction(project: str, body: RedactionIn, ctx: Ctx, who: Admin) -> dict[str, Any]:
    return svc.set_config(ctx, who, _doc(body), project)


@router.delete("/projects/{project}/redaction", status_code=204)
def delete_project_redaction(project: str, ctx: Ctx, who: Admin) -> None:
    svc.delete_config(ctx, who, project)
