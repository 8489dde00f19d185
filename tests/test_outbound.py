"""The outbound allow-list (``outbound_allowed_hosts``): checked when a channel, a rule webhook
or a judge URL is saved, and after DNS resolution when a request is sent.

Receivers are real HTTP servers on 127.0.0.1. DNS is the one boundary faked: the service
context's resolver maps made-up names (``*.example.test``) to chosen addresses, which is how a
rebinding attacker's DNS would answer.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI
from tests.fake_llm import FakeLLM, completion
from tests.receiver import Receiver
from tests.test_rules_flow import post_runs, project_id, run_items

from goldloop.domain.errors import OutboundRefused
from goldloop.domain.outbound import AllowList
from goldloop.services import deliveries, outbound
from goldloop.services.context import Principal, ServiceContext
from goldloop.settings import SettingsError, load_settings
from goldloop.workers.service_loops import Workers

METADATA = "http://169.254.169.254/latest/meta-data/"
SETTING = "outbound_allowed_hosts (GOLDLOOP_OUTBOUND_ALLOWED_HOSTS)"


def dns(table: dict[str, list[str]]):  # type: ignore[no-untyped-def]
    def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise OSError(f"no such host {host}")
        return table[host]

    return resolve


# --- the list itself --------------------------------------------------------------------------


def test_allow_list_matching() -> None:
    a = AllowList.parse("hooks.slack.com, *.example.com, 10.0.0.0/8, fd00::1")
    assert a.name_allowed("HOOKS.slack.com")
    assert a.name_allowed("a.b.example.com")
    assert not a.name_allowed("example.com")  # *.suffix is subdomains only
    assert not a.name_allowed("slack.com")
    assert not a.name_allowed("evilexample.com")
    assert a.name_allowed("10.1.2.3")
    assert a.name_allowed("fd00::1")
    assert not a.name_allowed("127.0.0.1")
    ip = ipaddress.ip_address
    assert a.address_allowed(ip("10.9.9.9"), name_allowed=False)
    assert not a.address_allowed(ip("192.168.1.1"), name_allowed=False)
    assert a.address_allowed(ip("192.168.1.1"), name_allowed=True)
    assert not a.address_allowed(ip("169.254.169.254"), name_allowed=True)


def test_the_default_refuses_only_link_local_and_metadata() -> None:
    a = AllowList.parse(load_settings({}, environ={}).outbound_allowed_hosts)
    for host in ("127.0.0.1", "10.0.0.1", "hooks.slack.com", "::1"):
        assert a.name_allowed(host), host
    for host in ("169.254.169.254", "fe80::1", "::ffff:169.254.169.254", "100.100.100.200"):
        assert not a.name_allowed(host), host
    explicit = AllowList.parse("*, 169.254.169.254/32")
    assert explicit.name_allowed("169.254.169.254")


@pytest.mark.parametrize("bad", ["10.0.0.0/33", "*.", "exa mple.com", "http://x.com"])
def test_a_bad_entry_names_the_setting(bad: str) -> None:
    with pytest.raises(SettingsError, match="GOLDLOOP_OUTBOUND_ALLOWED_HOSTS"):
        load_settings({}, environ={"GOLDLOOP_OUTBOUND_ALLOWED_HOSTS": bad})


# --- when a URL is saved ------------------------------------------------------------------------


def _judge_rule(pid: str, base_url: str) -> dict[str, object]:
    return {
        "project_id": pid,
        "name": "judge",
        "actions": [
            {
                "type": "evaluate",
                "evaluators": [{"name": "regex", "config": {"key": "ok", "pattern": "a"}}],
                "judge": {
                    "name": "llm_judge",
                    "config": {"base_url": base_url, "model": "m", "cache": False},
                },
                "judge_mode": "always",
            }
        ],
    }


def _refused(r: httpx.Response, host: str) -> None:
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == "outbound_refused"
    assert repr(host) in error["message"]
    assert SETTING in error["message"]


async def test_metadata_urls_are_refused_when_saved_by_default(client: httpx.AsyncClient) -> None:
    channel = {"name": "meta", "kind": "webhook", "url": METADATA}
    _refused(await client.post("/api/v1/channels", json=channel), "169.254.169.254")
    pid = await project_id(client)
    hook_rule = {"project_id": pid, "name": "h", "actions": [{"type": "webhook", "url": METADATA}]}
    _refused(await client.post("/api/v1/rules", json=hook_rule), "169.254.169.254")
    judge = _judge_rule(pid, "http://[fe80::1]:8080/v1")
    _refused(await client.post("/api/v1/rules", json=judge), "fe80::1")


@pytest.fixture
def restricted(app: FastAPI) -> Iterator[ServiceContext]:
    """The running app's settings narrowed to one name and one network, and a fake DNS."""
    ctx = app.state.ctx
    saved = ctx.settings, ctx.resolve
    ctx.settings = dataclasses.replace(
        ctx.settings, outbound_allowed_hosts="hooks.example.test, 10.0.0.0/8"
    )
    ctx.resolve = dns({"internal.example.net": ["10.1.2.3"], "elsewhere.example.net": ["8.8.8.8"]})
    yield ctx
    ctx.settings, ctx.resolve = saved


