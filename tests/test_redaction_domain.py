"""The redaction detectors, one by one, with what they must find and what they must leave; the
custom-rule guards; hash mode; JSON walking; and the cost of a scan."""

from __future__ import annotations

import time
import uuid

import pytest

from goldloop.domain.redaction import (
    CUSTOM_WINDOW,
    Counts,
    RedactionError,
    Redactor,
    compile_rule,
    iban_ok,
    luhn_ok,
    parse_config,
)

ALL = Redactor(parse_config({"builtins": "all"}))


def redact(text: str, redactor: Redactor = ALL) -> tuple[str, dict[str, int]]:
    counts = Counts()
    return redactor.redact_text(text, counts), dict(counts.by_detector)


POSITIVE = [
    ("email", "write to bob.smith+tag@example.co.uk today", "write to <EMAIL> today"),
    ("email", "ALICE@Mail.Example.org", "<EMAIL>"),
    ("email", '{"to":"a_b-c@sub.example.io"}', '{"to":"<EMAIL>"}'),
    ("phone", "call +49 30 1234567 now", "call <PHONE> now"),
    ("phone", "call +1 (415) 555-2671.", "call <PHONE>."),
    ("phone", "office (555) 123-4567", "office <PHONE>"),
    ("phone", "cell 555-123-4567, thanks", "cell <PHONE>, thanks"),
    ("phone", "fax 555.123.4567", "fax <PHONE>"),
    ("card", "card 4111 1111 1111 1111 ok", "card <CARD> ok"),
    ("card", "card 4111-1111-1111-1111.", "card <CARD>."),
    ("card", "pan=5555555555554444", "pan=<CARD>"),
    ("card", "amex 3782 822463 10005", "amex <CARD>"),
    ("iban", "IBAN DE89 3704 0044 0532 0130 00 paid", "IBAN <IBAN> paid"),
    ("iban", "GB82WEST12345698765432", "<IBAN>"),
    ("iban", "to FR1420041010050500013M02606.", "to <IBAN>."),
    ("ip", "from 192.168.1.20 via 10.0.0.1", "from <IP> via <IP>"),
    ("ip", "v6 2001:db8::8a2e:370:7334 here", "v6 <IP> here"),
    ("ip", "full 2001:0db8:85a3:0000:0000:8a2e:0370:7334", "full <IP>"),
    ("secret", "key sk-proj-abcdefghijklmnopqrstuvwxyz123456", "key <SECRET>"),
    ("secret", "sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123", "<SECRET>"),
    ("secret", "token ghp_abcdefghijklmnopqrstuvwxyz0123456789", "token <SECRET>"),
    ("secret", "aws AKIAIOSFODNN7EXAMPLE", "aws <SECRET>"),
    ("secret", "xoxb-123456789012-1234567890123-abcdefghijkl", "<SECRET>"),
    ("secret", "Auth: Bearer abcDEF123ghiJKL456mnoPQR789", "Auth: Bearer <SECRET>"),
    (
        "secret",
        "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."
        "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        "jwt <SECRET>",
    ),
    (
        "secret",
        "-----BEGIN RSA PRIVATE KEY-----\n"
        "MIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu"
        "\n-----END RSA PRIVATE KEY-----",
        "<SECRET>",
    ),
    ("secret", "key gl_abcdefghijklmnopqrstuvwxyzABCDEF0123456", "key <SECRET>"),
]


@pytest.mark.parametrize(("detector", "text", "expected"), POSITIVE)
def test_each_detector_finds_its_values(detector: str, text: str, expected: str) -> None:
    out, counts = redact(text)
    assert out == expected
    assert counts == {detector: expected.count("<")}
    alone = Redactor(parse_config({"builtins": [detector]}))
    assert redact(text, alone)[0] == expected
    others = [d for d in ("email", "phone", "card", "iban", "ip", "secret") if d != detector]
    assert redact(text, Redactor(parse_config({"builtins": others})))[0] == text


NEGATIVE = [
    "card 4111 1111 1111 1112 fails the Luhn check",
    "order 4111111111111112 and 1234567890123",  # Luhn-invalid digit runs
    "timestamp 1733580000000000 and 1733580000",  # epoch microseconds and seconds
    "0000 0000 0000 0000",  # Luhn-valid but one repeated digit
    "iban DE89 3704 0044 0532 0130 01 has a wrong check",
    "GB82WEST12345698765431",
    "run 123e4567-e89b-12d3-a456-426614174000 in trace 4bf92f3577b34da6a3ce929d0e0e4736",
    "span 00f067aa0ba902b7 parent 53995c3f42cd8ad8",
    "ids 41111111-1111-1111-1111-111111111111 41111111-1111-1111-1111-a11111111111",
    "sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "version 1.2.3 on 2024-01-15T10:20:30.123456Z at 12:30:45",
    "999.1.1.1 is no address, nor 1.2.3.4.5",
    "mac 00:1A:2B:3C:4D:5E and std::vector::size",
    "order 1234567890 and 555-1234 and 12 345 678",
    "Bearer aaaaaaaaaaaaaaaaaaaaaaaaaaaa",  # low entropy: a placeholder, not a token
    "Bearer 123e4567-e89b-12d3-a456-426614174000",
    "ask-me-anything and task-force",
    "user@localhost and @mention and a@b",
    "price +5 and 3+4=7",
    "the skeleton key sk-short is fine",
]


@pytest.mark.parametrize("text", NEGATIVE)
def test_ordinary_text_and_ids_are_left_alone(text: str) -> None:
    assert redact(text) == (text, {})


