"""Attachment names, media types, how files are served, and signed URLs (pure functions)."""

from __future__ import annotations

import pytest

from goldloop.domain import attachments as dom
from goldloop.domain.langsmith import example_parts
from goldloop.domain.multipart import Part

KEY = b"k" * 32


def test_signed_urls_expire_and_cannot_be_altered() -> None:
    grant = dom.Grant("a" * 64, "image/png", "photo", 1_000)
    token = dom.sign(KEY, grant)
    assert dom.verify(KEY, token, 999) == grant
    assert dom.verify(KEY, token, 1_000) == grant  # valid through its last second
    assert dom.verify(KEY, token, 1_001) is None  # expired
    assert dom.verify(b"x" * 32, token, 0) is None  # another server's key
    for i in range(len(token)):  # any one changed character is refused, wherever it is
        swapped = "A" if token[i] != "A" else "B"
        assert dom.verify(KEY, token[:i] + swapped + token[i + 1 :], 0) is None
    for junk in ("", ".", "abc", "a.b.c", "%%.%%", "x" * 3000):
        assert dom.verify(KEY, junk, 0) is None


@pytest.mark.parametrize(
    "name",
    ["", "   ", "..", ".", "a/b", "../../etc/passwd", "a\\b", "tab\there", "nul\x00", "x" * 201],
)
def test_bad_names_are_refused(name: str) -> None:
    with pytest.raises(dom.AttachmentError):
        dom.check_name(name)


def test_names_people_use_are_kept() -> None:
    for name in ("photo", "report.final.pdf", "résumé (v2)", "a..b", '"quoted"; x=1', "x" * 200):
        assert dom.check_name(name) == name


def test_media_types_are_reduced_and_served_safely() -> None:
    assert dom.clean_mime("image/PNG; length=12") == "image/png"
    assert dom.clean_mime(None) == dom.OCTET
    assert dom.clean_mime("text/html<script>") == dom.OCTET
    assert dom.clean_mime("nonsense") == dom.OCTET
    assert dom.served("image/png", "p").disposition.startswith("inline;")
    assert dom.served("audio/mpeg", "a").content_type == "audio/mpeg"
    for risky in ("text/html", "image/svg+xml", "application/javascript", "text/xml"):
        out = dom.served(risky, "x")
        assert out.content_type == dom.OCTET
        assert out.disposition.startswith("attachment;")
    assert dom.served("application/pdf", "r.pdf").disposition.startswith("attachment;")
    header = dom.served("image/png", 'a"b\r\nX-Evil: 1').disposition
    assert "\r" not in header
    assert "\n" not in header
    assert 'filename="a_b__X-Evil__1"' in header


def test_example_parts_assemble_per_example() -> None:
    a, b = "0b1e5c1e-0000-4000-8000-000000000001", "0b1e5c1e-0000-4000-8000-000000000002"
    uploads = example_parts.assemble(
        [
            Part(a, "application/json", b'{"split": "test"}'),
            Part(f"{a}.inputs", "application/json", b'{"q": 1}'),
            Part(f"{b}.inputs", "application/json", b'{"q": 2}'),
            Part(f"{a}.attachment.photo.v2", "image/png", b"\x89PNG"),
            Part(f"{a}.outputs", "application/json", b'"text outputs"'),
            Part(f"{b}.attachments_operations", "application/json", b'{"retain": []}'),
        ]
    )
    assert [u.id for u in uploads] == [a, b]
    assert uploads[0].body == {"split": "test"}
    assert uploads[0].fields == {"inputs": {"q": 1}, "outputs": "text outputs"}
    assert [(p.name, p.data) for p in uploads[0].attachments] == [("photo.v2", b"\x89PNG")]
    assert uploads[1].fields == {"inputs": {"q": 2}, "attachments_operations": {"retain": []}}
    for bad in ("x.inputs", f"{a}.nope", f"{a}.attachments_operations"):
        data = b"[1]" if bad.endswith("operations") else b"{}"
        with pytest.raises(example_parts.PartsError):
            example_parts.assemble([Part(bad, None, data)])
