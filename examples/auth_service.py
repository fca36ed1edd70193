"""An example service behind a Bearer-token ASGI middleware.

The token comes from ``$ASYNCBENTO_EXAMPLE_TOKEN``. Probes stay open; everything else,
``/schema.json`` included, needs ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import json
import os
import typing as t

import bentoml

OPEN_PATHS = {"/readyz", "/livez", "/healthz", "/metrics"}


class BearerTokenMiddleware:
    """Answers 401 unless the request carries the expected Bearer token."""

    def __init__(self, app: t.Any, token: str) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode()

    async def __call__(self, scope: dict[str, t.Any], receive: t.Any, send: t.Any) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        given = headers.get(b"authorization")
        if given == self.expected:
            await self.app(scope, receive, send)
            return
        reason = "missing bearer token" if given is None else "invalid bearer token"
        body = json.dumps({"error": f"Unauthorized: {reason}"}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"www-authenticate", b"Bearer"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


@bentoml.service(name="auth_service", threads=4)
class AuthService:
    @bentoml.api
    def whoami(self) -> dict[str, bool]:
        return {"ok": True}

    @bentoml.api
    def echo(self, data: dict[str, t.Any]) -> dict[str, t.Any]:
        return data


AuthService.add_asgi_middleware(
    BearerTokenMiddleware, token=os.environ.get("ASYNCBENTO_EXAMPLE_TOKEN", "change-me")
)
