"""Screenshots of the dashboard's main pages for docs/dashboard.md.

    python scripts/screenshots.py                 # writes docs/img/dashboard-*.jpg
    python scripts/screenshots.py --out /tmp/shots --quality 80

Starts ``goldloop demo`` (its own SQLite in a temporary directory, on a free port of
127.0.0.1) and waits until the demo's loop has closed (traffic, online scores, a fired alert, a
correction turned golden example, two experiments). Then adds what the demo does not make,
through the HTTP API: a dozen conversations of a few turns each (threads and users), two score
configs and a review queue of the demo's failed answers. Opens each page in Debian's Chromium
(``/usr/bin/chromium``, headless) at 1440x900, signed in with the demo's admin key, and saves
the visible part of the page as a JPEG. Never downloads a browser.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
]
WIDTH, HEIGHT = 1440, 900
OPENERS = [
    ("Can I cancel my Summer Deal booking?", "Summer Deal rates are non-refundable."),
    ("Is breakfast included in my stay?", "Breakfast is included on the Flexible rate only."),
    ("Do you have parking at the Lisbon hotel?", "Yes, 18 EUR a night, booked at check-in."),
    ("I was charged twice for booking B-2291.", "I see one charge and one pre-authorisation."),
]
FOLLOW_UPS = [
    ("Then can I change the dates instead?", "Yes: date changes are free up to 7 days before."),
    ("Move it to 14 to 16 August, please.", "Done: booking moved to 14-16 August."),
    ("Thanks! Can I get a late check-out?", "Late check-out until 14:00 is 25 EUR."),
]
RICH_TRACE = "booking-change-7731"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_demo(data_dir: Path, timeout_s: float) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    """``goldloop demo`` in the background; returns it and its outcomes once the loop closed."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    log = (data_dir.parent / "demo.log").open("wb")
    port = str(free_port())
    proc = subprocess.Popen(  # noqa: S603 (our own interpreter and arguments)
        [sys.executable, "-m", "goldloop", "demo", "--data-dir", str(data_dir), "--port", port],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    deadline = time.monotonic() + timeout_s
    outcome = data_dir / "demo.json"
    while not outcome.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.terminate()
            raise SystemExit(f"the demo did not finish; see {log.name}")
        time.sleep(0.5)
    time.sleep(0.5)  # demo.json is written in one call; let it land
    return proc, json.loads(outcome.read_text())


def conversations(now_us: int) -> list[dict[str, Any]]:
    """12 threads of 2-4 turns from 6 guests, each turn a trace: agent root + LLM call."""
    items: list[dict[str, Any]] = []
    for c in range(12):
        for turn in range(2 + c % 3):
            q, a = OPENERS[c % len(OPENERS)] if turn == 0 else FOLLOW_UPS[turn - 1]
            start = now_us - (12 - c) * 1_800_000_000 + turn * 90_000_000
            trace = f"conv{c:02d}-turn{turn}"
            session = {"session_id": f"chat-{1000 + c}", "user_id": f"guest-{c % 6 + 1:03d}"}
            messages = {"messages": [{"role": "user", "content": q}]}
            items.append(
                {
                    "id": f"{trace}-0",
                    "trace_id": trace,
                    "name": "support-agent",
                    "kind": "agent",
                    "start_time": start,
                    "end_time": start + 2_400_000 + c * 50_000,
                    "inputs": messages,
                    "outputs": {"content": a},
                    **session,
                }
            )
            items.append(
                {
                    "id": f"{trace}-1",
                    "trace_id": trace,
                    "parent_id": f"{trace}-0",
                    "name": "chat",
                    "kind": "llm",
                    "model": "gpt-4o-mini",
                    "usage": {"input_tokens": 850 + 40 * turn, "output_tokens": 60},
                    "start_time": start + 200_000,
                    "end_time": start + 2_100_000,
                    "inputs": messages,
                    "outputs": {"content": a},
                    **session,
                }
            )
    return items


def rich_trace(now_us: int) -> list[dict[str, Any]]:
    """One agent turn with planning, retrieval, tool calls and a failed then retried call."""
    t0, tid = now_us - 300_000_000, RICH_TRACE
    question = "Please move booking B-7731 to 14-16 August and keep the sea view."

    def run(
        n: int, parent: int | None, name: str, kind: str, at_ms: int, ms: int, **extra: Any
    ) -> dict[str, Any]:
        return {
            "id": f"{tid}-{n}",
            "trace_id": tid,
            "name": name,
            "kind": kind,
            "parent_id": None if parent is None else f"{tid}-{parent}",
            "start_time": t0 + at_ms * 1000,
            "end_time": t0 + (at_ms + ms) * 1000,
            **extra,
        }

    llm = {"model": "gpt-4o-mini", "provider": "openai"}
    return [
        run(
            0,
            None,
            "support-agent",
            "agent",
            0,
            6_900,
            inputs={"question": question},
            outputs={"answer": "Done: B-7731 now runs 14-16 August, sea view kept."},
            tags=["prod", "v2"],
            metadata={"customer": "acme", "release": "v2.3"},
            session_id="chat-2001",
            user_id="guest-007",
        ),
        run(
            1,
            0,
            "plan",
            "llm",
            40,
            1_150,
            **llm,
            inputs={"messages": [{"role": "user", "content": question}]},
            outputs={"content": "look up booking, check availability, change dates"},
            usage={"input_tokens": 1_240, "output_tokens": 96},
        ),
        run(
            2,
            0,
            "lookup_booking",
            "tool",
            1_220,
            180,
            inputs={"booking_id": "B-7731"},
            outputs={"rate": "Flexible", "room": "sea view double", "nights": 2},
        ),
        run(
            3,
            0,
            "policy_search",
            "retriever",
            1_420,
            420,
            inputs={"query": "date change"},
            outputs={"documents": ["Flexible rates: free date changes up to 7 days before."]},
        ),
        run(
            4,
            0,
            "check_availability",
            "tool",
            1_860,
            2_050,
            error="TimeoutError: inventory service gave no answer in 2 s",
            inputs={"from": "2026-08-14", "to": "2026-08-16", "room": "sea view double"},
        ),
        run(
            5,
            0,
            "check_availability",
            "tool",
            3_930,
            640,
            inputs={"from": "2026-08-14", "to": "2026-08-16", "room": "sea view double"},
            outputs={"available": True, "price_delta": 0},
        ),
        run(
            6,
            0,
            "change_dates",
            "tool",
            4_600,
            830,
            inputs={"booking_id": "B-7731"},
            outputs={"ok": True},
        ),
        run(
            7,
            0,
            "answer",
            "llm",
            5_460,
            1_380,
            **llm,
            inputs={"messages": [{"role": "user", "content": question}]},
            outputs={"content": "Done: B-7731 now runs 14-16 August, sea view kept."},
            usage={"input_tokens": 1_810, "output_tokens": 142},
        ),
    ]


def add_extras(api: httpx.Client, outcome: dict[str, Any]) -> dict[str, str]:
    """Threads, score configs and a review queue; returns the ids the pages need."""
    now = int(time.time() * 1_000_000)
    sent = api.post(
        "/api/v1/runs/batch",
        json={"project": "agent-support", "runs": conversations(now) + rich_trace(now)},
    )
    sent.raise_for_status()
    keys = {
        "correct": {"kind": "boolean", "description": "Is the answer right for this guest?"},
        "tone": {"kind": "categorical", "categories": ["warm", "neutral", "curt"]},
    }
    for key, body in keys.items():
        api.put(f"/api/v1/feedback-keys/{key}", json=body).raise_for_status()
    queue = api.post(
        "/api/v1/annotation-queues",
        json={
            "name": "refund answers",
            "keys": ["correct", "tone"],
            "instructions": "Check the refund promise against the booking's rate.",
        },
    )
    queue.raise_for_status()
    qid = queue.json()["id"]
    failed = outcome["failed_runs"]
    api.post(f"/api/v1/annotation-queues/{qid}/items", json={"run_ids": failed}).raise_for_status()
    deadline = time.monotonic() + 60  # the batch is ingested asynchronously
    while api.get(f"/api/v1/runs/{RICH_TRACE}-0").status_code != 200:
        if time.monotonic() > deadline:
            raise SystemExit("the extra runs were not stored within 60 s")
        time.sleep(0.3)
    notes: list[dict[str, Any]] = [
        {"key": "correct", "score": True, "comment": "Kept the sea view, as asked."},
        {"key": "tone", "value": "warm"},
    ]
    for note in notes:
        api.post("/api/v1/feedback", json={"run_id": f"{RICH_TRACE}-0", **note}).raise_for_status()
    experiments = api.get("/api/v1/experiments").json()["items"]
    return {"queue": qid, "experiment": experiments[0]["id"], "thread": "chat-1011"}


def pages(outcome: dict[str, Any], ids: dict[str, str]) -> dict[str, str]:
    """Image name -> page path, in the order docs/dashboard.md shows them."""
    pid, ds = outcome["project_id"], outcome["dataset_id"]
    return {
        "projects": "/projects",
        "overview": f"/projects/{pid}?range=24h",
        "runs": f"/projects/{pid}/runs",
        "trace": f"/traces/{RICH_TRACE}",
        "threads": f"/projects/{pid}/threads",
        "thread": f"/projects/{pid}/threads/{ids['thread']}",
        "users": f"/projects/{pid}/users",
        "datasets": "/datasets",
        "dataset": f"/datasets/{ds}",
        "dataset-diff": f"/datasets/{ds}/diff?from=1&to={outcome['golden_version']}",
        "experiments": "/experiments",
        "experiment": f"/experiments/{ids['experiment']}",
        "compare": outcome["comparison_path"],
        "rules": "/rules",
        "rule": f"/rules/{outcome['check_rule_id']}",
        "alerts": "/alerts",
        "alert": f"/alerts/{outcome['alert_rule_id']}",
        "queues": "/queues",
        "review": f"/queues/{ids['queue']}/review",
        "settings": f"/projects/{pid}/settings",
    }


def shoot(base: str, key: str, shots: dict[str, str], out: Path, quality: int) -> list[Path]:
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_context(viewport={"width": WIDTH, "height": HEIGHT}).new_page()
        page.goto(f"{base}/login")
        path = out / "dashboard-login.jpg"
        page.screenshot(path=str(path), type="jpeg", quality=quality)
        written.append(path)
        page.fill("#api_key", key)
        page.click("button[type=submit]")
        page.wait_for_url("**/projects")
        for name, url in shots.items():
            response = page.goto(base + url, wait_until="load")
            if response is None or response.status != 200:
                raise SystemExit(f"{url}: {response.status if response else 'no response'}")
            path = out / f"dashboard-{name}.jpg"
            page.screenshot(path=str(path), type="jpeg", quality=quality)
            written.append(path)
        browser.close()
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    parser.add_argument("--quality", type=int, default=70, help="JPEG quality")
    parser.add_argument("--timeout", type=float, default=300, help="seconds for the demo")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="goldloop-shots-"))
    proc, outcome = start_demo(work / "data", args.timeout)
    try:
        key = (work / "data" / "admin-key").read_text().strip()
        base = outcome["base_url"]
        with httpx.Client(base_url=base, headers={"x-api-key": key}, timeout=30) as api:
            ids = add_extras(api, outcome)
        written = shoot(base, key, pages(outcome, ids), args.out, args.quality)
    finally:
        proc.terminate()
        proc.wait(30)
        shutil.rmtree(work, ignore_errors=True)
    total = sum(p.stat().st_size for p in written)
    for p in written:
        print(
            f"{p.relative_to(ROOT) if p.is_relative_to(ROOT) else p}  {p.stat().st_size // 1024} KB"
        )
    print(f"{len(written)} screenshots, {total / 1024:.0f} KB")


if __name__ == "__main__":
    main()
