"""The HTTP edge: one ASGI app with the REST API (and, later, OTLP, LangSmith and the pages)."""
