"""One OTel span -> one ``RunPatch``, following otel-genai.md section 5.

Vocabularies understood: OTel GenAI (current and renamed older names), OpenInference,
LangSmith, Langfuse and Traceloop hints. Where they collide on one span the precedence is
vendor-explicit (``langsmith.*``, ``langfuse.*``) > current GenAI > OpenInference > deprecated
GenAI > Traceloop > heuristics. Every original attribute, event, link, the resource and the scope
are kept in ``extra.otel``, so nothing the sender gave is dropped and export is lossless.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from goldloop.domain.clock import from_iso
from goldloop.domain.otel import messages as msgs
from goldloop.domain.otel.attrs import SpanAttributes
from goldloop.domain.otel.decode import OtelSpan
from goldloop.domain.otel.dedupe import move_content, reference_content
from goldloop.domain.otel.export import GOLDLOOP_RUN
from goldloop.domain.otel.messages import parse_json
from goldloop.domain.run_items import RunPatch

_LANGSMITH_KINDS = {"llm", "chain", "tool", "retriever", "embedding", "prompt", "parser"}
_LANGFUSE_KINDS = {
    "generation": "llm",
    "embedding": "embedding",
    "agent": "agent",
    "tool": "tool",
    "chain": "chain",
    "span": "chain",
    "retriever": "retriever",
    "guardrail": "guardrail",
    "evaluator": "evaluator",
    "event": "unknown",
}
_OI_KINDS = {
    "LLM": "llm",
    "EMBEDDING": "embedding",
    "RETRIEVER": "retriever",
    "RERANKER": "reranker",
    "TOOL": "tool",
    "AGENT": "agent",
    "CHAIN": "chain",
    "PROMPT": "prompt",
    "GUARDRAIL": "guardrail",
    "EVALUATOR": "evaluator",
    "UNKNOWN": "unknown",
    "DECISION": "chain",
}
_OPERATIONS = {
    "chat": "llm",
    "text_completion": "llm",
    "completion": "llm",
    "generate_content": "llm",
    "embeddings": "embedding",
    "embedding": "embedding",
    "retrieval": "retriever",
    "search_memory": "retriever",
    "execute_tool": "tool",
    "invoke_agent": "agent",
    "create_agent": "agent",
    "invoke_workflow": "chain",
    "plan": "chain",
}
_TRACELOOP_KINDS = {
    "workflow": "chain",
    "task": "chain",
    "agent": "agent",
    "tool": "tool",
    "unknown": "unknown",
}
_REQUEST_TYPES = {
    "chat": "llm",
    "completion": "llm",
    "embedding": "embedding",
    "rerank": "reranker",
}
_MODEL_KEYS = (
    "langfuse.observation.model.name",
    "gen_ai.response.model",
    "llm.response.model_name",
    "llm.model_name",
    "gen_ai.request.model",
    "embedding.model_name",
)
_PROVIDERS = {
    "mistralai": "mistral_ai",
    "xai": "x_ai",
    "vertexai": "gcp.vertex_ai",
    "vertex_ai": "gcp.vertex_ai",
    "google": "gcp.vertex_ai",
    "gemini": "gcp.gemini",
    "aws": "aws.bedrock",
    "amazon": "aws.bedrock",
    "az.ai.inference": "azure.ai.inference",
    "az.ai.openai": "azure.ai.openai",
}


_EMPTYABLE = (str, list, dict)


def first(*values: Any) -> Any:
    """The first value that is not None and not an empty string/list/dict."""
    for value in values:
        # `not value` first: a non-empty value (the usual case) costs one truth test
        if value is None or (not value and isinstance(value, _EMPTYABLE)):
            continue
        return value
    return None


def _tokens(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, float) and value >= 0:
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def detect_kind(a: SpanAttributes) -> str:
    ls = a.get("langsmith.span.kind")
    if isinstance(ls, str) and ls.lower() in _LANGSMITH_KINDS:
        return ls.lower()
    lf = a.get("langfuse.observation.type")
    if isinstance(lf, str) and lf.lower() in _LANGFUSE_KINDS:
        return _LANGFUSE_KINDS[lf.lower()]
    oi = a.get("openinference.span.kind")
    if isinstance(oi, str) and oi.upper() in _OI_KINDS:
        return _OI_KINDS[oi.upper()]
    op = a.get("gen_ai.operation.name")
    if isinstance(op, str) and op in _OPERATIONS:
        return _OPERATIONS[op]
    tl = a.get("traceloop.span.kind")
    if isinstance(tl, str) and tl.lower() in _TRACELOOP_KINDS:
        return _TRACELOOP_KINDS[tl.lower()]
    rt = first(a.get("llm.request.type"), a.get("traceloop.llm.request.type"))
    if isinstance(rt, str) and rt.lower() in _REQUEST_TYPES:
        return _REQUEST_TYPES[rt.lower()]
    if first(a.get("gen_ai.tool.name"), a.get("gen_ai.tool.call.id")) is not None:
        return "tool"
    if any(a.get(k) for k in _MODEL_KEYS):
        return "llm"
    return "unknown"


def provider(a: SpanAttributes) -> str | None:
    raw = first(a.get("gen_ai.provider.name"), a.get("gen_ai.system"))
    if raw is None:
        host, system = a.get("llm.provider"), a.get("llm.system")
        if isinstance(host, str) and host.lower() == "azure" and system == "openai":
            return "azure.ai.openai"
        raw = first(system, host, a.get("langsmith.metadata.ls_provider"))
    if not isinstance(raw, str):
        return None
    return _PROVIDERS.get(raw.lower(), raw.lower())[:100]


_INPUT_TOKENS = (
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.prompt_tokens",
    "llm.token_count.prompt",
)
_OUTPUT_TOKENS = (
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.completion_tokens",
    "llm.token_count.completion",
)
_TOTAL_TOKENS = ("llm.token_count.total", "gen_ai.usage.total_tokens", "llm.usage.total_tokens")
_USAGE_DETAILS = {
    "cache_read_tokens": (
        "gen_ai.usage.cache_read.input_tokens",
        "llm.token_count.prompt_details.cache_read",
    ),
    "cache_write_tokens": (
        "gen_ai.usage.cache_write.input_tokens",
        "gen_ai.usage.cache_creation.input_tokens",
        "llm.token_count.prompt_details.cache_write",
    ),
    "reasoning_tokens": (
        "gen_ai.usage.reasoning.output_tokens",
        "llm.token_count.completion_details.reasoning",
        "gen_ai.usage.details.reasoning_tokens",
    ),
}
_LANGFUSE_USAGE = "langfuse.observation.usage_details"
# A span with none of these attributes has no usage (most spans: agents, tools, retrievals).
_USAGE_KEYS = frozenset(
    {
        _LANGFUSE_USAGE,
        *_INPUT_TOKENS,
        *_OUTPUT_TOKENS,
        *_TOTAL_TOKENS,
        *(key for keys in _USAGE_DETAILS.values() for key in keys),
    }
)


def _usage(a: SpanAttributes, patch: RunPatch) -> None:
    details = a.json(_LANGFUSE_USAGE)
    details = details if isinstance(details, dict) else {}
    tin = _tokens(first(*map(a.get, _INPUT_TOKENS), details.get("input")))
    tout = _tokens(first(*map(a.get, _OUTPUT_TOKENS), details.get("output")))
    total = _tokens(first(*map(a.get, _TOTAL_TOKENS), details.get("total")))
    for name, value in (("input_tokens", tin), ("output_tokens", tout), ("total_tokens", total)):
        if value is not None:
            patch.fields[name] = value
    usage = {
        name: t
        for name, keys in _USAGE_DETAILS.items()
        if (t := _tokens(first(*map(a.get, keys)))) is not None
    }
    if usage:
        patch.extra["usage"] = usage


_LANGFUSE_COST = "langfuse.observation.cost_details"
_COST_KEYS = frozenset(
    {
        "llm.cost.prompt",
        "llm.cost.completion",
        "llm.cost.total",
        "gen_ai.usage.cost",
        _LANGFUSE_COST,
    }
)


def _cost(a: SpanAttributes, patch: RunPatch) -> None:
    parts = {
        "input": _number(a.get("llm.cost.prompt")),
        "output": _number(a.get("llm.cost.completion")),
        "total": _number(first(a.get("llm.cost.total"), a.get("gen_ai.usage.cost"))),
    }
    given = {k: v for k, v in parts.items() if v is not None}
    if not given:
        details = a.json(_LANGFUSE_COST)
        if isinstance(details, dict):
            given = {k: n for k, v in details.items() if (n := _number(v)) is not None}
    if not given:
        return
    total = given.get("total")
    if total is None:
        total = given.get("input", 0.0) + given.get("output", 0.0)
    patch.fields["cost"] = total
    patch.extra["cost"] = {**given, "total": total, "source": "sender"}


def _text_or_json(a: SpanAttributes, value_key: str, mime_key: str) -> Any:
    value = a.get(value_key)
    mime = a.get(mime_key)
    if isinstance(value, str) and isinstance(mime, str) and "json" in mime:
        return a.json(value_key)
    return value


def _documents(a: SpanAttributes) -> list[Any] | None:
    docs = a.json("gen_ai.retrieval.documents")
    if isinstance(docs, list):
        return docs
    flats = msgs.unflatten(a.group("retrieval.documents."), "")
    if not flats:
        return None
    out = []
    for flat in flats:
        doc = {k[len("document.") :]: v for k, v in flat.items() if k.startswith("document.")}
        if "metadata" in doc:
            doc["metadata"] = parse_json(doc["metadata"])
        out.append(doc)
    return out


def _event_bodies(span: OtelSpan) -> list[tuple[str, Mapping[str, Any]]]:
    return [(e["name"], e["attributes"]) for e in span.events if e["name"].startswith("gen_ai.")]


def _io(a: SpanAttributes, kind: str, span: OtelSpan) -> tuple[Any, Any]:
    # Each source is read only if the ones before it gave nothing (most spans carry one).
    lf_in = a.json_value("langfuse.observation.input")
    lf_out = a.json_value("langfuse.observation.output")
    inputs: Any = None
    outputs: Any = None
    if kind in ("llm", "embedding", "agent"):
        inputs, outputs = _chat_io(a, span)
    elif kind == "tool":
        inputs = a.json("gen_ai.tool.call.arguments")
        outputs = a.json("gen_ai.tool.call.result")
    elif kind == "retriever":
        inputs = a.get("gen_ai.retrieval.query.text")
        docs = _documents(a)
        outputs = {"documents": docs} if docs is not None else None
    inputs = first(lf_in, inputs)
    if inputs is None:
        inputs = first(
            _text_or_json(a, "input.value", "input.mime_type"), a.json("traceloop.entity.input")
        )
    outputs = first(lf_out, outputs)
    if outputs is None:
        outputs = first(
            _text_or_json(a, "output.value", "output.mime_type"),
            a.json("traceloop.entity.output"),
        )
    return inputs, outputs


def _chat_io(a: SpanAttributes, span: OtelSpan) -> tuple[Any, Any]:
    """Chat messages in and out, from the first convention that has them."""
    ev_in, ev_out = msgs.from_events(_event_bodies(span)) if span.events else (None, None)
    finish = a.get("llm.finish_reason")
    m_in = first(a.json("gen_ai.input.messages"))
    if m_in is None:
        m_in = first(
            msgs.openinference(a.group("llm.input_messages."), finish, output=False),
            msgs.legacy_genai(a.group("gen_ai.prompt."), output=False),
            ev_in,
        )
    system = a.json("gen_ai.system_instructions")
    inputs = None
    if m_in is not None or system is not None:
        inputs = {k: v for k, v in (("messages", m_in), ("system", system)) if v is not None}
    m_out = first(a.json("gen_ai.output.messages"))
    if m_out is None:
        m_out = first(
            msgs.openinference(a.group("llm.output_messages."), finish, output=True),
            msgs.legacy_genai(a.group("gen_ai.completion."), output=True),
            ev_out,
        )
    return inputs, {"messages": m_out} if m_out is not None else None


def _error(a: SpanAttributes, span: OtelSpan) -> dict[str, Any]:
    exc: Mapping[str, Any] = {}
    for event in span.events:
        if event["name"] == "exception":
            exc = event["attributes"]
    error = {
        "type": first(a.get("error.type"), exc.get("exception.type")),
        "message": first(
            span.status_message,
            exc.get("exception.message"),
            a.get("langfuse.observation.status_message"),
        ),
        "stacktrace": exc.get("exception.stacktrace"),
    }
    return {k: str(v) for k, v in error.items() if v is not None} or {"message": ""}


def _tags(a: SpanAttributes) -> list[str] | None:
    raw = first(a.get("tag.tags"), a.get("langfuse.trace.tags"), a.get("langsmith.span.tags"))
    raw = parse_json(raw)
    if isinstance(raw, str):
        raw = [t.strip() for t in raw.split(",") if t.strip()]
    if not isinstance(raw, list):
        return None
    return list(dict.fromkeys(str(t) for t in raw))


def _metadata(a: SpanAttributes) -> dict[str, Any] | None:
    base = a.json("metadata")
    merged: dict[str, Any] = dict(base) if isinstance(base, dict) else {}
    for prefix in (
        "traceloop.association.properties.",
        "langfuse.observation.metadata.",
        "langfuse.trace.metadata.",
        "langsmith.metadata.",
    ):
        merged.update(a.group(prefix))
    return merged or None


def _short(value: Any, limit: int) -> str | None:
    if value is None or value == "":
        return None
    return str(value)[:limit]


_TOOL_KEYS = frozenset(
    {
        "gen_ai.tool.name",
        "tool.name",
        "gen_ai.tool.call.id",
        "tool.id",
        "gen_ai.tool.description",
        "tool.description",
        "gen_ai.tool.type",
    }
)


def _optional_extra(a: SpanAttributes, span: OtelSpan, start_us: int | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    request = {
        k: v for k, v in a.group("gen_ai.request.").items() if k != "model" and v is not None
    }
    params = request or first(
        a.json("llm.invocation_parameters"), a.json("langfuse.observation.model.parameters")
    )
    if params is not None:
        out["params"] = params
    if (rm := a.get("llm.request.model_name")) and not a.get("gen_ai.request.model"):
        out["request_model"] = rm  # (gen_ai.request.model is read from the attributes)
    agent = {k: v for k, v in a.group("gen_ai.agent.").items() if v is not None}
    if not agent and a.get("agent.name"):
        agent = {"name": a["agent.name"]}
    if agent:
        out["agent"] = agent
    if a.has_any(_TOOL_KEYS):
        tool = {
            "name": first(a.get("gen_ai.tool.name"), a.get("tool.name")),
            "call_id": first(a.get("gen_ai.tool.call.id"), a.get("tool.id")),
            "description": first(a.get("gen_ai.tool.description"), a.get("tool.description")),
            "type": a.get("gen_ai.tool.type"),
        }
        tool = {k: v for k, v in tool.items() if v is not None}
        if tool:
            out["tool"] = tool
    first_token = a.get("langfuse.observation.completion_start_time")
    ttfc = _number(a.get("gen_ai.response.time_to_first_chunk"))
    if isinstance(first_token, str):
        with contextlib.suppress(ValueError):
            out["first_token_time"] = from_iso(first_token)
    elif ttfc is not None and start_us is not None:
        out["first_token_time"] = start_us + int(ttfc * 1_000_000)
    return out


def raw_otel(span: OtelSpan) -> dict[str, Any]:
    """Everything the span carried, for lossless re-export (empty parts left out)."""
    raw: dict[str, Any] = {
        "attributes": span.attributes,
        "resource": span.resource,
        "scope": span.scope,
        "span_kind": span.kind,
    }
    if span.status_code or span.status_message:
        raw["status"] = {"code": span.status_code, "message": span.status_message}
    for key, value in (
        ("events", span.events),
        ("links", span.links),
        ("trace_state", span.trace_state),
        ("flags", span.flags),
        ("dropped", span.dropped),
    ):
        if value:
            raw[key] = value
    return raw


def _apply_exact(patch: RunPatch, exact: Mapping[str, Any]) -> None:
    """Fields of a ``goldloop.run`` attribute (see ``otel_export``) override the mapping."""
    if isinstance(exact.get("id"), str):
        patch.id = exact["id"][:64]
    if isinstance(exact.get("trace_id"), str):
        patch.trace_id = exact["trace_id"][:64]
    f = patch.fields
    f.pop("parent_id", None)
    if isinstance(exact.get("parent_id"), str):
        f["parent_id"] = exact["parent_id"][:64]
    for name in ("kind", "status", "provider", "reference_example_id"):
        if isinstance(exact.get(name), str):
            f[name] = exact[name]
    patch.extra = dict(exact["extra"]) if isinstance(exact.get("extra"), dict) else {}


PROJECT_ATTRIBUTES = ("openinference.project.name", "service.name")


def resource_project(resource: Mapping[str, Any]) -> Any:
    """The project a resource names: OpenInference's ``openinference.project.name`` (what
    Phoenix reads, and what OpenInference exporters set), else ``service.name``."""
    for name in PROJECT_ATTRIBUTES:
        value = resource.get(name)
        if value is not None and value != "":
            return value
    return None


def span_to_patch(span: OtelSpan) -> RunPatch:
    a = SpanAttributes(span.attributes)
    patch = RunPatch(
        id=str(first(a.get("langsmith.span.id"), span.span_id))[:64],
        trace_id=str(first(a.get("langsmith.trace.id"), span.trace_id))[:64],
        project=_short(resource_project(span.resource), 200),
    )
    f = patch.fields
    parent = first(a.get("langsmith.span.parent_id"), span.parent_span_id)
    if parent is not None:
        f["parent_id"] = str(parent)[:64]
    f["name"] = str(first(a.get("langsmith.trace.name"), span.name) or "")[:500]
    kind = detect_kind(a)
    f["kind"] = kind
    start_us = span.start_ns // 1000 if span.start_ns > 0 else None
    if start_us is not None:
        f["start_time"] = start_us
    if span.end_ns > 0:
        f["end_time"] = span.end_ns // 1000
    level = a.get("langfuse.observation.level")
    if span.status_code == 2 or (isinstance(level, str) and level.upper() == "ERROR"):
        f["status"] = "error"
        f["error"] = _error(a, span)
    inputs, outputs = _io(a, kind, span)
    if inputs is not None:
        f["inputs"] = inputs
    if outputs is not None:
        f["outputs"] = outputs
    model = first(*(a.get(k) for k in _MODEL_KEYS))
    if model is not None:
        f["model"] = str(model)[:200]
    if (prov := provider(a)) is not None:
        f["provider"] = prov
    if a.has_any(_USAGE_KEYS):
        _usage(a, patch)
    if a.has_any(_COST_KEYS):
        _cost(a, patch)
    session = first(
        a.get("gen_ai.conversation.id"),
        a.get("session.id"),
        a.get("langfuse.session.id"),
        a.get("langsmith.metadata.session_id"),
        a.get("langsmith.metadata.thread_id"),
        a.get("langsmith.metadata.conversation_id"),
    )
    if (s := _short(session, 200)) is not None:
        f["session_id"] = s
    user = first(
        a.get("user.id"),
        a.get("langfuse.user.id"),
        a.get("enduser.id"),
        a.get("langsmith.metadata.user_id"),
    )
    if (u := _short(user, 200)) is not None:
        f["user_id"] = u
    if (tags := _tags(a)) is not None:
        f["tags"] = tags
    if (meta := _metadata(a)) is not None:
        f["metadata"] = meta
    patch.extra.update(_optional_extra(a, span, start_us))
    exact = a.json(GOLDLOOP_RUN)
    if isinstance(exact, dict):  # a run Goldloop exported: its own fields, exactly
        _apply_exact(patch, exact)
        return patch
    raw = raw_otel(span)
    raw["attributes"], moved = move_content(span.attributes, f, a.parsed)
    if moved:
        raw["moved"] = moved
    raw["attributes"], refs = reference_content(raw["attributes"], f)
    if refs:
        raw["refs"] = refs
    patch.extra["otel"] = raw
    return patch
