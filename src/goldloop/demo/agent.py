"""A hotel-booking support agent without an LLM: deterministic answers from a small booking
table, traced with the Goldloop SDK.

Version 1 guesses whether a rate is refundable from the rate's *name*: "Saver (non-refundable)"
says so, the promotional "Summer Deal" does not, so v1 tells Summer Deal guests they can get a
full refund. Version 2 reads the rate's ``refundable`` flag.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

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


def _is_cancel(question: str) -> bool:
    q = question.lower()
    return "cancel" in q or "refund" in q


def _reply(question: str, booking: dict[str, Any], refundable: bool) -> str:
    rate = booking["rate"]
    head = f"Hello {booking['guest']}, your rate is {rate['name']}: {rate['terms']}."
    if "breakfast" in question.lower():
        return f"{head} Breakfast is served from 7 to 10:30 and can be added at the desk."
    if not _is_cancel(question):
        return f"{head} I can move your dates at {booking['hotel']} free of charge."
    if refundable:
        return f"{head} Good news: you can cancel free of charge and get a full refund."
    return f"{head} Cancelling will not return the payment, but I can move your dates for free."


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
        answer = _reply(question, booking, bool(booking["rate"]["refundable"]))
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
    return {"answer": _reply(inputs["question"], booking, bool(booking["rate"]["refundable"]))}
