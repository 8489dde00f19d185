"""The pure LangSmith wire layer: run conversion, error parsing, multipart framing, zstd."""

from __future__ import annotations

import pytest
import zstandard

from goldloop.domain import multipart
from goldloop.domain.errors import InvalidInput, PayloadTooLarge
from goldloop.domain.langsmith import ops as langsmith_ops
from goldloop.domain.langsmith.runs import (
    RUN_TYPES,
    RunTypeError,
    WireError,
    convert_run,
    derive_lineage,
    dotted_ids,
    dotted_segment,
    parse_error,
)
from goldloop.domain.zstd_body import decode_zstd

ROOT = "01a21758-aa96-7f6d-89f8-42df348896d1"
CHILD = "01a21758-aa9b-7d15-a7fd-d485dc429074"
DOTTED = f"20261126T101336534505Z{ROOT}.20261126T101336539858Z{CHILD}"
FORM = "multipart/form-data; boundary=b0a1"
TRACEBACK = (
    "ValueError('boom')\n\nTraceback (most recent call last):\n"
    '  File "x.py", line 3, in child\n    raise ValueError("boom")\nValueError: boom\n'
)


def test_a_child_post_becomes_a_native_item() -> None:
    item = convert_run(
        {
            "id": CHILD,
            "trace_id": ROOT,
            "parent_run_id": ROOT,
            "dotted_order": DOTTED,
            "session_name": "myproj",
            "name": "child",
            "run_type": "tool",
            "start_time": "2026-11-26T10:13:36.539858+00:00",
            "end_time": "2026-11-26T10:13:36+00:00",
            "inputs": {"x": 5},
            "outputs": {"output": 10},
            "events": [],
            "tags": ["t1"],
            "extra": {
                "metadata": {"m": 1, "thread_id": "conv-1", "user_id": "u-9"},
                "runtime": {"sdk": "langsmith-py"},
            },
            "error": TRACEBACK,
        },
        is_post=True,
    )
    assert item == {
        "id": CHILD,
        "trace_id": ROOT,
        "parent_id": ROOT,
        "name": "child",
        "kind": "tool",
        "start_time": 1795688016539858,
        "end_time": 1795688016000000,
        "inputs": {"x": 5},
        "outputs": {"output": 10},
        "error": {
            "type": "ValueError",
            "message": "boom",
            "stacktrace": TRACEBACK[TRACEBACK.index("Traceback") :].strip(),
        },
        "status": "error",
        "tags": ["t1"],
        "metadata": {"m": 1, "thread_id": "conv-1", "user_id": "u-9"},
        "session_id": "conv-1",
        "user_id": "u-9",
        "extra": {
            "langsmith": {"dotted_order": DOTTED, "extra": {"runtime": {"sdk": "langsmith-py"}}}
        },
        "ls_project_name": "myproj",
    }


def test_nulls_and_empty_post_outputs_mean_unchanged() -> None:
    # What a manual update_run sends: every key, unset ones as null.
    patch = convert_run(
        {
            "id": CHILD,
            "name": None,
            "run_type": None,
            "trace_id": None,
            "parent_run_id": None,
            "start_time": None,
            "end_time": "2026-11-26T10:13:37+00:00",
            "outputs": {"a": 1},
            "error": None,
            "tags": None,
            "extra": None,
            "session_name": None,
        },
        is_post=False,
    )
    assert patch == {"id": CHILD, "end_time": 1795688017000000, "outputs": {"a": 1}}
    post = convert_run({"id": ROOT, "trace_id": ROOT, "outputs": {}, "events": []}, is_post=True)
    assert "outputs" not in post  # a bare post's {} must not overwrite a patch's outputs
    assert "events" not in post


def test_trace_and_parent_come_from_the_dotted_order_when_missing() -> None:
    item = convert_run({"id": CHILD, "dotted_order": DOTTED}, is_post=True)
    assert (item["trace_id"], item["parent_id"]) == (ROOT, ROOT)
    assert dotted_ids(DOTTED) == [ROOT, CHILD]
    assert dotted_ids("garbage") == []