async def test_a_restricted_list_refuses_other_hosts_when_saved(
    client: httpx.AsyncClient, restricted: ServiceContext, hook: Receiver
) -> None:
    ok = {"name": "ok", "kind": "webhook", "url": "https://hooks.example.test/x"}
    assert (await client.post("/api/v1/channels", json=ok)).status_code == 201
    inside = {"name": "in", "kind": "slack", "url": "https://internal.example.net/x"}
    assert (await client.post("/api/v1/channels", json=inside)).status_code == 201  # via the CIDR
    outside = {"name": "out", "kind": "webhook", "url": "https://elsewhere.example.net/x"}
    _refused(await client.post("/api/v1/channels", json=outside), "elsewhere.example.net")
    local = {"name": "local", "kind": "webhook", "url": hook.url}
    _refused(await client.post("/api/v1/channels", json=local), "127.0.0.1")
    pid = await project_id(client)
    rule = {"project_id": pid, "name": "h", "actions": [{"type": "webhook", "url": hook.url}]}
    _refused(await client.post("/api/v1/rules", json=rule), "127.0.0.1")
    r = await client.post("/api/v1/rules", json=_judge_rule(pid, "http://judge.example.org/v1"))
    _refused(r, "judge.example.org")


# --- when a request is sent ---------------------------------------------------------------------


def _queue(ctx: ServiceContext, url: str, key: str = "k1") -> None:
    ctx.db.write(
        lambda c: deliveries.enqueue(
            ctx, c, workspace_id="w", idempotency_key=key, url=url, body={"hello": "world"}
        )
    )


def _only_delivery(ctx: ServiceContext) -> dict[str, object]:
    rows = deliveries.list_deliveries(ctx, Principal("w", "k", "admin"))
    assert len(rows) == 1
    return rows[0]


def test_a_host_that_resolves_to_metadata_is_refused_at_send_time_without_retry(
    ctx: ServiceContext, hook: Receiver
) -> None:
    # The name passed when saved (the default allows any name); its DNS now says 169.254.x.
    ctx.resolve = dns({"hooks.example.test": ["10.0.0.7", "169.254.169.254"]})
    _queue(ctx, "http://hooks.example.test/secret-path")
    with httpx.Client() as http:
        report = deliveries.dispatch_due(ctx, http)
        assert report == deliveries.DispatchReport(failed=1)
        assert deliveries.dispatch_due(ctx, http) == deliveries.DispatchReport()
    row = _only_delivery(ctx)
    assert row["status"] == "failed"
    assert row["attempts"] == 1
    error = str(row["last_error"])
    assert "link-local or cloud metadata" in error
    assert SETTING in error
    assert "'hooks.example.test'" in error
    assert "secret-path" not in error
    assert hook.requests == []


