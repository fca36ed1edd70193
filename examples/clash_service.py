"""An example service whose endpoint names clash with the client's own attributes.

Clients expose such endpoints with an ``api_`` prefix (``client.api_url``). BentoML 1.4.40
itself cannot serve endpoints named ``close``, ``call`` or ``endpoints`` (they clash with its
service internals and answer 500), nor ``__call__`` (refused at import), so this service uses
names that BentoML serves and the client already has: ``url``, ``map`` and ``with_options``.
``api_map`` is also an endpoint of its own, so ``map`` moves one prefix further
(``client.api_api_map``): the rule never lets two endpoints share an attribute.
"""

from __future__ import annotations

import bentoml


@bentoml.service(name="clash_service", threads=2)
class ClashService:
    @bentoml.api
    def url(self, x: int = 1) -> int:
        return x + 1

    @bentoml.api
    def map(self, x: int = 1) -> int:
        return x + 3

    @bentoml.api
    def api_map(self, x: int = 1) -> int:
        return x + 30

    @bentoml.api
    def with_options(self, x: int = 1) -> int:
        return x + 4

    @bentoml.api
    def plain(self, x: int = 1) -> int:
        return x
