"""LangSmith feedback configs -> Goldloop score configs (declared feedback keys).

A key has at most one config here, and it is always enforced: feedback that does not fit it is
refused with a 400 on every path. LangSmith's ``type`` maps onto ``kind``; a category's
``value`` is its score and its ``label`` its name. A Goldloop boolean key reads back as a
categorical config with the values 0 (``false``) and 1 (``true``). Writing needs an admin key.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from goldloop.domain.clock import to_iso
from goldloop.domain.errors import InvalidInput, NotFound
from goldloop.domain.feedback import Category, KeySpec, make_spec
from goldloop.services import feedback
from goldloop.services.context import Principal, ServiceContext

TYPES = {"continuous": "continuous", "categorical": "categorical", "freeform": "freeform"}
_CONFIG_NS = uuid.UUID("0b0c6a52-4f8e-4d0f-9d1e-2b6f1a7e5c31")


def config_json(spec: KeySpec) -> dict[str, Any]:
    """A LangSmith ``FeedbackConfig``."""
    if spec.kind == "continuous":
        return {"type": "continuous", "min": spec.min_score, "max": spec.max_score}
    if spec.kind == "boolean":
        categories = [{"value": 0.0, "label": "false"}, {"value": 1.0, "label": "true"}]
        return {"type": "categorical", "categories": categories}
    if spec.kind == "categorical":
        categories = [
            {"value": c.score if c.score is not None else float(i), "label": c.label}
            for i, c in enumerate(spec.categories or ())
        ]
        return {
            "type": "categorical",
            "categories": categories,
            "allows_multiple_categories": False,
        }
    return {"type": "freeform"}


def schema_json(spec: KeySpec, who: Principal, modified_at: int | None) -> dict[str, Any]:
    """A LangSmith ``FeedbackConfigSchema``: ``tenant_id`` and ``modified_at`` always."""
    return {
        "id": str(uuid.uuid5(_CONFIG_NS, f"{who.workspace_id}:{spec.key}")),
        "feedback_key": spec.key,
        "feedback_config": config_json(spec),
        "tenant_id": who.workspace_id,
        "modified_at": to_iso(modified_at or 0),
        "is_lower_score_better": spec.lower_is_better,
        "is_enforced": True,
        "is_first": True,
        "is_deleted": False,
    }


def _key(body: Mapping[str, Any]) -> str:
    key = body.get("feedback_key")
    if not isinstance(key, str) or not key:
        raise InvalidInput("the body needs a 'feedback_key'", details={"field": "feedback_key"})
    return key


def _number(value: Any, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(f"{where} must be a number", details={"field": "feedback_config"})
    return float(value)


def _categories(raw: Any) -> list[dict[str, Any]]:
    if not isinstance(raw, list):
        raise InvalidInput(
            "feedback_config.categories must be a list of {value, label}",
            details={"field": "feedback_config"},
        )
    out = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise InvalidInput(
                f"feedback_config.categories[{i}] must be an object with 'value' and 'label'",
                details={"field": "feedback_config"},
            )
        score = _number(item.get("value"), f"feedback_config.categories[{i}].value")
        label = item.get("label")
        if label is None and score is not None:
            label = f"{score:g}"
        out.append({"label": label, "score": score})
    return out


def spec_of(key: str, config: Any, base: KeySpec | None, lower: Any) -> KeySpec:
    """A declaration from a LangSmith config; description and rubric come from ``base``."""
    if not isinstance(config, dict):
        raise InvalidInput(
            "feedback_config must be an object", details={"field": "feedback_config"}
        )
    kind = TYPES.get(str(config.get("type")))
    if kind is None:
        raise InvalidInput(
            f"feedback_config.type must be continuous, categorical or freeform, "
            f"not {config.get('type')!r}",
            details={"field": "feedback_config"},
        )
    if config.get("allows_multiple_categories"):
        raise InvalidInput(
            "allows_multiple_categories is not supported: a Goldloop feedback holds one "
            "category (send one feedback per category)",
            details={"field": "feedback_config"},
        )
    categories = _categories(config.get("categories")) if kind == "categorical" else None
    lower_is_better = base.lower_is_better if base is not None else False
    if lower is not None:
        if not isinstance(lower, bool):
            raise InvalidInput(
                "is_lower_score_better must be true or false",
                details={"field": "is_lower_score_better"},
            )
        lower_is_better = lower
    return make_spec(
        key,
        kind,
        min_score=_number(config.get("min"), "feedback_config.min")
        if kind == "continuous"
        else None,
        max_score=_number(config.get("max"), "feedback_config.max")
        if kind == "continuous"
        else None,
        categories=categories,
        description=base.description if base else None,
        rubric=base.rubric if base else None,
        correction_expected=base.correction_expected if base else False,
        lower_is_better=lower_is_better,
    )


def _save(ctx: ServiceContext, who: Principal, spec: KeySpec) -> KeySpec:
    saved, _ = feedback.put_key(
        ctx,
        who,
        spec.key,
        spec.kind,
        min_score=spec.min_score,
        max_score=spec.max_score,
        categories=(
            [{"label": c.label, "score": c.score} for c in spec.categories]
            if spec.categories is not None
            else None
        ),
        description=spec.description,
        rubric=spec.rubric,
        correction_expected=spec.correction_expected,
        lower_is_better=spec.lower_is_better,
    )
    return saved


def create(ctx: ServiceContext, who: Principal, body: Mapping[str, Any]) -> dict[str, Any]:
    """``POST /feedback-configs``: an identical config is returned as it is; a different one
    for a declared key is a 400, as on a LangSmith workspace with one config per key."""
    key = _key(body)
    existing = feedback.find_key(ctx, who, key)
    spec = spec_of(key, body.get("feedback_config"), existing, body.get("is_lower_score_better"))
    if existing is not None:
        if config_json(existing) != config_json(spec) or (
            existing.lower_is_better != spec.lower_is_better
        ):
            raise InvalidInput(
                f"Feedback config already exists for key {key!r} (and differs): update it "
                "instead, or delete it first",
                details={"field": "feedback_key"},
            )
        return schema_json(existing, who, feedback.key_times(ctx, who).get(key))
    saved = _save(ctx, who, spec)
    return schema_json(saved, who, feedback.key_times(ctx, who).get(key))


def declare_on_first_use(ctx: ServiceContext, who: Principal, key: str, config: Any) -> None:
    """The ``feedback_config`` of a created feedback declares its key when an admin key sends
    it and the key is not declared yet; otherwise (a member key, a declared key, a config
    Goldloop cannot hold) it changes nothing and the feedback is checked as usual."""
    if config is None or not who.is_admin or feedback.find_key(ctx, who, key) is not None:
        return
    try:
        spec = spec_of(key, config, None, None)
    except InvalidInput:
        return
    _save(ctx, who, spec)


def update(ctx: ServiceContext, who: Principal, body: Mapping[str, Any]) -> dict[str, Any]:
    """``PATCH /feedback-configs``: a new config, a direction, categories added or removed."""
    key = _key(body)
    existing = feedback.find_key(ctx, who, key)
    if existing is None:
        raise NotFound(f"no feedback config for key {key!r}")
    config = body.get("feedback_config")
    if config is None:
        config = config_json(existing)
    spec = spec_of(key, config, existing, body.get("is_lower_score_better"))
    added = body.get("add_categories")
    removed = body.get("remove_categories")
    if added is not None or removed is not None:
        if spec.kind != "categorical":
            raise InvalidInput(
                f"feedback key {key!r} is declared {spec.kind}, not categorical",
                details={"field": "add_categories" if added is not None else "remove_categories"},
            )
        cats = list(spec.categories or ())
        if added is not None:
            cats += [Category(c["label"], c["score"]) for c in _categories(added)]
        if removed is not None:
            drop = {_number(v, "remove_categories[]") for v in _as_list(removed)}
            cats = [c for c in cats if c.score not in drop]
        spec = spec_of(
            key,
            {
                "type": "categorical",
                "categories": [{"value": c.score, "label": c.label} for c in cats],
            },
            spec,
            None,
        )
    saved = _save(ctx, who, spec)
    return schema_json(saved, who, feedback.key_times(ctx, who).get(key))


def _as_list(raw: Any) -> list[Any]:
    if not isinstance(raw, list):
        raise InvalidInput("remove_categories must be a list of values")
    return raw


def list_configs(
    ctx: ServiceContext,
    who: Principal,
    *,
    keys: list[str],
    name_contains: str | None,
    offset: int,
    limit: int,
) -> list[dict[str, Any]]:
    specs = feedback.list_keys(ctx, who)
    if keys:
        specs = [s for s in specs if s.key in keys]
    if name_contains:
        specs = [s for s in specs if name_contains.lower() in s.key.lower()]
    times = feedback.key_times(ctx, who)
    return [schema_json(s, who, times.get(s.key)) for s in specs[offset : offset + limit]]


def delete(ctx: ServiceContext, who: Principal, key: str | None, config_id: str | None) -> None:
    """``DELETE /feedback-configs?feedback_key=`` (or ``?id=``); the feedback stays."""
    if key is None and config_id is not None:
        matches = [
            s.key
            for s in feedback.list_keys(ctx, who)
            if schema_json(s, who, None)["id"] == config_id
        ]
        if not matches:
            raise NotFound(f"no feedback config with id {config_id!r}")
        key = matches[0]
    if key is None:
        raise InvalidInput("pass feedback_key or id", details={"field": "feedback_key"})
    feedback.delete_key(ctx, who, key)
