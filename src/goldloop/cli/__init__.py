"""The `goldloop` command line."""