def test_a_tightened_list_refuses_a_url_saved_before(ctx: ServiceContext, hook: Receiver) -> None:
    _queue(ctx, hook.url)  # saved under the default
    ctx.settings = dataclasses.replace(ctx.settings, outbound_allowed_hosts="hooks.slack.com")
    with httpx.Client() as http:
        assert deliveries.dispatch_due(ctx, http) == deliveries.DispatchReport(failed=1)
    assert "the address is not allowed" in str(_only_delivery(ctx)["last_error"])
    assert hook.requests == []


def test_the_request_goes_to_the_address_that_was_checked(
    ctx: ServiceContext, hook: Receiver
) -> None:
    """The name resolves (in our DNS) to the receiver's address: the request reaches it with the
    original Host header, which only works if it is sent to the checked address itself."""
    port = hook.url.split(":")[2].split("/")[0]
    ctx.settings = dataclasses.replace(ctx.settings, outbound_allowed_hosts="*.example.test")
    ctx.resolve = dns({"hooks.example.test": ["127.0.0.1"]})
    _queue(ctx, f"http://hooks.example.test:{port}/hook")
    with httpx.Client() as http:
        assert deliveries.dispatch_due(ctx, http) == deliveries.DispatchReport(sent=1)
    assert [r.headers["host"] for r in hook.requests] == [f"hooks.example.test:{port}"]
    assert hook.bodies() == [{"hello": "world"}]


def test_a_failed_delivery_keeps_the_status_not_the_answer(
    ctx: ServiceContext, hook: Receiver
) -> None:
    hook.reply = b'{"AccessKeyId": "ASIA-INTERNAL-SECRET"}'
    hook.script = [(403, {})]
    _queue(ctx, hook.url)
    with httpx.Client() as http:
        assert deliveries.dispatch_due(ctx, http) == deliveries.DispatchReport(failed=1)
    row = _only_delivery(ctx)
    assert row["last_error"] == "HTTP 403"
    assert "ASIA" not in repr(row)


