"""A hotel-booking support agent: deterministic answers from a small booking table, traced
with the Goldloop SDK.

Version 1 guesses whether a rate is refundable from the rate's *name*: "Saver (non-refundable)"
says so, the promotional "Summer Deal" does not, so v1 tells Summer Deal guests they can get a
full refund. Version 2 reads the rate's ``refundable`` flag.

With no model configured the answers are templates. With an OpenAI-compatible chat endpoint
(``GOLDLOOP_DEMO_LLM_BASE_URL`` and ``GOLDLOOP_DEMO_LLM_MODEL``, optionally
``GOLDLOOP_DEMO_LLM_API_KEY``; or :func:`use_chat_model`) the agent still takes the same
decision in code, and the model words the reply to the guest, traced as an ``llm`` child run
with its model and tokens. The wording then varies from run to run, so the demo's gate compares
refund promises rather than exact answers.
"""

from __future__ import annotations

import os
import random
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

import goldloop

RATES: dict[str, dict[str, Any]] = {
    "FLEX": {
        "name": "Flexible",
        "refundable": True,
        "terms": "free cancellation until 24 hours before arrival",
    },
    "SAVER": {"name": "Saver (non-refundable)", "refundable": False, "terms": "non-refundable"},
    "SUMMER": {"name": "Summer Deal", "refundable": False, "terms": "non-refundable"},
}

BOOKINGS: dict[str, dict[str, str]] = {
    "B-1001": {"guest": "Ada", "hotel": "Harbour View Lisbon", "rate": "FLEX"},
    "B-1002": {"guest": "Bruno", "hotel": "Old Town Prague", "rate": "SAVER"},
    "B-1003": {"guest": "Chiara", "hotel": "Canal House Amsterdam", "rate": "SUMMER"},
    "B-1004": {"guest": "Dmitri", "hotel": "Harbour View Lisbon", "rate": "SUMMER"},
    "B-1005": {"guest": "Emma", "hotel": "Riverside Seville", "rate": "FLEX"},
    "B-1006": {"guest": "Farid", "hotel": "Old Town Prague", "rate": "SAVER"},
    "B-1007": {"guest": "Grace", "hotel": "Canal House Amsterdam", "rate": "SUMMER"},
    "B-1008": {"guest": "Hugo", "hotel": "Riverside Seville", "rate": "FLEX"},
}

CANCEL_QUESTIONS = (
    "Can I cancel and get my money back?",
    "I need to cancel my stay. Will I be refunded?",
    "Is my booking refundable if I cancel?",
)
OTHER_QUESTIONS = (
    "Can I move my stay to next month?",
    "Is breakfast included?",
)

# The check the online rule and the gate share: an answer that cites a non-refundable rate
# must never promise a refund.
POLICY_CHECK = {
    "key": "refund_policy_ok",
    "field": "answer",
    "pattern": "non-refundable.*(full refund|fully refundable)",
    "negate": True,
    "flags": ["ignore_case", "dotall"],
}


def find_booking(booking_id: str) -> dict[str, Any]:
    booking = BOOKINGS.get(booking_id)
    if booking is None:
        return {"found": False}
    return {"found": True, **booking, "rate": {"code": booking["rate"], **RATES[booking["rate"]]}}


@goldloop.traced(kind="tool")
def lookup_booking(booking_id: str) -> dict[str, Any]:
    return find_booking(booking_id)


@dataclass(frozen=True)
class ChatModel:
    """An OpenAI-compatible chat completions endpoint that words the agent's replies."""

    base_url: str
    model: str
    api_key: str | None = field(default=None, repr=False)
    timeout_s: float = 60.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ChatModel | None:
        """The ``GOLDLOOP_DEMO_LLM_*`` variables; None when no base URL is set."""
        env = os.environ if environ is None else environ
        url = env.get("GOLDLOOP_DEMO_LLM_BASE_URL")
        if not url:
            return None
        model = env.get("GOLDLOOP_DEMO_LLM_MODEL")
        if not model:
            raise ValueError("GOLDLOOP_DEMO_LLM_BASE_URL is set but GOLDLOOP_DEMO_LLM_MODEL is not")
        return cls(url.rstrip("/"), model, env.get("GOLDLOOP_DEMO_LLM_API_KEY") or None)


_chat_lock = threading.Lock()
_chat: dict[str, ChatModel | None] = {}


def use_chat_model(model: ChatModel | None) -> None:
    """Word replies with ``model`` (None: templates), whatever the environment says."""
    with _chat_lock:
        _chat["model"] = model


def chat_model() -> ChatModel | None:
    """The model set by :func:`use_chat_model`, else the one the environment names."""
    with _chat_lock:
        if "model" not in _chat:
            _chat["model"] = ChatModel.from_env()
        return _chat["model"]


WORDING_PROMPT = (
    "You are the support agent of a hotel booking platform. Rewrite the decision below as one "
    "or two friendly sentences to the guest, answering their question. Keep its meaning "
    "exactly: if it promises a full refund, say 'full refund'; if it does not, do not mention "
    "refunds at all. Reply with the sentences only."
)


