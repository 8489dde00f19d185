"""A strict, small ``multipart/form-data`` reader (RFC 7578 framing, RFC 2046 delimiters).

Pure bytes in, parts out, in body order. It reads what the LangSmith SDK sends (a
``Content-Disposition: form-data; name="..."`` header per part, optional ``Content-Type`` and
``Content-Length``, CRLF line ends) and rejects anything malformed with a message saying where.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_BOUNDARY = re.compile(r"""boundary=(?:"([^"]+)"|([^;\s]+))""", re.IGNORECASE)
_PARAM = re.compile(r""";\s*([\w*-]+)=(?:"((?:[^"\\]|\\.)*)"|([^;\s]*))""")


class MultipartError(ValueError):
    """The body is not well-formed multipart/form-data; the message says where."""


@dataclass(frozen=True, slots=True)
class Part:
    name: str
    content_type: str | None
    data: bytes


def boundary_of(content_type: str) -> str:
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind != "multipart/form-data":
        raise MultipartError(f"expected multipart/form-data, got {kind or 'no content type'!r}")
    match = _BOUNDARY.search(content_type)
    if match is None:
        raise MultipartError("the multipart Content-Type has no boundary parameter")
    boundary = match.group(1) or match.group(2)
    if not 1 <= len(boundary) <= 70:
        raise MultipartError("the multipart boundary must be 1-70 characters")
    return boundary


def _headers(block: bytes, index: int) -> dict[str, str]:
    headers: dict[str, str] = {}
    for raw in block.split(b"\r\n"):
        if not raw:
            continue
        try:  # what clients send (the LangSmith SDK's encoder: UTF-8 names), else bytes as-is
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = raw.decode("latin-1")
        name, sep, value = text.partition(":")
        if not sep:
            raise MultipartError(f"part {index}: malformed header line {raw[:80]!r}")
        headers[name.strip().lower()] = value.strip()
    return headers


def _disposition_name(value: str, index: int) -> str:
    kind, _, _ = value.partition(";")
    if kind.strip().lower() != "form-data":
        raise MultipartError(f"part {index}: Content-Disposition must be form-data")
    for match in _PARAM.finditer(value):
        if match.group(1).lower() == "name":
            quoted = match.group(2)
            if quoted is not None:
                return re.sub(r"\\(.)", r"\1", quoted)
            return match.group(3)
    raise MultipartError(f"part {index}: Content-Disposition has no name")


def parse(body: bytes, content_type: str) -> list[Part]:
    """Every part of ``body``, in order."""
    delimiter = b"--" + boundary_of(content_type).encode("latin-1")
    start = body.find(delimiter)
    if start < 0 or (start > 0 and body[start - 2 : start] != b"\r\n"):
        raise MultipartError("the body does not start with the multipart boundary")
    parts: list[Part] = []
    position = start + len(delimiter)
    separator = b"\r\n" + delimiter
    while True:
        if body.startswith(b"--", position):
            return parts  # the close delimiter; anything after it is an epilogue
        line_end = body.find(b"\r\n", position)
        if line_end < 0:
            raise MultipartError("the body ends before its closing boundary")
        if body[position:line_end].strip(b" \t"):
            raise MultipartError(f"part {len(parts)}: garbage after the boundary")
        header_end = body.find(b"\r\n\r\n", line_end)
        headers_block = b"" if body.startswith(b"\r\n\r\n", line_end) else None
        if headers_block is None:
            if header_end < 0:
                raise MultipartError(f"part {len(parts)}: headers never end")
            headers_block = body[line_end + 2 : header_end]
            data_start = header_end + 4
        else:
            data_start = line_end + 4
        headers = _headers(headers_block, len(parts))
        disposition = headers.get("content-disposition")
        if disposition is None:
            raise MultipartError(f"part {len(parts)}: no Content-Disposition header")
        name = _disposition_name(disposition, len(parts))
        data_end = body.find(separator, data_start)
        if data_end < 0:
            raise MultipartError(f"part {len(parts)} ({name!r}): no boundary after its data")
        parts.append(Part(name, headers.get("content-type"), body[data_start:data_end]))
        position = data_end + len(separator)
