"""`goldloop demo`: the whole quality loop on an embedded instance, with a scripted agent.

``agent``: a deterministic hotel-booking support agent (no LLM) in a buggy and a fixed version;
``embedded``: the in-process server and the local webhook receiver; ``loop``: the steps, played
against the real HTTP API.
"""
