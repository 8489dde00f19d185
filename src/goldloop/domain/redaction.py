"""PII redaction: built-in detectors and custom regex rules applied to JSON values. Pure.

A ``Redactor`` is built once from a ``RedactionConfig`` (all patterns compiled then) and applied
to every string inside a JSON value: each match is replaced by a typed placeholder (``<EMAIL>``)
or, in ``hash`` mode, by a placeholder carrying a keyed hash of the value (``<EMAIL:3f9a12bc>``:
the first 8 hex digits of HMAC-SHA256 with the server's key), so equal values stay joinable and
the value cannot be read back without the key. Dictionary keys are not rewritten.

Built-in detectors (``BUILTINS``), all conservative so that ordinary ids are left alone:

- ``email``: ``local@domain.tld``.
- ``phone``: international numbers written with ``+`` (8 to 15 digits, E.164) and North American
  numbers written with separators (``(555) 123-4567``, ``555-123-4567``); a bare digit run is
  never taken for a phone number.
- ``card``: 13 to 19 digits, optionally grouped by spaces or dashes, that pass the Luhn check.
- ``iban``: a country code, two check digits and 11 to 30 letters or digits that pass the
  ISO 13616 mod-97 check.
- ``ip``: IPv4 addresses (each part 0-255) and IPv6 addresses (validated by ``ipaddress``).
- ``secret``: API-key-like secrets by their known shapes (``sk-...``, ``ghp_...``,
  ``github_pat_...``, ``AKIA...``, ``xox?-...``, ``AIza...``, ``glpat-...``, Goldloop's own
  ``gl_...`` keys, JSON Web Tokens, PEM private key blocks) and bearer tokens (``Bearer <token>``
  with 20+ characters of at least 3 bits of entropy per character).

UUIDs (run, trace and example ids) are matched first and always kept as they are, so no
detector ever rewrites part of one.

Cost: every built-in pattern is anchored on a token boundary and linear to scan, and cheap
pre-screens (``_screen_py``: ``_SHAPE``, ``_TOKEN``) decide which of them run on a string, and
where, so that text without a candidate costs little. The C extension ``_redaction_scan``
(built at install when a C compiler is there) does the same screening in one pass over the
characters, several times faster; without it the Python screen is used. Custom rules are admins'
own regexes, each applied after the built-ins. Python's ``re`` has no time limit, so they are
guarded when saved (``compile_rule``): the pattern must compile, be at most
``MAX_PATTERN_CHARS`` long, have no back-references, no nested unbounded repetition (``(a+)+``)
and no unbounded repetition of an alternation (``(a|ab)*``; an atomic group ``(?>a|ab)*`` or a
possessive ``a++`` is allowed), and must finish each probe string (sizes growing to
``CUSTOM_WINDOW`` characters) within ``PROBE_BUDGET_S``, which refuses patterns that are much
slower than linear. When applied, custom rules see each string in windows of ``CUSTOM_WINDOW``
characters (cut at a space where there is one), so a match longer than a window, or across a
window's edge, is not found.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib
import ipaddress
import math
import re
import string
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

# The parser behind ``re`` (public as sre_parse before 3.11, which now warns on import).
_sre_parser: Any = importlib.import_module("re._parser")
_sre_constants: Any = importlib.import_module("re._constants")

BUILTINS = ("email", "phone", "card", "iban", "ip", "secret")
MODES = ("placeholder", "hash")
MAX_RULES = 50
MAX_PATTERN_CHARS = 500
MAX_PLACEHOLDER_CHARS = 60
CUSTOM_WINDOW = 1000
"""Custom rules scan a string in windows of at most this many characters."""
PROBE_BUDGET_S = 0.05
"""A custom pattern must finish every probe string within this time when saved."""
HASH_HEX = 8

_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")
_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"

# The built-in patterns. Each starts or ends only where no word character or dash touches it,
# so none matches inside a UUID (or any longer token), and each is linear to scan.
_SECRET = re.compile(
    r"(?<![\w-])(?:"
    r"sk-(?:[A-Za-z0-9]+-){0,3}[A-Za-z0-9_]{20,}"
    r"|gh[pousr]_[A-Za-z0-9]{36,}"
    r"|github_pat_[A-Za-z0-9_]{22,}"
    r"|(?:AKIA|ASIA)[0-9A-Z]{16}"
    r"|xox[abprs]-[A-Za-z0-9-]{10,}"
    r"|AIza[0-9A-Za-z_-]{35}"
    r"|glpat-[A-Za-z0-9_-]{20,}"
    r"|gl_[A-Za-z0-9_-]{20,}"
    r"|eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"
    r"|-----BEGIN (?:[A-Z]+ )*PRIVATE KEY-----[A-Za-z0-9+/=\s]{0,8000}?"
    r"-----END (?:[A-Z]+ )*PRIVATE KEY-----"
    r"|[Bb]earer[ \t]+[A-Za-z0-9._~+/=-]{20,}"
    r")(?![\w-])"
)
_EMAIL_LOCAL = re.compile(r"[A-Za-z0-9._%+-]{1,64}\Z")
_EMAIL_DOMAIN = re.compile(r"[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){1,8}(?![\w-])")
_EMAIL_BEFORE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.%+-")
_IP6 = re.compile(r"(?<![\w:.-])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:-])")
# IBANs, IPv4 addresses, cards and phone numbers: one pattern, tried only near the places a
# byte-level gate finds (see ``_numeric_windows``).
_NUMERIC = re.compile(
    # one leading character class, so the engine skips in C to the next place one can start;
    # the look-behinds then check what that first character was and what came before it
    r"[A-Z0-9+(](?:"
    r"(?<![\w-][A-Z])(?<=[A-Z])(?P<iban>[A-Z]\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?)"
    r"(?![\w-])"
    r"|(?<![\w+]\+)(?<=\+)(?P<phone>\d{1,3}(?:[ .-]?\(\d{1,4}\))?[ .-]?\d{1,14}"
    r"(?:[ .-]\d{1,14}){0,5})(?![\w-])"
    r"|(?<![\w(]\()(?<=\()(?P<phone_paren>\d{3}\) ?\d{3}[.-]\d{4})(?![\w-]|[.-]\d)"
    r"|(?<![\w.-]\d)(?<=\d)(?:"
    r"(?<![(+]\d)(?P<phone_nanp>\d{2}[.-]\d{3}[.-]\d{4})(?![\w-]|[.-]\d)"
    r"|(?P<ip4>\d{0,2}\.\d{1,3}\.\d{1,3}\.\d{1,3})(?![\w-]|\.\d)"
    r"|(?P<card>\d{12,18}|\d{3}(?:[ -]\d{4}){3}(?:[ -]\d{1,3})?|\d{3}[ -]\d{6}[ -]\d{4,5})"
    r"(?![\w-]|\.\d)"
    r"))"
)
_NUMERIC_KINDS = {
    "iban": "iban",
    "ip4": "ip",
    "card": "card",
    "phone": "phone",
    "phone_paren": "phone",
    "phone_nanp": "phone",
}
_LONGEST_NUMERIC = 64
"""More than the longest text ``_NUMERIC`` can match (an IBAN with spaces: 42 characters)."""


def _table(classes: dict[str, str], other: str | None = None) -> bytes:
    table = bytearray(range(256)) if other is None else bytearray(ord(other) for _ in range(256))
    for chars, to in classes.items():
        for ch in chars:
            table[ord(ch)] = ord(to)
    return bytes(table)


# The pre-screens. Each string is first encoded to ASCII with every other character written as
# one "?" (``encode("ascii", "replace")``: one C pass, and character offsets stay the same), and
# mapped by ``bytes.translate`` (one more C pass) to the two forms below. They decide which
# detectors run and where, and each is a necessary condition of a match, so no value is lost
# (tests/test_redaction_screens.py compares the result with every pattern run on every whole
# string).
_SHAPE = _table({"0123456789?": "0", "ABCDEFGHIJKLMNOPQRSTUVWXYZ": "A"})
"""A string's shape: every digit -> '0', every capital -> 'A', anything else as it is. A
non-ASCII character ('?' after the encoding, as is '?' itself) is taken for a digit, since
``\\d`` matches the digits of every script. Where a number detector can match, the shape holds
one of the patterns below, all beginning with a literal that the regular expression engine
finds in C, so ``_NUMERIC`` runs only in windows around those places."""
_SHAPE_PATTERNS = (
    # (what the shape must hold for the pattern to match: checked first, a cheaper search)
    # cards: 13-19 digits, 4-4-4-4(-1..3) and 4-6-4(5) with a space or dash between groups;
    # North American phone numbers, found by their last four digits
    (
        b"0000",
        re.compile(
            rb"0000(?:0{9}|[ -]0000[ -]0000[ -]0000|[ -]000000[ -]0000|(?<=000[.-]000[.-]0000))"
        ),
    ),
    (b"AA00", re.compile(rb"AA00(?: ?[A0]{4}){2}")),  # an IBAN: country, check digits, 8+ more
    (b"0.0", re.compile(rb"0\.0{1,3}\.0{1,3}\.0")),  # an IPv4 address
)
_PAREN_PHONE = re.compile(rb"\(000\) ?000[.-]0000")
_BEFORE_NUMERIC = 12
"""A number detector's match starts at most this far before where its shape pattern does
(a North American number: 8 characters before its last four digits)."""
_TOKEN = _table({string.ascii_letters + string.digits + "_.~+/=-": "w"}, other=" ")
"""Characters of secret tokens -> 'w', anything else -> ' '. Every built-in secret but a PEM
block is a run of at least ``_SECRET_RUN`` of them: the shortest, ``xoxb-`` and 10 more."""
_SECRET_RUN = b"w" * 15
_TOKEN_RUNS = re.compile(rb"w{15,}")
_HEX_RUNS = re.compile(r"[0-9A-Fa-f:]*:[0-9A-Fa-f:]*")
_SHORTEST = 7
"""No built-in match is shorter (an IPv4 address: 7 characters)."""
_SEPARATORS = re.compile(r"[\s.()-]")
_SECRET_BEARER = re.compile(r"[Bb]earer[ \t]+")
_UUID_RE = re.compile(_UUID)

# What a screen says may match (a bit each; the same values as goldloop._redaction_scan's).
SCREEN_SECRET = 1
SCREEN_EMAIL = 2
SCREEN_IP6 = 4
SCREEN_NUMERIC = 8
"""Asked for: the windows where a number detector may match (they are the answer, not a bit)."""


class RedactionError(ValueError):
    """A redaction configuration that cannot be used; the message says what and where."""

    def __init__(self, message: str, field_name: str) -> None:
        super().__init__(message)
        self.field = field_name


@dataclass(frozen=True)
class CustomRule:
    name: str
    pattern: str
    placeholder: str


@dataclass(frozen=True)
class RedactionConfig:
    """Which built-ins are on, the custom rules, and the mode. Empty: nothing is redacted."""

    builtins: tuple[str, ...] = ()
    rules: tuple[CustomRule, ...] = ()
    mode: str = "placeholder"

    @property
    def active(self) -> bool:
        return bool(self.builtins or self.rules)

    def to_dict(self) -> dict[str, Any]:
        return {
            "builtins": list(self.builtins),
            "rules": [
                {"name": r.name, "pattern": r.pattern, "placeholder": r.placeholder}
                for r in self.rules
            ],
            "mode": self.mode,
        }


def placeholder_for(name: str) -> str:
    return f"<{name.upper()}>"


def parse_config(doc: Any, *, probe: bool = True) -> RedactionConfig:
    """A configuration document (``{"builtins": [...], "rules": [...], "mode": ...}``, or
    ``"builtins": "all"``) checked whole; RedactionError names the first problem. ``probe``:
    time custom patterns on the probe strings (when saved; a stored configuration passed it)."""
    if not isinstance(doc, Mapping):
        raise RedactionError("a redaction configuration must be a JSON object", "")
    unknown = set(doc) - {"builtins", "rules", "mode"}
    if unknown:
        raise RedactionError(f"unknown field(s): {', '.join(sorted(unknown))}", sorted(unknown)[0])
    builtins = parse_builtins(doc.get("builtins", []))
    mode = doc.get("mode", "placeholder")
    if mode not in MODES:
        raise RedactionError(f"mode must be one of {', '.join(MODES)}", "mode")
    raw_rules = doc.get("rules", [])
    if not isinstance(raw_rules, list):
        raise RedactionError("rules must be an array of {name, pattern, placeholder?}", "rules")
    if len(raw_rules) > MAX_RULES:
        raise RedactionError(f"at most {MAX_RULES} custom rules", "rules")
    rules: list[CustomRule] = []
    for i, raw in enumerate(raw_rules):
        rule = _parse_rule(raw, f"rules[{i}]", probe)
        if rule.name in BUILTINS or any(r.name == rule.name for r in rules):
            raise RedactionError(f"rule name {rule.name!r} is used twice", f"rules[{i}].name")
        rules.append(rule)
    return RedactionConfig(builtins=builtins, rules=tuple(rules), mode=mode)


def parse_builtins(value: Any) -> tuple[str, ...]:
    """``"all"``, a comma-separated string, or a list of detector names (in BUILTINS)."""
    if isinstance(value, str):
        value = list(BUILTINS) if value.strip() == "all" else [v for v in value.split(",") if v]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RedactionError('builtins must be "all" or a list of detector names', "builtins")
    names = [v.strip() for v in value]
    for name in names:
        if name not in BUILTINS:
            raise RedactionError(
                f"unknown detector {name!r}; the built-ins are {', '.join(BUILTINS)}", "builtins"
            )
    return tuple(n for n in BUILTINS if n in names)


def _parse_rule(raw: Any, where: str, probe: bool) -> CustomRule:
    if not isinstance(raw, Mapping):
        raise RedactionError("a rule must be an object {name, pattern, placeholder?}", where)
    unknown = set(raw) - {"name", "pattern", "placeholder"}
    if unknown:
        raise RedactionError(f"unknown field(s): {', '.join(sorted(unknown))}", where)
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise RedactionError(
            "name must be 1-40 lower-case letters, digits or _ (starting with a letter)",
            f"{where}.name",
        )
    pattern = raw.get("pattern")
    if not isinstance(pattern, str) or not pattern:
        raise RedactionError("pattern must be a non-empty regular expression", f"{where}.pattern")
    placeholder = raw.get("placeholder") or placeholder_for(name)
    if not isinstance(placeholder, str) or len(placeholder) > MAX_PLACEHOLDER_CHARS:
        raise RedactionError(
            f"placeholder must be a string of at most {MAX_PLACEHOLDER_CHARS} characters",
            f"{where}.placeholder",
        )
    for name_, text in (("pattern", pattern), ("placeholder", placeholder)):
        if "\x00" in text:
            raise RedactionError(f"{name_} must not contain NUL (U+0000)", f"{where}.{name_}")
    compile_rule(pattern, f"{where}.pattern", probe=probe)
    return CustomRule(name, pattern, placeholder)


def compile_rule(pattern: str, where: str = "pattern", *, probe: bool = True) -> re.Pattern[str]:
    """A custom pattern compiled, or RedactionError saying why it is refused (see the module
    docstring: syntax, length, back-references, catastrophic repetition, the probe budget)."""
    if len(pattern) > MAX_PATTERN_CHARS:
        raise RedactionError(f"pattern is longer than {MAX_PATTERN_CHARS} characters", where)
    try:
        compiled = re.compile(pattern)
        parsed = _sre_parser.parse(pattern)
    except re.error as exc:
        raise RedactionError(f"invalid regular expression: {exc}", where) from None
    if compiled.match(""):
        raise RedactionError("pattern matches the empty string", where)
    problem = _risky(parsed, inside_repeat=False)
    if problem:
        raise RedactionError(f"pattern refused: {problem}", where)
    # Growing probe strings: a pattern slower than linear is stopped at the first size that
    # overruns the budget, so checking it costs a few budgets at most, never the full size.
    for size in _PROBE_SIZES if probe else ():
        for unit in _PROBE_UNITS:
            sample = (unit * size)[:size]
            started = time.perf_counter()
            compiled.sub("", sample)
            took = time.perf_counter() - started
            if took > PROBE_BUDGET_S:
                raise RedactionError(
                    f"pattern refused: it took {took * 1000:.0f} ms on a {size}-character "
                    "probe string; simplify it",
                    where,
                )
    return compiled


_PROBE_UNITS = ("a", "0", " ", "a ", "a@", "a.", "a0-", "0 ", "aB1_", "a=")
_PROBE_SIZES = (16, 32, 64, 128, 256, 512, CUSTOM_WINDOW)
_MAXREPEAT = _sre_constants.MAXREPEAT
_REPEATS = (_sre_constants.MAX_REPEAT, _sre_constants.MIN_REPEAT)


def _risky(parsed: Any, *, inside_repeat: bool) -> str:
    """Why a parsed pattern may take exponential time, or '' (see compile_rule)."""
    for op, arg in parsed:
        if op in (_sre_constants.GROUPREF, _sre_constants.GROUPREF_EXISTS):
            return "back-references are not allowed"
        if op in _REPEATS:
            _low, high, sub = arg
            unbounded = high == _MAXREPEAT or high > 100
            if unbounded and _can_repeat(sub):
                return (
                    "nested unbounded repetition, e.g. (a+)+, can take exponential time; use "
                    "an atomic group (?>a+)+ or a possessive a++"
                )
            if unbounded and _has_branch(sub):
                return (
                    "unbounded repetition of an alternation, e.g. (a|ab)*, can take exponential "
                    "time; use an atomic group (?>a|ab)*"
                )
            found = _risky(sub, inside_repeat=inside_repeat or unbounded)
            if found:
                return found
        elif op == _sre_constants.SUBPATTERN:
            found = _risky(arg[-1], inside_repeat=inside_repeat)
            if found:
                return found
        elif op == _sre_constants.BRANCH:
            for branch in arg[1]:
                found = _risky(branch, inside_repeat=inside_repeat)
                if found:
                    return found
        elif op in (_sre_constants.ASSERT, _sre_constants.ASSERT_NOT):
            found = _risky(arg[1], inside_repeat=inside_repeat)
            if found:
                return found
        # ATOMIC_GROUP and POSSESSIVE_REPEAT never backtrack into themselves: not checked.
    return ""


def _can_repeat(parsed: Any) -> bool:
    for op, arg in parsed:
        if op in _REPEATS and arg[1] > 1:
            return True
        if op == _sre_constants.SUBPATTERN and _can_repeat(arg[-1]):
            return True
        if op == _sre_constants.BRANCH and any(_can_repeat(b) for b in arg[1]):
            return True
    return False


def _has_branch(parsed: Any) -> bool:
    for op, arg in parsed:
        if op == _sre_constants.BRANCH:
            return True
        if op == _sre_constants.SUBPATTERN and _has_branch(arg[-1]):
            return True
    return False


# --- checks behind the built-in detectors -------------------------------------------------


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def iban_ok(compact: str) -> bool:
    if not 15 <= len(compact) <= 34:
        return False
    moved = compact[4:] + compact[:4]
    number = "".join(str(int(ch, 36)) for ch in moved)
    return int(number) % 97 == 1


def _entropy(text: str) -> float:
    counts = Counter(text)
    n = len(text)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


def _check(kind: str, text: str) -> tuple[str, str] | None:
    """(detector, normalized value) when the candidate really is one, else None."""
    if kind == "card":
        digits = text.replace(" ", "").replace("-", "")
        if 13 <= len(digits) <= 19 and luhn_ok(digits) and len(set(digits)) > 1:
            return "card", digits
        return None
    if kind == "iban":
        compact = text.replace(" ", "")
        return ("iban", compact) if iban_ok(compact) else None
    if kind == "ip4":
        parts = text.split(".")
        if all(int(p) <= 255 and (p == "0" or not p.startswith("0")) for p in parts):
            return "ip", text
        return None
    if kind == "ip6":
        if sum(1 for g in text.split(":") if g) < 3:
            return None
        try:
            return "ip", str(ipaddress.IPv6Address(text))
        except ValueError:
            return None
    if kind == "phone":
        digits = _SEPARATORS.sub("", text).lstrip("+")
        return ("phone", digits) if 8 <= len(digits) <= 15 and digits.isdigit() else None
    if kind == "email":
        domain = text.rpartition("@")[2]
        tld = domain.rpartition(".")[2]
        if len(tld) >= 2 and tld.isalpha() and ".." not in text:
            return "email", text.lower()
        return None
    if kind == "secret":
        bearer = _SECRET_BEARER.match(text)
        if bearer:
            token = text[bearer.end() :]
            if _entropy(token) < 3.0 or _UUID_RE.fullmatch(token):
                return None
            return "secret", token
        return "secret", text
    return None


# --- the redactor ---------------------------------------------------------------------------


@dataclass
class Counts:
    """Values replaced, by detector (or custom rule name)."""

    by_detector: Counter[str] = field(default_factory=Counter)

    def total(self) -> int:
        return sum(self.by_detector.values())


class Redactor:
    """A configuration compiled; ``redact`` is safe to call from many threads."""

    def __init__(self, config: RedactionConfig, *, hash_key: bytes = b"") -> None:
        if config.mode == "hash" and not hash_key:
            raise RedactionError("hash mode needs a key (the redaction_hash_key setting)", "mode")
        self.config = config
        self._key = hash_key
        self._hash = config.mode == "hash"
        self._builtins = frozenset(config.builtins)
        self._numeric = bool(self._builtins & {"iban", "ip", "card", "phone"})
        self._want = (
            (SCREEN_SECRET if "secret" in self._builtins else 0)
            | (SCREEN_EMAIL if "email" in self._builtins else 0)
            | (SCREEN_IP6 if "ip" in self._builtins else 0)
            | (SCREEN_NUMERIC if self._numeric else 0)
        )
        self._screen = screen
        self._walk = c_walk
        # the rules were checked by ``compile_rule`` when the configuration was parsed
        self._custom = [
            (rule.name, re.compile(rule.pattern), rule.placeholder) for rule in config.rules
        ]

    @property
    def active(self) -> bool:
        return self.config.active

    def _token(self, detector: str, placeholder: str, value: str) -> str:
        if not self._hash:
            return placeholder
        digest = hmac.new(self._key, f"{detector}:{value}".encode(), hashlib.sha256).hexdigest()
        short = digest[:HASH_HEX]
        return (
            f"{placeholder[:-1]}:{short}>"
            if placeholder.endswith(">")
            else f"{placeholder}:{short}"
        )

    def redact_text(self, text: str, counts: Counts) -> str:
        """One string with every match replaced (built-ins first, then custom rules)."""
        if self._builtins:
            text = self._redact_builtins(text, counts)
        for name, pattern, placeholder in self._custom:
            text = self._redact_custom(text, name, pattern, placeholder, counts)
        return text

    def _redact_builtins(self, text: str, counts: Counts) -> str:
        if len(text) < _SHORTEST:
            return text
        flags, windows, secrets, ip6 = self._screen(text, self._want)
        if not flags and not windows:
            return text
        return self._redact_screened(text, flags, windows, secrets, ip6, counts)

    def _redact_screened(
        self,
        text: str,
        flags: int,
        windows: list[tuple[int, int]],
        secrets: list[tuple[int, int]],
        ip6: list[tuple[int, int]],
        counts: Counts,
    ) -> str:
        """``text`` with the built-ins applied where its screen said they may match."""
        found: list[tuple[int, int, str]] = []  # (start, end, replacement), earlier wins
        for lo, hi in secrets:
            for m in _SECRET.finditer(text, lo, hi):
                self._take(found, m.start(), m.end(), "secret", m.group(), counts)
        if flags & SCREEN_EMAIL:
            self._emails(text, found, counts)
        for lo, hi in ip6:
            for m in _IP6.finditer(text, lo, hi):
                self._take(found, m.start(), m.end(), "ip6", m.group(), counts)
        if windows:
            enabled = self._builtins
            for lo, hi in windows:
                for m in _NUMERIC.finditer(text, lo, hi):
                    if m.end() == hi and hi < len(text):
                        continue  # cut by the window's end: not a whole match
                    detector = _NUMERIC_KINDS[m.lastgroup or ""]
                    if detector in enabled:
                        kind = "ip4" if detector == "ip" else detector
                        self._take(found, m.start(), m.end(), kind, m.group(), counts)
        if not found:
            return text
        found.sort()
        out: list[str] = []
        at = 0
        for start, end, replacement in found:
            out.append(text[at:start])
            out.append(replacement)
            at = end
        out.append(text[at:])
        return "".join(out)

    def _emails(self, text: str, found: list[tuple[int, int, str]], counts: Counts) -> None:
        at = text.find("@")
        while at >= 0:
            domain = _EMAIL_DOMAIN.match(text, at + 1)
            local = _EMAIL_LOCAL.search(text, max(0, at - 65), at) if domain else None
            if (
                domain
                and local
                and (local.start() == 0 or text[local.start() - 1] not in _EMAIL_BEFORE)
            ):
                self._take(
                    found,
                    local.start(),
                    domain.end(),
                    "email",
                    text[local.start() : domain.end()],
                    counts,
                )
            at = text.find("@", at + 1)

    def _take(
        self,
        found: list[tuple[int, int, str]],
        start: int,
        end: int,
        kind: str,
        text: str,
        counts: Counts,
    ) -> None:
        for s, e, _ in found:
            if start < e and s < end:
                return  # overlaps one found before
        checked = _check(kind, text)
        if checked is None:
            return
        name, value = checked
        counts.by_detector[name] += 1
        if kind == "secret" and value is not text and text.endswith(value):
            replacement = text[: len(text) - len(value)] + self._token(name, "<SECRET>", value)
        else:
            replacement = self._token(name, f"<{name.upper()}>", value)
        found.append((start, end, replacement))

    def _redact_custom(
        self, text: str, name: str, pattern: re.Pattern[str], placeholder: str, counts: Counts
    ) -> str:
        def replace(m: re.Match[str]) -> str:
            counts.by_detector[name] += 1
            return self._token(name, placeholder, m.group())

        if len(text) <= CUSTOM_WINDOW:
            return pattern.sub(replace, text)
        return "".join(pattern.sub(replace, piece) for piece in _windows(text))

    def redact(self, value: Any, counts: Counts) -> Any:
        """A JSON value with every string in it redacted (a new value where anything changed;
        containers without matches are returned as they are)."""
        if not self._custom:  # built-ins only: they skip strings shorter than _SHORTEST
            if self._walk is not None and type(value) in _WALKED:
                # the walk and the screen in C; Python only for strings with a candidate
                def screened(
                    text: str,
                    flags: int,
                    windows: list[tuple[int, int]],
                    secrets: list[tuple[int, int]],
                    ip6: list[tuple[int, int]],
                ) -> str:
                    return self._redact_screened(text, flags, windows, secrets, ip6, counts)

                return self._walk(value, self._want, _SHORTEST, screened)

            def one(text: str) -> str:
                return self._redact_builtins(text, counts)

        else:

            def one(text: str) -> str:
                return self.redact_text(text, counts)

        return _walk(value, one)


Screened = list[tuple[int, int]]
Screen = Callable[[str, int], tuple[int, Screened, Screened, Screened]]


def _screen_py(text: str, want: int) -> tuple[int, Screened, Screened, Screened]:
    """Which of the detectors in ``want`` (``SCREEN_*`` bits) may match in ``text``, and the
    (start, end) windows where the number detectors (with ``SCREEN_NUMERIC``), the secret one
    and the IPv6 one may. Each is a necessary condition of a match, so no value is lost
    (tests/test_redaction_screens.py compares the redactor with every pattern run on every
    whole string)."""
    ascii_ = text.encode("ascii", "replace")
    flags = 0
    secrets: list[tuple[int, int]] = []
    if want & SCREEN_SECRET:
        if "-----" in text:  # a PEM block may span the whole string
            secrets = [(0, len(text))]
        else:
            tokens = ascii_.translate(_TOKEN)
            if _SECRET_RUN in tokens:
                secrets = _secret_windows(text, tokens)
        if secrets:
            flags |= SCREEN_SECRET
    if want & SCREEN_EMAIL and "@" in text:
        flags |= SCREEN_EMAIL
    ip6: Screened = []
    if want & SCREEN_IP6 and ":" in text and (text.count(":") >= 7 or "::" in text):
        ip6 = _ip6_windows(text)
        if ip6:
            flags |= SCREEN_IP6
    if want & SCREEN_NUMERIC:
        return flags, _numeric_windows(text, ascii_.translate(_SHAPE)), secrets, ip6
    return flags, [], secrets, ip6


def _ip6_windows(text: str) -> Screened:
    """Each run of hex digits and colons holding ``::`` or 7+ colons (a valid IPv6 address has
    one of them, and a match of ``_IP6`` is a whole run: its look-arounds refuse a hex digit or
    a colon on either side), with the character after it for the look-ahead."""
    n = len(text)
    return [
        (m.start(), min(n, m.end() + 1))
        for m in _HEX_RUNS.finditer(text)
        if "::" in m.group() or m.group().count(":") >= 7
    ]


def _secret_windows(text: str, tokens: bytes) -> list[tuple[int, int]]:
    """Where the secret pattern can match, but for a PEM block: each run of ``_SECRET_RUN`` or
    more token characters (every other secret is one, its match inside the run), with, before
    it, the blanks and the six letters of ``Bearer`` when blanks precede it, and after it the
    character that ends it (for the pattern's look-ahead); merged."""
    n = len(text)
    windows: list[tuple[int, int]] = []
    for m in _TOKEN_RUNS.finditer(tokens):
        start, end = m.span()
        lo = start
        while lo > 0 and text[lo - 1] in " \t":
            lo -= 1
        lo = max(0, lo - 6) if lo < start else start
        hi = min(n, end + 1)
        if windows and lo <= windows[-1][1]:
            windows[-1] = (windows[-1][0], hi)
        else:
            windows.append((lo, hi))
    return windows


Walk = Callable[[Any, int, int, Callable[[str, int, Screened, Screened, Screened], str]], Any]


def _c_scan() -> tuple[Screen | None, Walk | None]:
    try:
        from goldloop._redaction_scan import screen as c_screen
        from goldloop._redaction_scan import walk as c_walk
    except ImportError:  # installed without a C compiler
        return None, None
    return c_screen, c_walk


c_screen, c_walk = _c_scan()
"""``_screen_py`` in C (goldloop._redaction_scan), the same answer or a wider one; and
``_walk`` in C with that screen, calling back only for strings with a candidate. None when the
extension was not built."""
screen = c_screen or _screen_py
"""The screen a ``Redactor`` uses: the C one when it was built."""


def _numeric_windows(text: str, shape: bytes) -> list[tuple[int, int]]:
    """Where in ``text`` a number detector can match: merged spans around every place the
    shape says one may end or start."""
    if b"0" not in shape:
        return []  # no digit, no number
    starts: list[int] = []
    for needed, pattern in _SHAPE_PATTERNS:
        if needed in shape:
            _starts(pattern, shape, starts)
    if "(" in text:
        _starts(_PAREN_PHONE, shape, starts)
    if "+" in text:
        at = text.find("+")
        while at >= 0:
            starts.append(at)
            at = text.find("+", at + 1)
    if not starts:
        return []
    starts.sort()
    n = len(text)
    windows: list[tuple[int, int]] = []
    for start in starts:
        lo, hi = max(0, start - _BEFORE_NUMERIC), min(n, start + _LONGEST_NUMERIC)
        if windows and lo <= windows[-1][1]:
            windows[-1] = (windows[-1][0], max(hi, windows[-1][1]))
        else:
            windows.append((lo, hi))
    return windows


def _starts(pattern: re.Pattern[bytes], shape: bytes, starts: list[int]) -> None:
    m = pattern.search(shape)
    while m is not None:
        starts.append(m.start())
        m = pattern.search(shape, m.end())


def _windows(text: str) -> Iterable[str]:
    start = 0
    n = len(text)
    while start < n:
        end = min(start + CUSTOM_WINDOW, n)
        if end < n:
            cut = text.rfind(" ", start + CUSTOM_WINDOW // 2, end)
            if cut > start:
                end = cut + 1
        yield text[start:end]
        start = end


def _walk(value: Any, fn: Callable[[str], str]) -> Any:
    kind = type(value)
    if kind is str:
        return fn(value)
    if kind is dict:
        out: dict[Any, Any] | None = None
        for k, v in value.items():
            if type(v) is str:
                new = fn(v)
            elif type(v) in _CONTAINERS:
                new = _walk(v, fn)
            else:
                continue
            if new is not v:
                if out is None:
                    out = dict(value)
                out[k] = new
        return value if out is None else out
    if kind is list:
        changed: list[Any] | None = None
        for i, v in enumerate(value):
            if type(v) is str:
                new = fn(v)
            elif type(v) in _CONTAINERS:
                new = _walk(v, fn)
            else:
                continue
            if new is not v:
                if changed is None:
                    changed = list(value)
                changed[i] = new
        return value if changed is None else changed
    if isinstance(value, str):  # subclasses, as their base type
        return fn(str(value))
    if isinstance(value, dict):
        return _walk(dict(value), fn)
    if isinstance(value, list):
        return _walk(list(value), fn)
    return value


_CONTAINERS = (dict, list)
_WALKED = (str, dict, list)
"""The types ``c_walk`` takes (exactly; ``_walk`` turns subclasses into these first)."""
