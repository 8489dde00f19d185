# ruff: noqa: E501
"""Hostile data (issue 22, items 3-5): the corpus a careless or hostile client sends, replayed
over every ingest path on SQLite and PostgreSQL. No 5xx, no lost good item, both backends store
the same thing, and every page of the project still renders afterwards, including for values
stored before ingest validated them (written straight into the store here)."""

from __future__ import annotations

import gzip
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from dashboard_helpers import sign_in
from goldloop.store.schema import runs as runs_table
from ingest_helpers import app_ctx, trace_rows
from otlp_builders import request, span, to_json

API = "/api/v1"
NOW_US = (
    1_796_600_000_000_000  # 2026-12-05, inside the overview's default window of the tests' clock
)
R = "\ufffd"  # what a NUL becomes
PB = {"content-type": "application/x-protobuf"}
JS = {"content-type": "application/json"}


@pytest.fixture
async def raw(app: FastAPI, admin_key: str) -> AsyncIterator[httpx.AsyncClient]:
    """An API client that sees a 500 as a response (not as the app's exception)."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://goldloop.test", headers={"x-api-key": admin_key}
    ) as c:
        yield c


@pytest.fixture
async def pages(app: FastAPI, admin_key: str) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://goldloop.test") as c:
        assert (await sign_in(c, admin_key)).status_code == 303
        yield c


def sp(trace: str, span_id: str, name: str = "s", attrs: dict[str, Any] | None = None) -> Any:
    return span(trace, span_id, None, name, attrs or {}, start=NOW_US * 1000, end=NOW_US * 1000 + 5)


async def batch(raw: httpx.AsyncClient, *items: dict[str, Any]) -> httpx.Response:
    return await raw.post(f"{API}/runs/batch", json={"project": "hostile", "runs": list(items)})


def run(run_id: str, **fields: Any) -> dict[str, Any]:
    return {"id": run_id, "trace_id": "t-" + run_id, "name": run_id, "start_time": NOW_US, **fields}


async def stored(raw: httpx.AsyncClient, run_id: str) -> dict[str, Any]:
    r = await raw.get(f"{API}/runs/{run_id}")
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


async def project_id(raw: httpx.AsyncClient, name: str = "hostile") -> str:
    items = (await raw.get(f"{API}/projects")).json()["items"]
    return str(next(p["id"] for p in items if p["name"] == name))


async def every_page_renders(
    raw: httpx.AsyncClient, pages: httpx.AsyncClient, run_ids: list[str], name: str = "hostile"
) -> None:
    """Every dashboard page and API read of the project answers below 500."""
    pid = await project_id(raw, name)
    urls = [
        "/",
        "/projects",
        f"/projects/{pid}",
        f"/projects/{pid}?window=30d",
        f"/projects/{pid}/runs",
        f"/projects/{pid}/runs?sort=latency",
        f"/projects/{pid}/runs/export",
        "/datasets",
        "/experiments",
        "/alerts",
        "/rules",
    ]
    apis = [
        f"{API}/projects",
        f"{API}/projects/{pid}",
        f"{API}/projects/{pid}/stats",
        f"{API}/projects/{pid}/stats?window=30d",
        f"{API}/projects/{pid}/feedback-stats",
        f"{API}/runs?project={name}",
        f"{API}/runs?project={name}&sort=-latency",
        f"{API}/feedback",
        f"{API}/feedback-keys",
        "/langsmith/sessions",
        "/langsmith/feedback",
    ]
    for run_id in run_ids:
        trace = (await stored(raw, run_id))["trace_id"]
        urls += [f"/runs/{run_id}", f"/traces/{trace}", f"/traces/{trace}/panel?run={run_id}"]
        apis += [f"{API}/runs/{run_id}", f"{API}/traces/{trace}", f"/langsmith/runs/{run_id}"]
    for client, batch_urls in ((pages, urls), (raw, apis)):
        for url in batch_urls:
            r = await client.get(url)
            assert r.status_code < 500, f"{url}: {r.status_code} {r.text[:300]}"


# --- item 3: NUL ---------------------------------------------------------------------------


async def test_nul_in_native_text_fields_is_replaced_the_same_on_both_backends(
    raw: httpx.AsyncClient, pages: httpx.AsyncClient
) -> None:
    nul = run(
        "nul-1",
        name="a\u0000b",
        inputs={"q": "x\u0000", "k\u0000": [1, "\u0000"]},
        outputs="out\u0000",
        metadata={"m": "\u0000"},
        tags=["t\u0000"],
        error={"message": "e\u0000"},
        model="gpt\u0000",
        session_id="s\u0000",
        project="hostile",
    )
    r = await batch(raw, run("good-1"), nul)
    assert r.status_code == 202, r.text
    got = await stored(raw, "nul-1")
    assert got["name"] == f"a{R}b"
    assert got["inputs"] == {"q": f"x{R}", f"k{R}": [1, R]}
    assert got["outputs"] == f"out{R}"
    assert got["metadata"] == {"m": R}
    assert got["tags"] == [f"t{R}"]
    assert got["error"]["message"] == f"e{R}"
    assert got["model"] == f"gpt{R}"
    assert got["session_id"] == f"s{R}"
    assert (await stored(raw, "good-1"))["name"] == "good-1"
    await every_page_renders(raw, pages, ["nul-1", "good-1"])


@pytest.mark.parametrize("field", ["id", "trace_id", "parent_id"])
async def test_a_nul_in_an_id_is_refused_every_time_naming_the_item(
    raw: httpx.AsyncClient, field: str
) -> None:
    bad = run("bad", **{field: "i\u0000d"})
    for _ in range(2):  # a retry is refused the same way, never a 500
        r = await batch(raw, run("good-2"), bad)
        assert r.status_code == 400, r.text
        detail = r.json()["error"]["details"][0]
        assert detail["index"] == 1
        assert detail["field"] == field
        assert "NUL" in detail["problem"]
    assert (await batch(raw, run("good-2"))).status_code == 202


@pytest.mark.parametrize(
    "path", ["/runs/%00", "/traces/%00", "/feedback/%00", "/examples/%00", "/runs/a%00b"]
)
async def test_reading_an_id_with_a_nul_is_a_client_error(
    raw: httpx.AsyncClient, path: str
) -> None:
    r = await raw.get(API + path)
    assert r.status_code in (400, 404), r.text


async def test_nul_in_otlp_spans_is_replaced_and_neighbours_are_kept(
    app: FastAPI, admin_key: str, raw: httpx.AsyncClient, pages: httpx.AsyncClient
) -> None:
    tid = "ab" * 16
    spans = [
        sp(tid, "01" * 8, name="good"),
        sp(tid, "02" * 8, name="n\u0000", attrs={"input.value": "in\u0000", "k\u0000": "v"}),
    ]
    for body, headers in ((request(spans, "hostile").SerializeToString(), PB),):
        r = await raw.post("/v1/traces", content=body, headers=headers)
        assert r.status_code == 200, r.text
    rows = {row["id"]: row for row in trace_rows(app, admin_key, tid)}
    assert rows["01" * 8]["name"] == "good"
    assert rows["02" * 8]["name"] == f"n{R}"
    r = await raw.post("/v1/traces", content=to_json(request(spans, "hostile")), headers=JS)
    assert r.status_code == 200, r.text
    assert trace_rows(app, admin_key, tid)[1]["name"] in (f"n{R}", "good")
    await every_page_renders(raw, pages, ["01" * 8, "02" * 8])


async def test_nul_in_langsmith_runs_feedback_and_examples_is_replaced(
    raw: httpx.AsyncClient, pages: httpx.AsyncClient
) -> None:
    rid = str(uuid.uuid4())
    post = {
        "id": rid,
        "trace_id": rid,
        "dotted_order": f"20261205T100000000000Z{rid}",
        "session_name": "hostile",
        "name": "ls\u0000",
        "run_type": "chain",
        "start_time": "2026-12-05T10:00:00+00:00",
        "inputs": {"q": "\u0000"},
    }
    r = await raw.post("/langsmith/runs/batch", json={"post": [post]})
    assert r.status_code < 300, r.text
    assert (await stored(raw, rid))["name"] == f"ls{R}"
    assert (await stored(raw, rid))["inputs"] == {"q": R}

    # the multipart path: a raw NUL byte cannot appear in JSON, its escape can
    mid = str(uuid.uuid4())
    part = json.dumps(
        {**post, "id": mid, "trace_id": mid, "dotted_order": f"20261205T100000000000Z{mid}"}
    )
    boundary = "b0a1"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="post.{mid}"\r\n'
        f"Content-Type: application/json\r\n\r\n{part}\r\n--{boundary}--\r\n"
    ).encode()
    r = await raw.post(
        "/langsmith/runs/multipart",
        content=body,
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
    )
    assert r.status_code < 300, r.text
    assert (await stored(raw, mid))["name"] == f"ls{R}"

    r = await raw.post(
        f"{API}/feedback",
        json={
            "run_id": rid,
            "key": "k",
            "score": 1,
            "comment": "c\u0000",
            "correction": {"x\u0000": "\u0000"},
        },
    )
    assert r.status_code == 201, r.text
    fb = r.json()
    assert fb["comment"] == f"c{R}"
    assert fb["correction"] == {f"x{R}": R}

    r = await raw.post(f"{API}/datasets", json={"name": "ds", "description": "d\u0000"})
    assert r.status_code == 201, r.text
    r = await raw.post(
        f"{API}/datasets/ds/examples",
        json={
            "examples": [
                {"inputs": {"q": "ok"}},
                {
                    "inputs": {"q": "a\u0000"},
                    "outputs": {"a": "\u0000"},
                    "metadata": {"m\u0000": 1},
                },
            ]
        },
    )
    assert r.status_code == 201, r.text
    listed = (await raw.get(f"{API}/datasets/ds/examples")).json()["items"]
    assert sorted(e["inputs"]["q"] for e in listed) == sorted(["ok", f"a{R}"])
    await every_page_renders(raw, pages, [rid, mid], name="hostile")
    for url in ("/datasets/ds", "/datasets/ds/versions"):
        assert (await pages.get(url)).status_code < 500


# --- items 4 and 5: ranges at ingest -------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"start_time": 2**63 - 1}, "start_time"),
        ({"end_time": 2**64}, "end_time"),
        ({"start_time": "2300-01-01T00:00:00Z"}, "start_time"),
        ({"cost": 1e308}, "cost"),
        ({"cost": -1}, "cost"),
        ({"cost": {"input": 1e308, "output": 1e308}}, "cost"),
        ({"usage": {"input_tokens": 2**63 - 1}}, "usage.input_tokens"),
        ({"usage": {"output_tokens": 2**64}}, "usage.output_tokens"),
        ({"usage": {"cache_read_tokens": 2**70}}, "usage.cache_read_tokens"),
    ],
)
async def test_out_of_range_numbers_are_a_400_naming_the_field(
    raw: httpx.AsyncClient, fields: dict[str, Any], named: str
) -> None:
    r = await batch(raw, run("good-3"), run("big", **fields))
    assert r.status_code == 400, r.text
    detail = r.json()["error"]["details"][0]
    assert detail["index"] == 1, detail
    assert detail["field"].startswith(named), detail


async def test_otlp_json_out_of_range_numbers_reject_only_their_span(
    app: FastAPI, admin_key: str, raw: httpx.AsyncClient
) -> None:
    tid = "cd" * 16
    huge = "99999999999999999999999"

    def s(sid: str, **extra: Any) -> dict[str, Any]:
        return {
            "traceId": tid,
            "spanId": sid * 8,
            "name": sid,
            "startTimeUnixNano": str(NOW_US * 1000),
            "endTimeUnixNano": str(NOW_US * 1000 + 5),
            **extra,
        }

    body = {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "hostile"}}]
                },
                "scopeSpans": [
                    {
                        "spans": [
                            s("01"),
                            s("02", startTimeUnixNano=huge),
                            s("03", attributes=[{"key": "x", "value": {"intValue": huge}}]),
                            s("04", endTimeUnixNano=str(2**64 - 1)),
                            s(
                                "05",
                                attributes=[
                                    {
                                        "key": "gen_ai.usage.input_tokens",
                                        "value": {"intValue": str(2**63 - 1)},
                                    }
                                ],
                            ),
                        ]
                    }
                ],
            }
        ]
    }
    r = await raw.post("/v1/traces", content=json.dumps(body), headers=JS)
    assert r.status_code == 200, r.text
    partial = r.json()["partialSuccess"]
    assert int(partial["rejectedSpans"]) == 4, partial
    assert "out of" in partial["errorMessage"]
    assert [row["id"] for row in trace_rows(app, admin_key, tid)] == ["01" * 8]


async def test_otlp_protobuf_time_at_uint64_max_rejects_only_its_span(
    app: FastAPI, admin_key: str, raw: httpx.AsyncClient
) -> None:
    tid = "ef" * 16
    far = sp(tid, "02" * 8, name="far")
    far.start_time_unix_nano = 2**64 - 1
    r = await raw.post(
        "/v1/traces",
        content=request([sp(tid, "01" * 8), far], "hostile").SerializeToString(),
        headers=PB,
    )
    assert r.status_code == 200, r.text
    assert [row["id"] for row in trace_rows(app, admin_key, tid)] == ["01" * 8]


@pytest.mark.parametrize(
    "expression",
    [
        "latency > 1e999s",
        "latency > -99999999999999999999s",
        "latency < 99999999999999999999999ms",
        "total_tokens > 99999999999999999999999",
        "cost > 1e999",
    ],
)
async def test_extreme_filter_literals_are_a_400(raw: httpx.AsyncClient, expression: str) -> None:
    assert (await batch(raw, run("good-4"))).status_code == 202
    r = await raw.get(f"{API}/runs", params={"project": "hostile", "filter": expression})
    assert r.status_code == 400, r.text


# --- item 4: what is already stored ----------------------------------------------------------


async def test_pages_survive_extreme_values_already_stored(
    app: FastAPI, raw: httpx.AsyncClient, pages: httpx.AsyncClient
) -> None:
    ids = ["far", "costly", "costly-2", "tokens", "tokens-2", "negative", "normal"]
    r = await batch(raw, *(run(i, end_time=NOW_US + 10, model="gpt-4o-mini") for i in ids))
    assert r.status_code == 202, r.text
    int64 = 2**63 - 1
    extremes: dict[str, dict[str, Any]] = {
        "far": {"start_time": int64, "end_time": int64, "latency_us": int64},
        "costly": {"cost": 1e308},
        "costly-2": {"cost": 1e308},
        "tokens": {"input_tokens": int64, "output_tokens": int64, "total_tokens": int64},
        "tokens-2": {"input_tokens": int64, "output_tokens": int64, "total_tokens": int64},
        "negative": {"start_time": -int64, "latency_us": -int64, "cost": -1e308},
    }

    def write(conn: sa.Connection) -> None:
        for run_id, values in extremes.items():
            conn.execute(sa.update(runs_table).where(runs_table.c.id == run_id).values(**values))

    app_ctx(app).db.write(write)
    await every_page_renders(raw, pages, ids)


# --- the corpus: bodies that break decoders ---------------------------------------------------


def _deep_json(depth: int) -> bytes:
    return (
        b'{"project": "hostile", "runs": [{"id": "deep", "trace_id": "t", "inputs": '
        + b"[" * depth
        + b"]" * depth
        + b"}]}"
    )


CORPUS: list[tuple[str, str, bytes, dict[str, str]]] = [
    (
        "invalid utf-8 json",
        f"{API}/runs/batch",
        b'{"runs": [{"id": "\xff\xfe", "trace_id": "t"}]}',
        JS,
    ),
    ("deep json", f"{API}/runs/batch", _deep_json(5000), JS),
    ("deep json 200", f"{API}/runs/batch", _deep_json(200), JS),
    ("nan", f"{API}/runs/batch", b'{"runs": [{"id": "n", "trace_id": "t", "cost": NaN}]}', JS),
    (
        "huge exponent",
        f"{API}/runs/batch",
        b'{"runs": [{"id": "e", "trace_id": "t", "cost": 1e999}]}',
        JS,
    ),
    (
        "huge int",
        f"{API}/runs/batch",
        b'{"runs": [{"id": "i", "trace_id": "t", "start_time": 1' + b"0" * 400 + b"}]}",
        JS,
    ),
    ("not an object", f"{API}/runs/batch", b"[1, 2]", JS),
    ("truncated protobuf", "/v1/traces", b"\x0a\xff\xff\xff\x0f\x0a", PB),
    ("garbage protobuf", "/v1/traces", bytes(range(256)) * 4, PB),
    ("invalid utf-8 protobuf", "/v1/traces", b"", PB),  # filled in below
    (
        "otlp json garbage",
        "/v1/traces",
        b'{"resourceSpans": [{"scopeSpans": [{"spans": [1, "x", null]}]}]}',
        JS,
    ),
    (
        "otlp json bad resource",
        "/v1/traces",
        b'{"resourceSpans": [{"resource": {"attributes": [{"key": "a", "value": {"intValue": "1e99999"}}]}, "scopeSpans": [{"spans": [{}]}]}]}',
        JS,
    ),
    (
        "otlp logs garbage",
        "/v1/logs",
        b'{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"body": {"intValue": "99999999999999999999999"}, "timeUnixNano": "99999999999999999999"}]}]}]}',
        JS,
    ),
    (
        "langsmith garbage",
        "/langsmith/runs/batch",
        b'{"post": [{"id": "\\u0000", "start_time": 1e999}]}',
        JS,
    ),
    (
        "feedback extreme score",
        f"{API}/feedback",
        b'{"run_id": "x", "key": "k", "score": 1e999}',
        JS,
    ),
]


def _invalid_utf8_span() -> bytes:
    body = request([sp("aa" * 16, "01" * 8, name="placeholder")], "hostile").SerializeToString()
    return body.replace(b"placeholder", b"\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8\xf7\xf6\xf5")


def _many_attributes() -> bytes:
    attrs = {f"a{i}": i for i in range(20_000)}
    return request(
        [sp("bb" * 16, "01" * 8, name="many", attrs=attrs)], "hostile"
    ).SerializeToString()


def _deep_anyvalue(depth: int) -> bytes:
    value: Any = "leaf"
    for _ in range(depth):
        value = [value]
    return request(
        [sp("cc" * 16, "01" * 8, name="deep", attrs={"d": value})], "hostile"
    ).SerializeToString()


async def test_the_hostile_corpus_gives_no_5xx_and_every_page_renders(
    raw: httpx.AsyncClient, pages: httpx.AsyncClient
) -> None:
    cases = [c for c in CORPUS if c[0] != "invalid utf-8 protobuf"] + [
        ("invalid utf-8 protobuf", "/v1/traces", _invalid_utf8_span(), PB),
        ("many attributes", "/v1/traces", _many_attributes(), PB),
        ("deep anyvalue", "/v1/traces", _deep_anyvalue(40), PB),
        ("deep anyvalue 10", "/v1/traces", _deep_anyvalue(10), PB),
        (
            "gzip bomb",
            f"{API}/runs/batch",
            gzip.compress(b'{"runs": [' + b" " * 80_000_000 + b"]}"),
            {**JS, "content-encoding": "gzip"},
        ),
        (
            "otlp gzip bomb",
            "/v1/traces",
            gzip.compress(b"\x00" * 80_000_000),
            {**PB, "content-encoding": "gzip"},
        ),
    ]
    for name, path, body, headers in cases:
        r = await raw.post(path, content=body, headers={**headers, "x-goldloop-project": "hostile"})
        assert r.status_code < 500, f"{name}: {r.status_code} {r.text[:300]}"
    assert (await batch(raw, run("after-corpus"))).status_code == 202
    await every_page_renders(raw, pages, ["after-corpus"])
