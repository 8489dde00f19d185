"""The Python SDK's machinery: tracing, the exporter, configuration and the HTTP client's parts.

Internal: import the public names from ``goldloop`` (``traceable``, ``trace``, ``configure``,
...) and ``goldloop.client`` (``Client``, ``ApiError``); the modules here may change.
"""
