"""How a run's cost is merged (pure): the sender's figures stand, the price estimate fills in only
what the sender left out, and the answer does not depend on the order the items arrive in."""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest

from goldloop.domain.prices import PriceTable
from goldloop.domain.run_items import parse_batch
from goldloop.domain.run_merge import merge

PRICES = PriceTable.load()
MODEL = "gpt-4o-mini"  # 0.15 in, 0.60 out per million tokens
TOKENS = {"input_tokens": 1000, "output_tokens": 2000}


def _final(items: list[dict[str, Any]]) -> dict[str, Any]:
    row: dict[str, Any] | None = None
    for patch in parse_batch(items):
        row = merge(row, patch, project_id="p", now=1, prices=PRICES)
    assert row is not None
    return row


def _item(**fields: Any) -> dict[str, Any]:
    return {"id": "r", "trace_id": "t", **fields}


def test_a_sender_total_is_never_replaced() -> None:
    row = _final([_item(model=MODEL, usage=TOKENS, cost={"total": 2.5})])
    assert row["cost"] == 2.5
    assert row["extra"]["cost"] == {"total": 2.5, "source": "sender"}
    # an estimate made before the sender's figure arrived is dropped, not mixed in
    row = _final([_item(model=MODEL, usage=TOKENS), _item(cost={"total": 2.5})])
    assert row["extra"]["cost"] == {"total": 2.5, "source": "sender"}


def test_the_estimate_fills_a_missing_part_only() -> None:
    row = _final([_item(model=MODEL, usage=TOKENS, cost={"input": 0.1})])
    doc = row["extra"]["cost"]
    assert doc["input"] == 0.1
    assert doc["output"] == pytest.approx(2000 * 0.6e-6)
    assert (doc["estimated"], doc["price_model"], doc["source"]) == (["output"], MODEL, "sender")
    assert row["cost"] == pytest.approx(0.1 + 2000 * 0.6e-6)
    # no model, no estimate: the part stands alone
    alone = _final([_item(usage=TOKENS, cost={"input": 0.1})])
    assert alone["extra"]["cost"] == {
        "input": 0.1,
        "total": 0.1,
        "total_from_parts": True,
        "source": "sender",
    }
    # nothing sent: the estimate, as before
    estimated = _final([_item(model=MODEL, usage=TOKENS)])
    assert estimated["extra"]["cost"]["source"] == "price_table"
    assert estimated["cost"] == pytest.approx(1000 * 0.15e-6 + 2000 * 0.6e-6)


def test_detail_maps_are_kept() -> None:
    details = {"input_details": {"cache_read": 0.01}, "output_details": {"reasoning": 0.02}}
    row = _final([_item(cost={"input": 0.1, "output": 0.2, **details})])
    assert row["extra"]["cost"] == {
        "input": 0.1,
        "output": 0.2,
        "total": pytest.approx(0.3),
        "total_from_parts": True,
        **details,
        "source": "sender",
    }


@pytest.mark.parametrize("seed", range(12))
def test_any_arrival_order_gives_the_same_cost(seed: int) -> None:
    """The sender's parts spread over several items (post, patches, duplicates) in every order."""
    rng = random.Random(seed)
    every = {
        "input": rng.randint(1, 900) / 1e4,
        "output": rng.randint(1, 900) / 1e4,
        "total": rng.randint(1, 900) / 1e3,
    }
    keys = rng.sample(sorted(every), rng.randint(1, 3))
    parts = {k: every[k] for k in keys}
    items = [_item(model=MODEL, usage=TOKENS)]
    for key, value in parts.items():
        items.append(_item(cost={key: value}))
    if rng.random() < 0.5:
        items.append(_item(name="late patch"))
    results = set()
    for order in itertools.permutations(items):
        row = _final(list(order))
        doc = row["extra"]["cost"]
        results.add((row["cost"], tuple(sorted((k, str(v)) for k, v in doc.items()))))
        for key, value in parts.items():
            assert doc[key] == value
        if "total" in parts:
            assert row["cost"] == parts["total"]
        else:  # the estimate filled what was missing, and the total is the sum
            assert row["cost"] == pytest.approx(doc["input"] + doc["output"])
    assert len(results) == 1
