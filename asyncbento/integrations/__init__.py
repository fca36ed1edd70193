"""Integrations with other frameworks; each is imported only by path (e.g. ``.ray``)."""
