"""Services: the use cases. HTTP, CLI and workers call these; they call the store and domain."""
