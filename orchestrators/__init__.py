"""Durable orchestration of a sync run: planning (pure), the orchestrators, and the HTTP/timer starters."""
