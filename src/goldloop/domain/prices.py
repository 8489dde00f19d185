"""Model price table: USD per million tokens, and the cost of one run's usage.

The defaults ship as ``model_prices.json`` next to this module; a user file (setting
``model_prices_file``) is laid over them, entry by entry. Model names are matched after
lower-casing and dropping a provider prefix (``openai/gpt-4o`` -> ``gpt-4o``), by the longest
table entry the name starts with, so dated variants (``gpt-4o-2024-08-06``) find their family while
``gpt-4o-mini`` still finds its own, cheaper entry.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from goldloop.domain.errors import InvalidInput


@dataclass(frozen=True, slots=True)
class Price:
    input: float
    output: float
    cache_read: float | None = None
    cache_write: float | None = None


@dataclass(frozen=True, slots=True)
class Cost:
    input: float
    output: float
    total: float
    model: str  # the price-table entry used


def _price(name: str, entry: Any, origin: str) -> Price:
    if not isinstance(entry, dict) or "input" not in entry or "output" not in entry:
        raise InvalidInput(f"{origin}: entry {name!r} needs numeric 'input' and 'output' prices")
    try:
        return Price(
            input=float(entry["input"]),
            output=float(entry["output"]),
            cache_read=None if entry.get("cache_read") is None else float(entry["cache_read"]),
            cache_write=None if entry.get("cache_write") is None else float(entry["cache_write"]),
        )
    except (TypeError, ValueError):
        raise InvalidInput(f"{origin}: entry {name!r} has a price that is not a number") from None


def _entries(doc: Any, origin: str) -> dict[str, Price]:
    models = doc.get("models") if isinstance(doc, dict) else None
    if not isinstance(models, dict):
        raise InvalidInput(f"{origin}: expected an object with a 'models' object")
    return {str(k).lower(): _price(str(k), v, origin) for k, v in models.items()}


class PriceTable:
    def __init__(self, prices: dict[str, Price]) -> None:
        self._prices = prices
        # longest names first, so the most specific prefix wins
        self._names = sorted(prices, key=len, reverse=True)
        self._found: dict[str, tuple[str, Price] | None] = {}  # model name -> lookup result

    @classmethod
    def load(cls, user_file: str | Path | None = None) -> PriceTable:
        text = resources.files("goldloop.domain").joinpath("model_prices.json").read_text()
        prices = _entries(json.loads(text), "built-in model_prices.json")
        if user_file:
            path = Path(user_file)
            try:
                doc = json.loads(path.read_text())
            except (OSError, ValueError) as exc:
                raise InvalidInput(f"model price file {path}: {exc}") from None
            prices.update(_entries(doc, f"model price file {path}"))
        return cls(prices)

    def __len__(self) -> int:
        return len(self._prices)

    def lookup(self, model: str) -> tuple[str, Price] | None:
        if model in self._found:
            return self._found[model]
        found = self._lookup(model)
        if len(self._found) < 10_000:  # bounded: model names come from senders
            self._found[model] = found
        return found

    def _lookup(self, model: str) -> tuple[str, Price] | None:
        name = model.strip().lower()
        if name in self._prices:
            return name, self._prices[name]
        name = name.rsplit("/", 1)[-1]
        for candidate in self._names:
            if name.startswith(candidate):
                return candidate, self._prices[candidate]
        return None

    def cost(
        self,
        model: str,
        input_tokens: int | None,
        output_tokens: int | None,
        cache_read: int | None = None,
        cache_write: int | None = None,
    ) -> Cost | None:
        """USD for this usage, or None when the model is unknown or no tokens are known.

        Input tokens include cached ones (OTel GenAI semantics); cached reads are billed at the
        cache-read price instead of the input price, cache writes at the cache-write price.
        """
        if input_tokens is None and output_tokens is None:
            return None
        found = self.lookup(model)
        if found is None:
            return None
        entry, p = found
        tokens_in = input_tokens or 0
        read = min(cache_read or 0, tokens_in) if p.cache_read is not None else 0
        write = min(cache_write or 0, tokens_in - read) if p.cache_write is not None else 0
        plain = tokens_in - read - write
        cost_in = (
            plain * p.input + read * (p.cache_read or 0.0) + write * (p.cache_write or 0.0)
        ) / 1e6
        cost_out = (output_tokens or 0) * p.output / 1e6
        return Cost(input=cost_in, output=cost_out, total=cost_in + cost_out, model=entry)
