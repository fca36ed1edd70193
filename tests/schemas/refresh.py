"""Refresh the stored ``/schema.json`` of every example service (run after changing one).

    PYTHONPATH=. python tests/schemas/refresh.py

Starts each service in ``examples/`` with ``bentoml serve`` and writes what it serves to
``tests/schemas/<service name>.json``. ``shapes.json`` is written by hand and left alone.
"""

from __future__ import annotations

import json
import pathlib
import urllib.request

from asyncbento.testing import BentoServer

HERE = pathlib.Path(__file__).resolve().parent
EXAMPLES = HERE.parent.parent / "examples"
TOKEN = "refresh-token"
SERVICES = {
    "service:ExampleService": {},
    "clash_service:ClashService": {},
    "auth_service:AuthService": {"ASYNCBENTO_EXAMPLE_TOKEN": TOKEN},
    "slow_ready_service:SlowReadyService": {"ASYNCBENTO_READY_AFTER": "0"},
    "capped_service:CappedService": {},
}


def main() -> None:
    for target, env in SERVICES.items():
        with BentoServer(target, working_dir=EXAMPLES, env=env) as server:
            request = urllib.request.Request(
                f"{server.url}/schema.json", headers={"Authorization": f"Bearer {TOKEN}"}
            )
            with urllib.request.urlopen(request) as answer:
                document = json.load(answer)
        path = HERE / f"{document['name']}.json"
        path.write_text(json.dumps(document, indent=2) + "\n")
        print(f"{target}: {len(document['routes'])} endpoints -> {path.name}")


if __name__ == "__main__":
    main()
