"""Evaluators by name: built-ins and user evaluators register here, so a rule (or a config
file) can name an evaluator and give it a JSON config: ``build_evaluator("regex", {...})``."""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from goldloop.domain.errors import InvalidInput
from goldloop.evaluation._protocol import Evaluator

__all__ = ["build_evaluator", "evaluator_names", "register_evaluator"]

Factory = Callable[..., Evaluator]
F = TypeVar("F", bound=Factory)

_lock = threading.Lock()
_factories: dict[str, Factory] = {}


def register_evaluator(name: str, *, replace: bool = False) -> Callable[[F], F]:
    """Class or factory decorator: ``@register_evaluator("my_check")``. The factory's keyword
    arguments are the evaluator's JSON config."""

    def decorate(factory: F) -> F:
        with _lock:
            if name in _factories and not replace and _factories[name] is not factory:
                raise ValueError(f"an evaluator named {name!r} is already registered")
            _factories[name] = factory
        return factory

    return decorate


def evaluator_names() -> list[str]:
    """Every registered evaluator name, sorted."""
    _load_builtins()
    with _lock:
        return sorted(_factories)


def build_evaluator(
    name: str,
    config: Mapping[str, Any] | None = None,
    *,
    inject: Mapping[str, Any] | None = None,
) -> Evaluator:
    """Build a registered evaluator from its JSON config; a bad name or config raises
    :class:`~goldloop.domain.errors.InvalidInput` naming what was wrong.

    ``inject``: arguments the caller supplies, not the config, given to the factory only when
    it takes a parameter of that name (the server passes the judge's ``environ`` this way, so a
    stored config never reaches the process environment). A config that sets one is refused.
    """
    _load_builtins()
    with _lock:
        factory = _factories.get(name)
    if factory is None:
        raise InvalidInput(
            f"unknown evaluator {name!r}", details={"evaluator": name, "known": evaluator_names()}
        )
    params = dict(config or {})
    if inject:
        taken = sorted(set(inject) & set(params))
        if taken:
            raise InvalidInput(
                f"bad config for evaluator {name!r}: {taken[0]!r} is set by the server, "
                "not in the config",
                details={"evaluator": name},
            )
        accepted = inspect.signature(factory).parameters
        params.update({k: v for k, v in inject.items() if k in accepted})
    try:
        inspect.signature(factory).bind(**params)
    except TypeError as exc:
        raise InvalidInput(
            f"bad config for evaluator {name!r}: {exc}", details={"evaluator": name}
        ) from None
    try:
        return factory(**params)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(
            f"bad config for evaluator {name!r}: {exc}", details={"evaluator": name}
        ) from None


def _load_builtins() -> None:
    # importing the modules runs their @register_evaluator decorators
    from goldloop.evaluation import (
        _budgets,
        _embedding,
        _judge,
        _structured,
        _text,
        _trajectory,
    )

    del _budgets, _embedding, _judge, _structured, _text, _trajectory
