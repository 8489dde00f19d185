"""Signed webhooks: the SDK's ``goldloop.webhooks.verify`` and rule webhooks signed with the
rule's secret, delivered to a real receiver on 127.0.0.1."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from tests.receiver import Receiver
from tests.test_rules_flow import post_runs, project_id, run_items

from goldloop.webhooks import WebhookSignatureError, sign, signature_header, verify
from goldloop.workers.service_loops import Workers

SECRET = "whsec_test-secret"
BODY = b'{"type":"goldloop.rule","run":{"id":"r1"}}'
T = 1_800_000_000


def test_a_valid_signature_verifies() -> None:
    headers = {"Goldloop-Signature": signature_header(SECRET, BODY, T)}
    assert verify(SECRET, headers, BODY, now=T + 10) == T
    assert verify(SECRET, httpx.Headers(headers), BODY.decode(), now=T) == T  # any mapping, str
    assert verify(SECRET, {"goldloop-signature": headers["Goldloop-Signature"]}, BODY, now=T)


def test_a_tampered_body_or_another_secret_fails() -> None:
    headers = {"Goldloop-Signature": signature_header(SECRET, BODY, T)}
    with pytest.raises(WebhookSignatureError, match="does not match"):
        verify(SECRET, headers, BODY.replace(b"r1", b"r2"), now=T)
    with pytest.raises(WebhookSignatureError, match="does not match"):
        verify("whsec_other", headers, BODY, now=T)
    # the timestamp is signed too: moving it breaks the signature
    moved = {"Goldloop-Signature": f"t={T + 1},v1={sign(SECRET, T, BODY)}"}
    with pytest.raises(WebhookSignatureError, match="does not match"):
        verify(SECRET, moved, BODY, now=T)


def test_a_stale_timestamp_fails() -> None:
    headers = {"Goldloop-Signature": signature_header(SECRET, BODY, T)}
    with pytest.raises(WebhookSignatureError, match="tolerance 300 s"):
        verify(SECRET, headers, BODY, now=T + 301)
    with pytest.raises(WebhookSignatureError, match="tolerance"):
        verify(SECRET, headers, BODY, now=T - 301)  # from the future
    assert verify(SECRET, headers, BODY, now=T + 3600, tolerance_s=7200) == T


@pytest.mark.parametrize(
    "value", [None, "", "v1=abc", f"t=later,v1={sign(SECRET, T, BODY)}", f"t={T}"]
)
def test_a_missing_or_malformed_header_fails(value: str | None) -> None:
    headers = {} if value is None else {"Goldloop-Signature": value}
    with pytest.raises(WebhookSignatureError, match="header"):
        verify(SECRET, headers, BODY, now=T)


def test_one_matching_signature_of_several_is_enough() -> None:
    value = f"t={T},v1={'0' * 64},v1={sign(SECRET, T, BODY)}"
    assert verify(SECRET, {"Goldloop-Signature": value}, BODY, now=T) == T


async def test_rule_webhooks_are_signed_with_the_rules_secret_shown_once(
    client: httpx.AsyncClient, app: FastAPI, hook: Receiver
) -> None:
    pid = await project_id(client)
    rules = []
    for name in ("first", "second"):
        r = await client.post(
            "/api/v1/rules",
            json={
                "project_id": pid,
                "name": name,
                "actions": [{"type": "webhook", "url": hook.url}],
            },
        )
        assert r.status_code == 201, r.text
        rules.append(r.json())
    secrets = [r["signing_secret"] for r in rules]
    assert all(s.startswith("whsec_") for s in secrets)
    assert secrets[0] != secrets[1]  # one per rule
    for s in secrets:
        assert s not in (await client.get("/api/v1/rules")).text
        assert s not in (await client.get(f"/api/v1/rules/{rules[0]['id']}")).text
    workers = Workers(app.state.ctx)
    try:
        await post_runs(client, run_items(1))
        workers.flush()
    finally:
        workers.stop()
    assert len(hook.requests) == 2
    for request, raw in zip(hook.requests, hook.raw, strict=True):
        secret = secrets[0] if request.body["rule"]["name"] == "first" else secrets[1]
        verify(secret, request.headers, raw)
        other = secrets[1] if secret == secrets[0] else secrets[0]
        with pytest.raises(WebhookSignatureError):
            verify(other, request.headers, raw)  # another rule's secret does not fit
