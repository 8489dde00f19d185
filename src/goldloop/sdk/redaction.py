"""Client-side PII redaction: the server's rule format, applied before data leaves the app.

The same configuration document as ``PUT /api/v1/redaction`` (``{"builtins": [...], "rules":
[...], "mode": ...}``, see docs/security.md) builds a ``RunRedactor``:

    import goldloop
    from goldloop.client import Client
    from goldloop.sdk.redaction import RunRedactor

    redact = RunRedactor({"builtins": "all", "rules": [{"name": "ticket", "pattern": r"TKT-\\d+"}]})
    goldloop.configure(tracing=True, process_run=redact.run)  # traced runs
    client = Client(redact=redact)  # runs, feedback and examples sent by the client

``run`` redacts a run's inputs, outputs, error, tags and extra (metadata included); the
client also redacts feedback comments and corrections and examples' inputs, outputs and
metadata. Hash mode needs ``hash_key`` (use the server's ``redaction_hash_key`` for hashes
that match the server's). Pure Python, the standard library only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from goldloop.domain.redaction import Counts, Redactor, parse_config

RUN_FIELDS = ("inputs", "outputs", "error", "tags", "metadata", "extra")
FEEDBACK_FIELDS = ("comment", "correction")
EXAMPLE_FIELDS = ("inputs", "outputs", "metadata")


class RunRedactor:
    """A redaction configuration compiled once; thread-safe. ``counts`` adds up what was
    replaced, by detector or rule name."""

    def __init__(self, config: Mapping[str, Any], *, hash_key: str | bytes = b"") -> None:
        key = hash_key.encode() if isinstance(hash_key, str) else hash_key
        self._redactor = Redactor(parse_config(config), hash_key=key)
        self.counts = Counts()

    def value(self, value: Any) -> Any:
        """Any JSON value with every string in it redacted."""
        return self._redactor.redact(value, self.counts)

    def fields(self, doc: Mapping[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
        """A copy of ``doc`` with the named fields redacted (the others as they are)."""
        return {k: self.value(v) if k in names and v is not None else v for k, v in doc.items()}

    def run(self, item: dict[str, Any]) -> dict[str, Any]:
        """A run as the SDK sends it, redacted: usable as ``configure(process_run=...)``."""
        return self.fields(item, RUN_FIELDS)


def as_redactor(redact: RunRedactor | Mapping[str, Any] | None) -> RunRedactor | None:
    """``Client(redact=...)``: a RunRedactor, a configuration document, or None."""
    if redact is None or isinstance(redact, RunRedactor):
        return redact
    return RunRedactor(redact)


__all__ = ["RunRedactor", "as_redactor"]
