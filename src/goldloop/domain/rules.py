"""Automation rules: what a rule is and how its parts are checked (pure).

A rule watches one project. On every completed run (``trigger: run``; root runs unless
``root_only`` is false) or every new feedback (``trigger: feedback``) that passes its filter and
falls in its deterministic sample, it performs its actions, each at most once per object:

- ``add_to_dataset``: add the run to a dataset (``prefer_correction`` takes the reference
  output from the latest correction), with lineage;
- ``evaluate``: run online evaluators on the run and store their results as feedback (source
  ``online-evaluator``); deterministic evaluators first, an optional judge as tiebreaker;
- ``webhook``: POST the run, its trace link and the rule to a URL (through the delivery outbox);
- ``add_to_queue``: put the run in an annotation queue (``queue``: its id or name) for people
  to review, e.g. a sample of the runs an online check failed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from goldloop.domain.errors import InvalidInput
from goldloop.domain.outbound import MASKED_PATH, masked_url

TRIGGERS = ("run", "feedback")
ACTION_TYPES = ("add_to_dataset", "evaluate", "webhook", "add_to_queue")


@dataclass(frozen=True, slots=True)
class Action:
    type: str
    config: dict[str, Any] = field(default_factory=dict)


def _fail(message: str, where: str) -> InvalidInput:
    return InvalidInput(message, details={"field": where})


def parse_actions(raw: Any) -> list[Action]:
    if not isinstance(raw, list) or not raw:
        raise _fail("actions must be a non-empty list", "actions")
    actions = []
    for i, item in enumerate(raw):
        where = f"actions[{i}]"
        if not isinstance(item, dict) or item.get("type") not in ACTION_TYPES:
            raise _fail(f"{where}.type must be one of {', '.join(ACTION_TYPES)}", where)
        config = {k: v for k, v in item.items() if k != "type"}
        _check_action(item["type"], config, where)
        actions.append(Action(item["type"], config))
    return actions


def _check_action(kind: str, config: dict[str, Any], where: str) -> None:
    if kind == "add_to_dataset":
        if not isinstance(config.get("dataset"), str) or not config["dataset"]:
            raise _fail(f"{where}.dataset (a dataset name or id) is required", where)
        if not isinstance(config.get("prefer_correction", True), bool):
            raise _fail(f"{where}.prefer_correction must be true or false", where)
        split = config.get("split")
        if split is not None and not isinstance(split, str):
            raise _fail(f"{where}.split must be a string", where)
    elif kind == "evaluate":
        evaluators = config.get("evaluators")
        if not isinstance(evaluators, list) or not evaluators:
            raise _fail(f"{where}.evaluators must be a non-empty list", where)
        for j, ev in enumerate(evaluators):
            if not isinstance(ev, dict) or not isinstance(ev.get("name"), str):
                raise _fail(f"{where}.evaluators[{j}] needs a name", where)
            if not isinstance(ev.get("config", {}), dict):
                raise _fail(f"{where}.evaluators[{j}].config must be an object", where)
        judge = config.get("judge")
        if judge is not None and (not isinstance(judge, dict) or "name" not in judge):
            raise _fail(f"{where}.judge must be an evaluator object with a name", where)
    elif kind == "add_to_queue":
        if not isinstance(config.get("queue"), str) or not config["queue"]:
            raise _fail(f"{where}.queue (an annotation queue's id or name) is required", where)
    elif kind == "webhook":
        url = config.get("url")
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
            raise _fail(f"{where}.url must be an http(s) URL", where)


def check_rule(trigger: str, sample_rate: float, actions: list[Action]) -> None:
    if trigger not in TRIGGERS:
        raise _fail(f"trigger must be one of {', '.join(TRIGGERS)}", "trigger")
    if not 0.0 <= sample_rate <= 1.0:
        raise _fail("sample_rate must be between 0 and 1", "sample_rate")
    if trigger == "feedback" and any(a.type == "evaluate" for a in actions):
        raise _fail("evaluate actions need trigger 'run'", "actions")


def action_key(rule_id: str, object_id: str, index: int) -> str:
    """The idempotency key of one action on one object (also sent to webhook receivers)."""
    return f"rule:{rule_id}:{object_id}:{index}"


FEEDBACK_MATCH_KEYS = ("key", "has_correction", "min_score", "max_score", "source", "value")


def parse_feedback_match(raw: Any) -> dict[str, Any] | None:
    """Conditions on the feedback itself, for ``trigger: feedback`` rules, e.g.
    ``{"key": "correctness", "has_correction": true}`` or ``{"min_score": 1}``."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise _fail("feedback_match must be an object", "feedback_match")
    unknown = set(raw) - set(FEEDBACK_MATCH_KEYS)
    if unknown:
        raise _fail(
            f"feedback_match: unknown condition {sorted(unknown)[0]!r}; use "
            + ", ".join(FEEDBACK_MATCH_KEYS),
            "feedback_match",
        )
    for bound in ("min_score", "max_score"):
        if bound in raw and (
            isinstance(raw[bound], bool) or not isinstance(raw[bound], int | float)
        ):
            raise _fail(f"feedback_match.{bound} must be a number", "feedback_match")
    if "has_correction" in raw and not isinstance(raw["has_correction"], bool):
        raise _fail("feedback_match.has_correction must be true or false", "feedback_match")
    return dict(raw)


