"""Reliability scenarios: what was injected, what held, what was lost (must be nothing)."""
