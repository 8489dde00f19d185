"""Verify that a webhook request came from your Goldloop server.

Goldloop signs every webhook it sends (alert channels of kind ``webhook`` and rule ``webhook``
actions) with the signing secret shown once when the channel or rule was created::

    from goldloop.webhooks import WebhookSignatureError, verify

    try:
        verify(secret, request.headers, raw_body)  # raw bytes, before JSON parsing
    except WebhookSignatureError:
        ...  # answer 400 and drop it

The header is ``Goldloop-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>." + body>``.
"""

from goldloop.domain.webhook_signing import (
    SIGNATURE_HEADER,
    WebhookSignatureError,
    sign,
    signature_header,
    verify,
)

__all__ = ["SIGNATURE_HEADER", "WebhookSignatureError", "sign", "signature_header", "verify"]