async def test_a_judge_whose_host_resolves_to_metadata_is_never_called(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    llm = FakeLLM(lambda body: (200, completion('{"reasoning": "ok", "score": 1}'), {}))
    ctx = app.state.ctx
    saved = ctx.resolve
    port = llm.url.split(":")[2].split("/")[0]
    workers = Workers(ctx)
    try:
        pid = await project_id(client)
        good = _judge_rule(pid, f"http://judge.example.test:{port}/v1")
        bad = _judge_rule(pid, f"http://rebound.example.test:{port}/v1")
        for rule in (good, bad):
            assert (await client.post("/api/v1/rules", json=rule)).status_code == 201
        ctx.resolve = dns(
            {"judge.example.test": ["127.0.0.1"], "rebound.example.test": ["169.254.169.254"]}
        )
        await post_runs(client, run_items(1))
        workers.flush()
        assert llm.calls == 1  # only the good rule's judge; sent to the checked address
        assert llm.headers[0]["host"] == f"judge.example.test:{port}"
        errors = []
        for r in (await client.get("/api/v1/rules")).json():
            for action in (await client.get(f"/api/v1/rules/{r['id']}/history")).json():
                errors += action["detail"]["errors"]
        assert len(errors) == 1
        assert errors[0]["error"].startswith("OutboundRefused: refused to send to")
        assert "rebound.example.test" in errors[0]["error"]
    finally:
        ctx.resolve = saved
        workers.stop()
        llm.stop()


# --- issue 22 (6): every spelling of an address is that address, at save and at send -----------

METADATA_SPELLINGS = [
    "169.254.169.254",
    "2852039166",  # decimal
    "0xa9fea9fe",  # hex
    "0XA9FEA9FE",
    "0251.0376.0251.0376",  # octal (httpx refuses to parse it: refused as not a usable URL)
    "0xa9.0xfe.0xa9.0xfe",
    "169.254.43518",  # short forms: the last part fills the remaining bytes
    "169.16689662",
    "0251.0xfe.43518",
    "169.254.169.254.",
    "[::ffff:169.254.169.254]",  # IPv4-mapped
    "[::ffff:a9fe:a9fe]",
    "[::a9fe:a9fe]",  # IPv4-compatible
    "[::169.254.169.254]",
    "[::ffff:0:a9fe:a9fe]",  # IPv4-translated
    "[64:ff9b::a9fe:a9fe]",  # NAT64, well-known prefix
    "[64:ff9b::169.254.169.254]",
    "[64:ff9b:1::a9fe:a9fe]",  # NAT64, local-use prefix
    "[2002:a9fe:a9fe::1]",  # 6to4
    "[fe80::1%25eth0]",  # link-local with a zone
    "[fd00:ec2::254]",
    "1684301000",  # 100.100.100.200, Alibaba's metadata
]


@pytest.mark.parametrize("host", METADATA_SPELLINGS)
def test_every_spelling_of_a_metadata_address_is_refused_at_save_and_send(host: str) -> None:
    allowed = load_settings({}, environ={}).outbound_allowed_hosts
    url = f"http://{host}/latest/meta-data/"
    refuse_all = dns({})  # no lookups needed: an address is never resolved
    why = "link-local or cloud metadata|not a usable URL"
    with pytest.raises(OutboundRefused, match=why):
        outbound.check_url(allowed, refuse_all, url, field_name="url")
    with pytest.raises(OutboundRefused, match=why):
        outbound.pin(allowed, refuse_all, url)
    # the same with a list that allows any name and only a private network
    with pytest.raises(OutboundRefused):
        outbound.check_url("*.example.test, 10.0.0.0/8", refuse_all, url, field_name="url")
    with pytest.raises(OutboundRefused):
        outbound.pin("*.example.test, 10.0.0.0/8", refuse_all, url)


@pytest.mark.parametrize(
    "answer", ["::a9fe:a9fe", "64:ff9b::a9fe:a9fe", "::ffff:0:a9fe:a9fe", "fe80::1%eth0"]
)
def test_a_name_resolving_to_an_embedded_metadata_address_is_refused_when_sent(
    answer: str,
) -> None:
    allowed = load_settings({}, environ={}).outbound_allowed_hosts
    with pytest.raises(OutboundRefused, match="link-local or cloud metadata"):
        outbound.pin(allowed, dns({"hooks.example.test": [answer]}), "https://hooks.example.test/")


@pytest.mark.parametrize(
    "spelling", ["127.0.0.1", "2130706433", "0x7f000001", "0x7f.1", "127.1", "[::ffff:7f00:1]"]
)
def test_an_allowed_address_in_any_spelling_is_sent_to_that_address(
    ctx: ServiceContext, hook: Receiver, spelling: str
) -> None:
    port = hook.url.split(":")[2].split("/")[0]
    ctx.settings = dataclasses.replace(ctx.settings, outbound_allowed_hosts="127.0.0.0/8")
    ctx.resolve = dns({})  # an address is never looked up
    url = f"http://{spelling}:{port}/hook"
    outbound.check_url(ctx.settings.outbound_allowed_hosts, ctx.resolve, url, field_name="url")
    _queue(ctx, url)
    with httpx.Client() as http:
        assert deliveries.dispatch_due(ctx, http) == deliveries.DispatchReport(sent=1)
    assert [r.headers["host"] for r in hook.requests] == [f"{spelling}:{port}"]


def test_the_allow_list_reads_entries_in_any_spelling() -> None:
    a = AllowList.parse("0x0a000001, ::ffff:192.168.0.1")
    assert a.name_allowed("10.0.0.1")
    assert a.name_allowed("167772161")
    assert a.name_allowed("192.168.0.1")
    assert not a.name_allowed("10.0.0.2")


@pytest.mark.parametrize(
    "host", ["2852039166", "0xa9fea9fe", "[::a9fe:a9fe]", "[64:ff9b::a9fe:a9fe]"]
)
async def test_spelled_metadata_urls_are_refused_by_the_api(
    client: httpx.AsyncClient, host: str
) -> None:
    channel = {"name": "meta", "kind": "webhook", "url": f"http://{host}/latest/"}
    r = await client.post("/api/v1/channels", json=channel)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "outbound_refused"
    assert "link-local or cloud metadata" in r.json()["error"]["message"]