def test_usage_model_and_provider_from_llm_metadata() -> None:
    item = convert_run(
        {
            "id": CHILD,
            "trace_id": ROOT,
            "run_type": "llm",
            "extra": {
                "metadata": {
                    "ls_provider": "openai",
                    "ls_model_name": "gpt-4o",
                    "usage_metadata": {
                        "input_tokens": 12,
                        "output_tokens": 30,
                        "total_tokens": 42,
                        "input_token_details": {"cache_read": 4},
                        "output_token_details": {"reasoning": 7},
                    },
                }
            },
        },
        is_post=False,
    )
    assert item["usage"] == {
        "input_tokens": 12,
        "output_tokens": 30,
        "total_tokens": 42,
        "cache_read_tokens": 4,
        "reasoning_tokens": 7,
        "input_token_details": {"cache_read": 4},
        "output_token_details": {"reasoning": 7},
    }
    assert (item["model"], item["provider"], item["kind"]) == ("gpt-4o", "openai", "llm")
    assert "cost" not in item  # no cost sent: Goldloop's price estimate applies


def test_caller_costs_become_the_native_cost_object() -> None:
    usage = {
        "input_tokens": 10,
        "output_tokens": 5,
        "total_tokens": 15,
        "input_cost": 0.25,
        "output_cost": 0.5,
        "total_cost": 0.75,
        "input_cost_details": {"cache_read": 0.05},
        "output_cost_details": {"reasoning": 0.1},
    }
    item = convert_run({"id": "r", "extra": {"metadata": {"usage_metadata": usage}}}, is_post=False)
    assert item["cost"] == {
        "input": 0.25,
        "output": 0.5,
        "total": 0.75,
        "input_details": {"cache_read": 0.05},
        "output_details": {"reasoning": 0.1},
    }
    partial = {"input_tokens": 1, "output_tokens": 2, "input_cost": 0.1}
    item = convert_run({"id": "r", "outputs": {"usage_metadata": partial}}, is_post=False)
    assert item["cost"] == {"input": 0.1}


@pytest.mark.parametrize("run_type", ["agent", "weird", "LLM", "", 3, ["llm"]])
def test_run_types_outside_langsmith_set_are_refused(run_type: object) -> None:
    with pytest.raises(RunTypeError, match=r"run_type: .* is not a LangSmith run type"):
        convert_run({"id": "r", "run_type": run_type}, is_post=True)


@pytest.mark.parametrize("run_type", RUN_TYPES)
def test_every_langsmith_run_type_is_kept(run_type: str) -> None:
    assert convert_run({"id": "r", "run_type": run_type}, is_post=True)["kind"] == run_type
    assert "kind" not in convert_run({"id": "r", "run_type": None}, is_post=False)


def test_bad_values() -> None:
    with pytest.raises(WireError, match="id"):
        convert_run({"name": "x"}, is_post=True)
    with pytest.raises(WireError, match="start_time"):
        convert_run({"id": "r", "start_time": "yesterday"}, is_post=True)


@pytest.mark.parametrize(
    ("text", "kind", "message"),
    [
        ("KeyError('x')", "KeyError", "x"),
        ("OSError(2, 'No such file')", "OSError", "2, No such file"),
        ("RuntimeError()", "RuntimeError", ""),
        ("mod.CustomError(<object at 0x1>)", "mod.CustomError", "<object at 0x1>"),
        ("plain text failure", None, "plain text failure"),
    ],
)
def test_error_strings_are_parsed(text: str, kind: str | None, message: str) -> None:
    parsed = parse_error(text)
    assert (parsed["type"], parsed["message"], parsed["stacktrace"]) == (kind, message, None)


def test_lineage_is_derived_for_runs_created_without_it() -> None:
    root: dict[str, object] = {"id": ROOT, "start_time": 1795688016534505}
    derive_lineage(root, None, None)
    assert root["trace_id"] == ROOT
    assert root["extra"] == {"langsmith": {"dotted_order": f"20261126T101336534505Z{ROOT}"}}
    child: dict[str, object] = {"id": CHILD, "parent_id": ROOT, "start_time": 1795688016539858}
    derive_lineage(child, ROOT, f"20261126T101336534505Z{ROOT}")
    assert child["trace_id"] == ROOT
    assert child["extra"] == {"langsmith": {"dotted_order": DOTTED}}
    assert dotted_segment(1795688016000000, "x") == "20261126T101336000000Zx"


