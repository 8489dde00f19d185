"""The built-in detectors' pre-screens (the cheap checks that decide which detectors run on a
string, and where) must never cost a value: the redactor is compared with a straightforward
one that runs every detector over every whole string, on seeded random strings with values
embedded in every form, at every position, next to every kind of neighbour."""

from __future__ import annotations

import random
import string

import pytest

from goldloop.domain import redaction
from goldloop.domain.redaction import BUILTINS, Counts, Redactor, parse_config


def reference(r: Redactor, text: str, counts: Counts) -> str:
    """What ``r`` must give for ``text`` with its built-ins: every detector's pattern run over
    the whole string, no pre-screen, the same checks and the same order (earlier wins)."""
    enabled = set(r.config.builtins)
    found: list[tuple[int, int, str]] = []
    if "secret" in enabled:
        for m in redaction._SECRET.finditer(text):
            r._take(found, m.start(), m.end(), "secret", m.group(), counts)
    if "email" in enabled:
        r._emails(text, found, counts)
    if "ip" in enabled:
        for m in redaction._IP6.finditer(text):
            r._take(found, m.start(), m.end(), "ip6", m.group(), counts)
    for m in redaction._NUMERIC.finditer(text):
        detector = redaction._NUMERIC_KINDS[m.lastgroup or ""]
        if detector in enabled:
            kind = "ip4" if detector == "ip" else detector
            r._take(found, m.start(), m.end(), kind, m.group(), counts)
    found.sort()
    out, at = [], 0
    for start, end, replacement in found:
        out += [text[at:start], replacement]
        at = end
    return "".join([*out, text[at:]])


# --- values of every kind, in every written form ---------------------------------------------

ALNUM = string.ascii_letters + string.digits


def _chars(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def _luhn_number(rng: random.Random, n: int) -> str:
    body = [rng.randrange(10) for _ in range(n - 1)]
    total = 0
    for i, d in enumerate(reversed(body)):
        if i % 2 == 0:
            d *= 2
            d = d - 9 if d > 9 else d
        total += d
    return "".join(map(str, body)) + str((10 - total % 10) % 10)


def _grouped(rng: random.Random, digits: str, sizes: list[int]) -> str:
    parts, at = [], 0
    for size in sizes:
        parts.append(digits[at : at + size])
        at += size
    out = parts[0]
    for part in parts[1:]:
        out += rng.choice(" -") + part  # mixed separators too
    return out


def card(rng: random.Random) -> str:
    form = rng.randrange(4)
    if form == 0:
        return _luhn_number(rng, rng.randint(13, 19))
    if form == 1:
        return _grouped(rng, _luhn_number(rng, 16), [4, 4, 4, 4])
    if form == 2:
        return _grouped(rng, _luhn_number(rng, 15), [4, 6, 5])
    n = rng.randint(17, 19)
    return _grouped(rng, _luhn_number(rng, n), [4, 4, 4, 4, n - 16])


def iban(rng: random.Random) -> str:
    country = rng.choice(["DE", "GB", "FR", "NL", "MT"])
    if country in ("GB", "NL", "MT"):
        bban = _chars(rng, string.ascii_uppercase, 4) + _chars(rng, string.digits, 14)
    else:
        bban = _chars(rng, string.digits + string.ascii_uppercase[:3], rng.randint(12, 26))
    moved = bban + country + "00"
    check = 98 - int("".join(str(int(ch, 36)) for ch in moved)) % 97
    compact = f"{country}{check:02d}{bban}"
    if rng.random() < 0.5:
        return compact
    return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))


def phone(rng: random.Random) -> str:
    d = string.digits
    return rng.choice(
        [
            f"+{_chars(rng, d, 2)} {_chars(rng, d, 2)} {_chars(rng, d, 4)} {_chars(rng, d, 4)}",
            f"+{_chars(rng, d, rng.randint(8, 15))}",
            f"+1 ({_chars(rng, d, 3)}) {_chars(rng, d, 3)}-{_chars(rng, d, 4)}",
            f"({_chars(rng, d, 3)}) {_chars(rng, d, 3)}-{_chars(rng, d, 4)}",
            f"{_chars(rng, d, 3)}-{_chars(rng, d, 3)}-{_chars(rng, d, 4)}",
            f"{_chars(rng, d, 3)}.{_chars(rng, d, 3)}.{_chars(rng, d, 4)}",
            "+\u0664\u0664 \u0662\u0660 \u0667\u0669\u0664\u0666 \u0665\u0668\u0662\u0666",
        ]
    )


def ip(rng: random.Random) -> str:
    if rng.random() < 0.6:
        return ".".join(str(rng.randrange(256)) for _ in range(4))
    groups = [f"{rng.randrange(65536):x}" for _ in range(8)]
    if rng.random() < 0.5:
        return ":".join(groups)
    cut = rng.randrange(1, 7)
    return ":".join(groups[:cut]) + "::" + ":".join(groups[cut + 1 :])


def email(rng: random.Random) -> str:
    local = _chars(rng, string.ascii_lowercase + "._+-", rng.randint(1, 12)).strip(".") or "a"
    return f"{local}@{_chars(rng, string.ascii_lowercase, 5)}.{rng.choice(['com', 'co.uk', 'io'])}"