def feedback_matches(match: dict[str, Any] | None, fb: dict[str, Any]) -> bool:
    """Whether one feedback (key, score, value, has_correction, source) meets the conditions."""
    if not match:
        return True
    if "key" in match and fb.get("key") != match["key"]:
        return False
    if "has_correction" in match and bool(fb.get("has_correction")) != match["has_correction"]:
        return False
    if "source" in match and fb.get("source") != match["source"]:
        return False
    if "value" in match and fb.get("value") != match["value"]:
        return False
    score = fb.get("score")
    if "min_score" in match and (score is None or score < match["min_score"]):
        return False
    return not ("max_score" in match and (score is None or score > match["max_score"]))


SECRET_KEYS = ("api_key", "secret", "token", "password")
MASK = "***"


def _mask(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: MASK if k in SECRET_KEYS and v else _mask(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask(v) for v in value]
    return value


def masked_actions(actions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Actions as shown to people (API, dashboard): evaluator credentials (a judge's
    ``api_key``...) as ``***`` and webhook URLs as ``scheme://host/…``."""
    shown = []
    for action in actions:
        item = _mask(action)
        if action.get("type") == "webhook" and isinstance(action.get("url"), str):
            item["url"] = masked_url(action["url"])
        shown.append(item)
    return shown


def _unmask(new: Any, old: Any, where: str) -> Any:
    if isinstance(new, dict):
        olds = old if isinstance(old, dict) else {}
        out = {}
        for k, v in new.items():
            if k in SECRET_KEYS and v == MASK:
                if not olds.get(k):
                    raise _fail(f"{where}.{k} is the masked {MASK}: give the value itself", where)
                out[k] = olds[k]
            else:
                out[k] = _unmask(v, olds.get(k), where)
        return out
    if isinstance(new, list):
        olds_list = old if isinstance(old, list) else []
        return [
            _unmask(v, olds_list[i] if i < len(olds_list) else None, where)
            for i, v in enumerate(new)
        ]
    return new


def masked_places(value: Any, where: str = "actions") -> list[str]:
    """Where ``value`` (a rule's actions) still holds a masked secret (``***``) or a cut URL
    (``scheme://host/…``), as a workspace import leaves them: such a rule must not run."""
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in masked_places(v, f"{where}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in masked_places(v, f"{where}[{i}]")]
    if isinstance(value, str) and (value == MASK or value.endswith(MASKED_PATH)):
        return [where]
    return []


def unmask_actions(new: Any, current: list[dict[str, Any]]) -> Any:
    """Actions sent back as they were shown (a GET, edited, then PATCHed): a masked webhook URL
    or ``***`` credential that matches the stored action means "unchanged" and takes the stored
    value; one that matches nothing is refused rather than saved masked."""
    if not isinstance(new, list):
        return new
    hooks = [
        a["url"] for a in current if a.get("type") == "webhook" and isinstance(a.get("url"), str)
    ]
    out = []
    for i, action in enumerate(new):
        where = f"actions[{i}]"
        if not isinstance(action, dict):
            out.append(action)
            continue
        old = (
            current[i] if i < len(current) and current[i].get("type") == action.get("type") else {}
        )
        item = _unmask(action, old, where)
        url = item.get("url")
        if item.get("type") == "webhook" and isinstance(url, str) and url.endswith(MASKED_PATH):
            own = old.get("url")
            candidates = ([own] if isinstance(own, str) else []) + hooks
            same = [u for u in candidates if masked_url(u) == url]
            if not same:
                raise _fail(f"{where}.url is a masked URL: give the full URL", where)
            item["url"] = same[0]
        out.append(item)
    return out