def _word(model: ChatModel, question: str, decision: str) -> str:
    """The model's wording of ``decision``, traced as an llm run."""
    messages = [
        {"role": "system", "content": WORDING_PROMPT},
        {"role": "user", "content": f"Guest's question: {question}\nDecision: {decision}"},
    ]
    with goldloop.trace("word-reply", kind="llm", inputs={"messages": messages}) as run:
        run.set_model(model.model, provider="openai-compatible")
        headers = {"authorization": f"Bearer {model.api_key}"} if model.api_key else {}
        response = httpx.post(
            f"{model.base_url}/chat/completions",
            json={"model": model.model, "messages": messages, "temperature": 0, "max_tokens": 200},
            headers=headers,
            timeout=model.timeout_s,
        )
        response.raise_for_status()
        body = response.json()
        content = str(body["choices"][0]["message"]["content"]).strip()
        usage = body.get("usage") or {}
        run.set_usage(
            input_tokens=usage.get("prompt_tokens"), output_tokens=usage.get("completion_tokens")
        )
        run.set_output({"messages": [{"role": "assistant", "content": content}]})
    return content


def _is_cancel(question: str) -> bool:
    q = question.lower()
    return "cancel" in q or "refund" in q


def _decision(question: str, booking: dict[str, Any], refundable: bool) -> str:
    if "breakfast" in question.lower():
        return "Breakfast is served from 7 to 10:30 and can be added at the desk."
    if not _is_cancel(question):
        return f"I can move your dates at {booking['hotel']} free of charge."
    if refundable:
        return "Good news: you can cancel free of charge and get a full refund."
    return "Cancelling will not return the payment, but I can move your dates for free."


def _head(booking: dict[str, Any]) -> str:
    rate = booking["rate"]
    return f"Hello {booking['guest']}, your rate is {rate['name']}: {rate['terms']}."


def _template_reply(question: str, booking: dict[str, Any], refundable: bool) -> str:
    return f"{_head(booking)} {_decision(question, booking, refundable)}"


def _reply(question: str, booking: dict[str, Any], refundable: bool) -> str:
    """The agent's answer: the template, or the model's wording of the same decision."""
    model = chat_model()
    if model is None:
        return _template_reply(question, booking, refundable)
    return f"{_head(booking)} {_word(model, question, _decision(question, booking, refundable))}"


def refund_promise_matches(
    outputs: dict[str, Any], reference_outputs: dict[str, Any]
) -> dict[str, Any]:
    """The demo gate's "correct" check when a model words the replies: the answer promises a
    full refund exactly when the reference answer does (exact match cannot hold then)."""
    promised = "full refund" in str(outputs.get("answer", "")).lower()
    expected = "full refund" in str(reference_outputs.get("answer", "")).lower()
    return {"key": "correct", "score": 1.0 if promised == expected else 0.0}


@goldloop.traced(kind="agent", name="support-agent")
def support_agent_v1(question: str, booking_id: str) -> dict[str, str]:
    """The agent in production: refundability guessed from the rate's name (the bug)."""
    booking = lookup_booking(booking_id)
    if not booking["found"]:
        return {"answer": "I could not find that booking; could you check the reference?"}
    refundable = "non-refundable" not in booking["rate"]["name"].lower()
    return {"answer": _reply(question, booking, refundable)}


@goldloop.traced(kind="agent", name="support-agent")
def support_agent_v2(question: str, booking_id: str) -> dict[str, str]:
    """The fix: refundability from the rate's own flag."""
    booking = lookup_booking(booking_id)
    if not booking["found"]:
        return {"answer": "I could not find that booking; could you check the reference?"}
    return {"answer": _reply(question, booking, bool(booking["rate"]["refundable"]))}


@dataclass(frozen=True)
class GuestRequest:
    question: str
    booking_id: str

    def inputs(self) -> dict[str, str]:
        return {"question": self.question, "booking_id": self.booking_id}


def guest_requests(seed: int, count: int = 60) -> list[GuestRequest]:
    """Live traffic: every fifth request is a Summer Deal guest asking to cancel (the case v1
    gets wrong); the others are seeded picks of every other kind of question and booking."""
    rng = random.Random(seed)
    summer = sorted(b for b, v in BOOKINGS.items() if v["rate"] == "SUMMER")
    others = sorted(b for b, v in BOOKINGS.items() if v["rate"] != "SUMMER")
    out = []
    for i in range(count):
        if i % 5 == 2:
            out.append(GuestRequest(rng.choice(CANCEL_QUESTIONS), rng.choice(summer)))
        elif rng.random() < 0.5:
            out.append(GuestRequest(rng.choice(CANCEL_QUESTIONS), rng.choice(others)))
        else:
            booking = rng.choice(sorted(BOOKINGS))
            out.append(GuestRequest(rng.choice(OTHER_QUESTIONS), booking))
    return out


def golden_seed() -> list[dict[str, Any]]:
    """The golden dataset before the incident: the cases someone thought of. No Summer Deal
    cancellation, which is how v1 passed its gate."""
    cases = [
        ("Can I cancel and get my money back?", "B-1001"),
        ("Can I cancel and get my money back?", "B-1002"),
        ("Can I move my stay to next month?", "B-1003"),
        ("Is breakfast included?", "B-1005"),
    ]
    out = []
    for question, booking_id in cases:
        booking = find_booking(booking_id)
        answer = _template_reply(question, booking, bool(booking["rate"]["refundable"]))
        out.append(
            {
                "inputs": {"question": question, "booking_id": booking_id},
                "outputs": {"answer": answer},
                "metadata": {"source": "written by the support team"},
            }
        )
    return out


def corrected_answer(inputs: dict[str, str]) -> dict[str, str]:
    """What a support lead writes as the correction of a wrong answer."""
    booking = find_booking(inputs["booking_id"])
    refundable = bool(booking["rate"]["refundable"])
    return {"answer": _template_reply(inputs["question"], booking, refundable)}
