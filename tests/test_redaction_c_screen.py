"""The C pre-screen (goldloop._redaction_scan.screen) beside the Python one
(goldloop.domain.redaction._screen_py) on the same seeded strings: the C answer may be wider,
never narrower. And the redactor is held to the reference with either screen."""

from __future__ import annotations

import copy
import os
import random
import string
import tracemalloc

import pytest

from goldloop.domain import redaction
from goldloop.domain.redaction import Counts, Redactor, parse_config
from test_redaction_screens import CONFIGS, VALUES, random_text, reference

IN_CI = os.environ.get("CI", "").lower() == "true"
c_screen = redaction.c_screen
needs_c = pytest.mark.skipif(c_screen is None, reason="goldloop._redaction_scan was not built")
WANT_ALL = (
    redaction.SCREEN_SECRET
    | redaction.SCREEN_EMAIL
    | redaction.SCREEN_IP6
    | redaction.SCREEN_NUMERIC
)


def test_the_c_screen_is_built_where_ci_runs() -> None:
    if c_screen is None:
        message = "goldloop._redaction_scan was not built (no C compiler at install?)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    assert redaction.screen is c_screen  # and the redactor uses it


@needs_c
def test_the_flag_values_are_the_extensions() -> None:
    from goldloop import _redaction_scan

    assert _redaction_scan.SECRET == redaction.SCREEN_SECRET
    assert _redaction_scan.EMAIL == redaction.SCREEN_EMAIL
    assert _redaction_scan.IP6 == redaction.SCREEN_IP6
    assert _redaction_scan.NUMERIC == redaction.SCREEN_NUMERIC


def _covered(inner: list[tuple[int, int]], outer: list[tuple[int, int]]) -> bool:
    """Every window of ``inner`` lies inside one window of ``outer``."""
    return all(any(lo <= a and b <= hi for lo, hi in outer) for a, b in inner)


def _edge_texts(rng: random.Random) -> list[str]:
    """Forms at both ends of a string, in each storage width, and past the C stack buffer."""
    out = []
    for make in VALUES:
        value = make(rng)
        out += [value, f"x{value}", f"{value}x", f"é{value}", f"\U0001f600 {value} \u0663"]
    digits = "".join(rng.choice("0123456789 .-()+:@AZ") for _ in range(rng.randint(1, 60)))
    out += [digits, digits * 100]  # 100x: longer than 4,096 characters
    return out


@needs_c
def test_the_c_screen_is_never_narrower_than_the_python_one() -> None:
    assert c_screen is not None
    rng = random.Random("c screen beside the python screen")
    windows = flags = secrets = addresses = 0
    for _ in range(3000):
        for text in [random_text(rng), *_edge_texts(rng)]:
            for want in range(16):
                py_flags, py_windows, py_secrets, py_ip6 = redaction._screen_py(text, want)
                c_flags, c_windows, c_secrets, c_ip6 = c_screen(text, want)
                assert c_flags & py_flags == py_flags, (text, want)
                assert c_flags & ~want == 0, (text, want)
                assert _covered(py_windows, c_windows), (text, want, py_windows, c_windows)
                assert _covered(py_secrets, c_secrets), (text, want, py_secrets, c_secrets)
                assert _covered(py_ip6, c_ip6), (text, want, py_ip6, c_ip6)
                if not want & redaction.SCREEN_NUMERIC:
                    assert c_windows == [], (text, want)
                if not want & redaction.SCREEN_SECRET:
                    assert c_secrets == [], (text, want)
                if not want & redaction.SCREEN_IP6:
                    assert c_ip6 == [], (text, want)
            # and straight from the patterns: every secret, every IPv6 address (a match that
            # passes the detector's check) lies inside a window
            _, _, c_secrets, c_ip6 = c_screen(text, WANT_ALL)
            matches = [m.span() for m in redaction._SECRET.finditer(text)]
            assert _covered(matches, c_secrets), (text, matches, c_secrets)
            secrets += len(matches)
            ip6s = [
                m.span()
                for m in redaction._IP6.finditer(text)
                if redaction._check("ip6", m.group()) is not None
            ]
            assert _covered(ip6s, c_ip6), (text, ip6s, c_ip6)
            addresses += len(ip6s)
            flags += bool(redaction._screen_py(text, WANT_ALL)[0])
            windows += bool(redaction._screen_py(text, WANT_ALL)[1])
    assert flags > 5000  # the strings did give the screens something to find
    assert windows > 5000
    assert secrets > 1000
    assert addresses > 300