def _form(*parts: tuple[str, bytes], boundary: str = "b0a1") -> bytes:
    out = b""
    for name, data in parts:
        out += (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n'
                f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
            ).encode()
            + data
            + b"\r\n"
        )
    return out + f"--{boundary}--\r\n".encode()


def test_multipart_parts_are_read_in_order_and_assembled() -> None:
    body = _form(
        ("post.r1", b'{"trace_id": "r1", "name": "a"}'),
        ("post.r1.inputs", b'{"q": "hi\\r\\n--b0a"}'),
        ("attachment.r1.img", b"\x89PNG\r\n"),
        ("patch.r1", b'{"trace_id": "r1", "end_time": "2026-11-26T10:13:37+00:00"}'),
        ("patch.r1.outputs", b'{"a": 1}'),
        ("patch.r1.error", b"\"ValueError('x')\""),
        ("feedback.f1", b'{"key": "k", "run_id": "r1"}'),
    )
    parts = multipart.parse(body, 'multipart/form-data; boundary="b0a1"')
    assert [p.name for p in parts][:3] == ["post.r1", "post.r1.inputs", "attachment.r1.img"]
    assert parts[2].data == b"\x89PNG\r\n"
    batch = langsmith_ops.assemble(parts)
    assert [(run, p.name, p.data) for run, p in batch.attachments] == [
        ("r1", "img", b"\x89PNG\r\n")
    ]
    assert [(op.kind, op.id) for op in batch.operations] == [
        ("post", "r1"),
        ("patch", "r1"),
        ("feedback", "f1"),
    ]
    assert batch.operations[0].body == {
        "id": "r1",
        "trace_id": "r1",
        "name": "a",
        "inputs": {"q": "hi\r\n--b0a"},
    }
    assert batch.operations[1].body["outputs"] == {"a": 1}
    assert batch.operations[1].body["error"] == "ValueError('x')"


def test_a_subpart_before_its_run_part_is_kept() -> None:
    body = _form(("post.r1.inputs", b'{"q": 1}'), ("post.r1", b'{"name": "a"}'))
    ops = langsmith_ops.assemble(multipart.parse(body, "multipart/form-data; boundary=b0a1"))
    assert [op.body for op in ops.operations] == [{"id": "r1", "name": "a", "inputs": {"q": 1}}]


@pytest.mark.parametrize(
    ("body", "content_type", "problem"),
    [
        (b"x", "application/json", "expected multipart/form-data"),
        (b"x", "multipart/form-data", "no boundary"),
        (
            b'--b0a1\r\nContent-Disposition: form-data; name="a"\r\n\r\n{}',
            None,
            "no boundary after",
        ),
        (b"--b0a1\r\nContent-Type: x\r\n\r\n{}\r\n--b0a1--", None, "no Content-Disposition"),
        (b"nothing here", None, "does not start"),
    ],
)
def test_malformed_multipart_is_rejected(
    body: bytes, content_type: str | None, problem: str
) -> None:
    with pytest.raises(multipart.MultipartError, match=problem):
        multipart.parse(body, content_type or "multipart/form-data; boundary=b0a1")


def test_bad_parts_are_rejected() -> None:
    with pytest.raises(langsmith_ops.OpsError, match="not valid JSON"):
        langsmith_ops.assemble(
            multipart.parse(_form(("post.r1", b"{")), "multipart/form-data; boundary=b0a1")
        )
    with pytest.raises(langsmith_ops.OpsError, match="unknown part name"):
        langsmith_ops.assemble(
            multipart.parse(_form(("other", b"{}")), "multipart/form-data; boundary=b0a1")
        )


def test_zstd_without_content_size_is_decoded_and_capped() -> None:
    compressor = zstandard.ZstdCompressor(level=1).compressobj()  # streaming: no content size
    payload = _form(("post.r1", b'{"name": "a"}')) * 2000
    frame = compressor.compress(payload) + compressor.flush()
    assert zstandard.get_frame_parameters(frame).content_size == zstandard.CONTENTSIZE_UNKNOWN
    assert decode_zstd(frame, len(payload)) == payload
    with pytest.raises(PayloadTooLarge):
        decode_zstd(frame, len(payload) - 1)
    with pytest.raises(InvalidInput, match="not valid zstd"):
        decode_zstd(b"not zstd at all", 1000)
