"""A small OpenAI-compatible HTTP server on 127.0.0.1 for tests (a fake at the LLM boundary).

POST /v1/chat/completions and /v1/responses, with canned JSON, or SSE streams when the request
says ``"stream": true``. When the request offers tools, the chat answer is a tool call.
A request whose first message content is ``"fail"`` gets a 400 error body.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler
from typing import Any

from quiet_http import QuietHTTPServer

CHAT_USAGE = {
    "prompt_tokens": 11,
    "completion_tokens": 7,
    "total_tokens": 18,
    "prompt_tokens_details": {"cached_tokens": 3},
    "completion_tokens_details": {"reasoning_tokens": 2},
}
RESP_USAGE = {
    "input_tokens": 5,
    "output_tokens": 4,
    "total_tokens": 9,
    "input_tokens_details": {"cached_tokens": 1},
    "output_tokens_details": {"reasoning_tokens": 0},
}
TOOL_CALL = {
    "id": "call_1",
    "type": "function",
    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
}


def chat_completion(body: dict[str, Any]) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": "Hello there"}
    finish = "stop"
    if body.get("tools"):
        message = {"role": "assistant", "content": None, "tool_calls": [TOOL_CALL]}
        finish = "tool_calls"
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1764150816,
        "model": "gpt-test-2026",
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
        "usage": CHAT_USAGE,
    }


def chat_chunks(body: dict[str, Any]) -> list[dict[str, Any]]:
    base = {"id": "chatcmpl-2", "object": "chat.completion.chunk", "created": 1764150816}
    base["model"] = "gpt-test-2026"
    deltas: list[dict[str, Any]]
    if body.get("tools"):
        deltas = [
            {"role": "assistant", "tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                                                  "function": {"name": "get_weather",
                                                               "arguments": ""}}]},
            {"tool_calls": [{"index": 0, "function": {"arguments": '{"city": '}}]},
            {"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]},
        ]  # fmt: skip
        finish = "tool_calls"
    else:
        deltas = [{"role": "assistant", "content": ""}] + [
            {"content": piece} for piece in ("Hel", "lo ", "there")
        ]
        finish = "stop"
    chunks = [
        {**base, "choices": [{"index": 0, "delta": d, "finish_reason": None}]} for d in deltas
    ]
    chunks.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
    if (body.get("stream_options") or {}).get("include_usage"):
        chunks.append({**base, "choices": [], "usage": CHAT_USAGE})
    return chunks


def response_object() -> dict[str, Any]:
    return {
        "id": "resp_1",
        "object": "response",
        "created_at": 1764150816,
        "model": "gpt-test-2026",
        "status": "completed",
        "output": [
            {
                "type": "message",
                "id": "msg_1",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "Hi there", "annotations": []}],
            }
        ],
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": RESP_USAGE,
    }


def response_events() -> list[tuple[str, dict[str, Any]]]:
    final = response_object()
    created = {**final, "status": "in_progress", "output": [], "usage": None}
    events: list[tuple[str, dict[str, Any]]] = [("response.created", {"response": created})]
    for piece in ("Hi", " there"):
        events.append(
            (
                "response.output_text.delta",
                {"item_id": "msg_1", "output_index": 0, "content_index": 0, "delta": piece},
            )
        )
    events.append(("response.completed", {"response": final}))
    return [
        (name, {"type": name, "sequence_number": i, **data})
        for i, (name, data) in enumerate(events)
    ]


class FakeOpenAI:
    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, Any]]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                outer.requests.append((self.path, body))
                messages = body.get("messages") or []
                if messages and messages[0].get("content") == "fail":
                    payload = {"error": {"message": "bad request", "type": "invalid_request"}}
                    return self._json(400, payload)
                if self.path.endswith("/chat/completions"):
                    if body.get("stream"):
                        return self._sse([(None, c) for c in chat_chunks(body)], done=True)
                    return self._json(200, chat_completion(body))
                if self.path.endswith("/responses"):
                    if body.get("stream"):
                        return self._sse(list(response_events()), done=False)
                    return self._json(200, response_object())
                return self._json(404, {"error": {"message": "no route"}})

            def _json(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _sse(self, events: list[tuple[str | None, dict[str, Any]]], done: bool) -> None:
                parts = []
                for name, data in events:
                    head = f"event: {name}\n" if name else ""
                    parts.append(f"{head}data: {json.dumps(data)}\n\n")
                if done:
                    parts.append("data: [DONE]\n\n")
                data = "".join(parts).encode()
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = QuietHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