def test_random_uuids_are_never_redacted() -> None:
    ids = " ".join(str(uuid.uuid4()) for _ in range(2000))
    assert redact(ids) == (ids, {})
    hexes = " ".join(uuid.uuid4().hex for _ in range(2000))
    assert redact(hexes) == (hexes, {})


def test_luhn_and_mod97() -> None:
    assert luhn_ok("4111111111111111")
    assert not luhn_ok("4111111111111112")
    assert iban_ok("DE89370400440532013000")
    assert not iban_ok("DE89370400440532013001")
    assert not iban_ok("DE8937")


def test_hash_mode_is_keyed_stable_and_joinable() -> None:
    config = parse_config({"builtins": ["email", "card"], "mode": "hash"})
    one = Redactor(config, hash_key=b"k1")
    a, _ = redact("from Bob@Example.com and bob@example.com", one)
    tokens = a.replace("from ", "").split(" and ")
    assert tokens[0] == tokens[1]  # normalized: the same address, the same hash
    assert tokens[0].startswith("<EMAIL:")
    assert len(tokens[0]) == len("<EMAIL:12345678>")
    other, _ = redact("bob@example.com", Redactor(config, hash_key=b"k2"))
    assert other != tokens[0]
    c1, _ = redact("4111 1111 1111 1111", one)
    c2, _ = redact("4111111111111111", one)
    assert c1 == c2 != "<CARD>"
    with pytest.raises(RedactionError):
        Redactor(config)  # hash mode without a key


def test_custom_rules_apply_after_the_builtins_with_their_placeholder() -> None:
    redactor = Redactor(
        parse_config(
            {
                "builtins": ["email"],
                "rules": [
                    {"name": "ticket", "pattern": r"TICKET-\d{4,}"},
                    {"name": "employee", "pattern": r"\bE\d{6}\b", "placeholder": "[staff]"},
                ],
            }
        )
    )
    out, counts = redact("TICKET-12345 by E123456 (e@x.org)", redactor)
    assert out == "<TICKET> by [staff] (<EMAIL>)"
    assert counts == {"ticket": 1, "employee": 1, "email": 1}
    long = ("x " * CUSTOM_WINDOW) + "TICKET-9999 " + ("y " * CUSTOM_WINDOW)
    out, counts = redact(long, redactor)
    assert "TICKET-9999" not in out
    assert counts == {"ticket": 1}


@pytest.mark.parametrize(
    ("rules", "problem"),
    [
        ([{"name": "bad", "pattern": "(unclosed"}], "invalid regular expression"),
        ([{"name": "slow", "pattern": "(a+)+b"}], "nested unbounded repetition"),
        ([{"name": "slow", "pattern": "(a|ab)*c"}], "alternation"),
        ([{"name": "back", "pattern": r"(a)\1"}], "back-references"),
        ([{"name": "empty", "pattern": "x*"}], "empty string"),
        ([{"name": "long", "pattern": "a" * 501}], "longer than"),
        ([{"name": "Upper", "pattern": "a"}], "lower-case"),
        ([{"name": "email", "pattern": "a"}], "used twice"),
        ([{"name": "a", "pattern": "a"}, {"name": "a", "pattern": "b"}], "used twice"),
        ([{"name": "a", "pattern": "a", "extra": 1}], "unknown field"),
        ([{"name": "a", "pattern": "a\x00"}], "NUL"),
        ([{"name": "a", "pattern": "a", "placeholder": "<\x00>"}], "NUL"),
    ],
)
def test_custom_rules_are_checked(rules: list[dict[str, object]], problem: str) -> None:
    with pytest.raises(RedactionError) as refused:
        parse_config({"rules": rules})
    assert problem in str(refused.value)
    assert refused.value.field.startswith("rules[")


def test_a_polynomially_slow_pattern_is_refused_by_the_probe() -> None:
    started = time.perf_counter()
    with pytest.raises(RedactionError) as refused:
        compile_rule(r".*.*.*=")
    assert "ms on a" in str(refused.value)
    assert time.perf_counter() - started < 5  # the probes grow: the check stops early
    compile_rule(r"(?>foo|bar)+\d")  # atomic groups may repeat an alternation


def test_config_errors_name_the_field() -> None:
    for doc, where in [
        ({"builtins": ["email", "ssn"]}, "builtins"),
        ({"mode": "scramble"}, "mode"),
        ({"rules": "x"}, "rules"),
        ({"colour": 1}, "colour"),
        ([], ""),
    ]:
        with pytest.raises(RedactionError) as refused:
            parse_config(doc)
        assert refused.value.field == where


def test_json_values_are_walked_and_untouched_containers_kept() -> None:
    value = {
        "messages": [{"role": "user", "content": "I am bob@example.com"}],
        "n": 3,
        "ok": True,
        "ids": ["123e4567-e89b-12d3-a456-426614174000"],
        "nested": {"deep": [["call +44 20 7946 0958"]]},
    }
    counts = Counts()
    out = ALL.redact(value, counts)
    assert out["messages"][0]["content"] == "I am <EMAIL>"
    assert out["nested"]["deep"][0][0] == "call <PHONE>"
    assert out["ids"] is value["ids"]
    assert out["n"] == 3
    assert out["ok"] is True
    assert value["messages"][0]["content"] == "I am bob@example.com"  # the input is not changed
    assert dict(counts.by_detector) == {"email": 1, "phone": 1}


def test_scans_are_linear_on_hostile_strings() -> None:
    for unit in ("a", "1", "1 ", "1-", "1.", "a@", "a.a", "+1 ", "a:", "A1", "sk-", "Bearer "):
        text = unit * (200_000 // len(unit))
        started = time.perf_counter()
        redact(text)
        assert time.perf_counter() - started < 2.0, unit