@needs_c
@pytest.mark.parametrize("text", ["", "a", "-" * 4, "-" * 5, "::", ":" * 6, ":" * 7, "@"])
def test_the_c_screen_on_tiny_strings(text: str) -> None:
    assert c_screen is not None
    assert c_screen(text, WANT_ALL) == redaction._screen_py(text, WANT_ALL)


def test_the_c_screen_refuses_what_is_not_a_string() -> None:
    if c_screen is None:
        pytest.skip("goldloop._redaction_scan was not built")
    with pytest.raises(TypeError):
        c_screen(b"bytes", WANT_ALL)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        c_screen("text")  # type: ignore[call-arg]


@pytest.mark.parametrize("builtins", CONFIGS, ids=lambda b: "+".join(b))
@pytest.mark.parametrize("which", ["python", "c"])
def test_the_redactor_matches_the_reference_with_either_screen(
    builtins: list[str], which: str
) -> None:
    if which == "c" and c_screen is None:
        pytest.skip("goldloop._redaction_scan was not built")
    rng = random.Random(f"either screen {builtins}")
    fast = Redactor(parse_config({"builtins": builtins}))
    fast._screen = redaction._screen_py if which == "python" else c_screen  # type: ignore[assignment]
    digits = string.digits + " -."
    for _ in range(800):
        text = random_text(rng)
        if rng.random() < 0.2:  # digit-rich: many windows, merged
            text += " " + "".join(rng.choice(digits) for _ in range(rng.randint(10, 300)))
        got, want = Counts(), Counts()
        assert fast.redact_text(text, got) == reference(fast, text, want), text
        assert got.by_detector == want.by_detector, text


def _json(rng: random.Random, depth: int = 0) -> object:
    """A random JSON value: texts with values in them, short strings, numbers, nesting."""
    roll = rng.random()
    if depth < 4 and roll < 0.25:
        return {f"k{i}": _json(rng, depth + 1) for i in range(rng.randint(0, 5))}
    if depth < 4 and roll < 0.45:
        return [_json(rng, depth + 1) for _ in range(rng.randint(0, 5))]
    if roll < 0.7:
        return random_text(rng)
    if roll < 0.85:
        return rng.choice(["user", "gpt-4o-mini", "a@b.cd", "", "x" * 6, "10.0.0.1"])
    return rng.choice([None, True, 4111111111111111, 2.5, -1])


@needs_c
@pytest.mark.parametrize("builtins", CONFIGS, ids=lambda b: "+".join(b))
def test_the_c_walk_gives_what_the_python_walk_gives(builtins: list[str]) -> None:
    rng = random.Random(f"c walk {builtins}")
    with_c = Redactor(parse_config({"builtins": builtins}))
    python = Redactor(parse_config({"builtins": builtins}))
    python._walk = None
    python._screen = redaction._screen_py
    assert with_c._walk is not None
    changed = 0
    for _ in range(400):
        value = _json(rng)
        before = copy.deepcopy(value)
        got, want = Counts(), Counts()
        out = with_c.redact(value, got)
        expected = python.redact(value, want)
        assert out == expected, value
        assert got.by_detector == want.by_detector, value
        assert (out is value) == (expected is value), value  # unchanged values are not copied
        assert value == before  # the input is left as it was
        changed += out is not value
    assert changed > 50


@needs_c
def test_the_c_walk_keeps_subclasses_and_keys_as_the_python_walk_does() -> None:
    class Text(str):
        pass

    class Doc(dict):  # type: ignore[type-arg]
        pass

    value = Doc({"Text key 4111111111111111": Text("card 4111111111111111"), "n": [Text("x")]})
    python = Redactor(parse_config({"builtins": "all"}))
    python._walk = None
    for top in (value, Text("card 4111 1111 1111 1111"), {"a": value}, ["mail a@b.cd", value]):
        assert ALL.redact(top, Counts()) == python.redact(top, Counts())
    deep: list[object] = ["a@b.cd is here"]
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(RecursionError):  # as the Python walk: never a crash of the process
        ALL.redact(deep, Counts())


ALL = Redactor(parse_config({"builtins": "all"}))


@needs_c
def test_the_c_screen_and_walk_keep_no_memory() -> None:
    assert c_screen is not None
    rng = random.Random("no leak")
    texts = [random_text(rng) for _ in range(300)]
    value = {"texts": texts, "nested": [{"t": t} for t in texts[:50]]}

    def round_of_calls() -> None:
        for text in texts:
            c_screen(text, WANT_ALL)
        ALL.redact(value, Counts())

    tracemalloc.start()
    try:
        round_of_calls()
        first, _ = tracemalloc.get_traced_memory()
        for _ in range(20):
            round_of_calls()
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # a round makes ~2,000 window lists and tuples; one kept per call would be >50 KB a round
    assert after - first < 20_000