def secret(rng: random.Random) -> str:
    low = string.ascii_lowercase
    token = ALNUM + "_-"
    return rng.choice(
        [
            f"sk-{_chars(rng, ALNUM, 24)}",
            f"sk-proj-{_chars(rng, ALNUM, 30)}",
            f"gh{rng.choice('pousr')}_{_chars(rng, ALNUM, 36)}",
            f"github_pat_{_chars(rng, ALNUM, 30)}",
            f"{rng.choice(['AKIA', 'ASIA'])}{_chars(rng, string.ascii_uppercase + '0123', 16)}",
            f"xox{rng.choice('abprs')}-{_chars(rng, low + '0123456789-', rng.randint(10, 20))}",
            f"AIza{_chars(rng, token, 35)}",
            f"glpat-{_chars(rng, low, rng.randint(20, 26))}",  # no '_', no capitals
            f"gl_{_chars(rng, token, 24)}",
            f"eyJ{_chars(rng, ALNUM, 10)}.eyJ{_chars(rng, ALNUM, 12)}.{_chars(rng, token, 20)}",
            f"-----BEGIN PRIVATE KEY-----\n{_chars(rng, ALNUM, 40)}\n-----END PRIVATE KEY-----",
            f"{rng.choice('Bb')}earer {_chars(rng, ALNUM + '._~+/=-', rng.randint(20, 40))}",
        ]
    )


VALUES = [card, iban, phone, ip, email, secret]

FILLER = [
    "the",
    "order",
    "café",
    "naïve",
    "I",
    "Refund",
    "INV-",
    "ZX",
    "v2.6",
    "tier-2",
    "follow-up",
    "std::vector",
    "8:00",
    "snake_case_name",
    "test.instrumentation.name",
    "KEY",
    "AKIA",
    "Bearer",
    "eyJ",
    "xox",
    "sk-",
    "glpat-",
    "-----",
    "@",
    "+",
    "(",
    ")",
    "\u0663",  # an Arabic-Indic digit: \\d in the patterns
    "\uff14",  # a full-width digit
    "2026-10-18",
    "12:30:45",
    "1.2.3",
    "\U0001f600",
]
JOINERS = ["", " ", " ", " ", ", ", "\n", "\t", "(", '"', "é", "_", "-", ":", ".", "/", "="]


def number(rng: random.Random) -> str:
    return _chars(rng, string.digits, rng.randint(1, 20))


def random_text(rng: random.Random) -> str:
    parts: list[str] = []
    for _ in range(rng.randint(1, 25)):
        roll = rng.random()
        if roll < 0.3:
            parts.append(rng.choice(VALUES)(rng))
        elif roll < 0.45:
            parts.append(number(rng))
        elif roll < 0.5:
            parts.append(_chars(rng, ALNUM + "_-.", rng.randint(1, 30)))
        else:
            parts.append(rng.choice(FILLER))
    text = parts[0]
    for part in parts[1:]:
        text += rng.choice(JOINERS) + part
    if rng.random() < 0.1:  # long text: values far from both ends
        prose = " ".join(rng.choice(FILLER) for _ in range(rng.randint(200, 600)))
        text = prose + " " + text + " " + prose
    return text


CONFIGS = [
    list(BUILTINS),
    ["card"],
    ["phone"],
    ["iban"],
    ["ip"],
    ["email", "secret"],
    ["secret"],
    ["card", "phone", "iban"],
]


@pytest.mark.parametrize("builtins", CONFIGS, ids=lambda b: "+".join(b))
def test_the_prescreened_redactor_matches_the_reference_on_random_text(
    builtins: list[str],
) -> None:
    rng = random.Random(f"redaction screens {builtins}")
    fast = Redactor(parse_config({"builtins": builtins}))
    found = 0
    for _ in range(1500):
        text = random_text(rng)
        got, want = Counts(), Counts()
        assert fast.redact_text(text, got) == reference(fast, text, want), text
        assert got.by_detector == want.by_detector, text
        found += want.total()
    assert found > 300  # the strings did hold values for these detectors


@pytest.mark.parametrize("make", VALUES, ids=lambda f: f.__name__)
def test_each_kind_is_found_at_every_position(make: object) -> None:
    rng = random.Random(f"positions {make}")
    assert callable(make)
    prose = "Refund policy v2.6 allows returns within 14 days; order 88123 on 2026-10-18. " * 40
    for _ in range(60):
        value = make(rng)
        want = reference(ALL, value, Counts())
        if want == value:
            continue  # e.g. a random card of one repeated digit
        for text in (
            value,  # the whole string
            f"{value} and more",  # at the start
            f"see: {value}",  # at the end
            f"{prose}{value} {prose}",  # inside long text
            f"{prose} {value}",  # the last characters of long text
            f"é {value} ü",  # among non-ASCII characters
        ):
            assert redact(text) == reference(ALL, text, Counts()), text
            assert value not in redact(text)


ALL = Redactor(parse_config({"builtins": "all"}))


def redact(text: str) -> str:
    return ALL.redact_text(text, Counts())


def test_known_misses_of_earlier_prescreens_are_found() -> None:
    # an all-lower-case GitLab token: neither '_' nor four capitals
    assert redact("token glpat-abcdefghijklmnopqrstuv here") == "token <SECRET> here"
    # a card written with mixed separators
    assert redact("paid with 4111 1111-1111 1111 today") == "paid with <CARD> today"


def test_nested_values_are_found_and_keys_are_kept() -> None:
    value = {
        "bob@example.com": "the key is an email address and stays",
        "list": [["a", ["deep: call +44 20 7946 0958"]], {"ip": "from 10.0.0.1"}],
        "n": 4111111111111111,  # a number, not text: kept
        "flag": False,
        "card": "4111111111111111",
    }
    counts = Counts()
    out = ALL.redact(value, counts)
    assert list(out) == list(value)
    assert out["bob@example.com"] == value["bob@example.com"]
    assert out["list"][0][1] == ["deep: call <PHONE>"]
    assert out["list"][1] == {"ip": "from <IP>"}
    assert out["n"] == 4111111111111111
    assert out["flag"] is False
    assert out["card"] == "<CARD>"
    assert dict(counts.by_detector) == {"phone": 1, "ip": 1, "card": 1}
