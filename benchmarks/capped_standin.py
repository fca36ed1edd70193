"""A capped stand-in for a BentoML service: at most K calls at once, a fixed latency each.

Like ``@bentoml.service(traffic={"max_concurrency": K})``: a call beyond K in flight is
answered ``429 Too many requests`` at once (no ``Retry-After``, as BentoML sends none);
``POST /echo`` {"x": int} answers x after ``latency`` seconds. K = 0 means uncapped.

    python benchmarks/capped_standin.py PORT CAPACITY LATENCY [CPU]
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

from aiohttp import web

SCHEMA = {
    "name": "capped_standin",
    "type": "service",
    "routes": [
        {
            "name": "echo",
            "route": "/echo",
            "batchable": False,
            "input": {
                "properties": {"x": {"title": "X", "type": "integer"}},
                "required": ["x"],
                "title": "Input",
                "type": "object",
            },
            "output": {"type": "integer"},
            "is_task": False,
        }
    ],
    "paths": {"/echo": {"mounted": False}},
}


def make_app(capacity: int, latency: float) -> web.Application:
    state = {"in_flight": 0, "refused": 0}

    async def echo(request: web.Request) -> web.Response:
        if capacity and state["in_flight"] >= capacity:
            state["refused"] += 1
            return web.json_response({"error": "Too many requests"}, status=429)
        state["in_flight"] += 1
        try:
            body = await request.read()
            await asyncio.sleep(latency)
            return web.Response(
                body=str(json.loads(body)["x"]).encode(), content_type="application/json"
            )
        finally:
            state["in_flight"] -= 1

    async def schema(request: web.Request) -> web.Response:
        return web.json_response(SCHEMA)

    async def ready(request: web.Request) -> web.Response:
        return web.Response(text="\n")

    async def stats(request: web.Request) -> web.Response:
        return web.json_response(state)

    app = web.Application()
    app.router.add_post("/echo", echo)
    app.router.add_get("/schema.json", schema)
    app.router.add_get("/readyz", ready)
    app.router.add_get("/_stats", stats)
    return app


def main() -> None:
    port, capacity, latency = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    if len(sys.argv) > 4 and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {int(sys.argv[4])})
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    web.run_app(make_app(capacity, latency), host="127.0.0.1", port=port, print=None, backlog=4096)


if __name__ == "__main__":
    main()
