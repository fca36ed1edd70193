"""Where asyncbento's async hot path spends CPU beyond the raw aiohttp loop, function by function.

    python benchmarks/profile_hot_path.py [--concurrency 64] [--calls 20000] [--package DIR]
        [--pyinstrument]

Runs ``--calls`` small calls at ``--concurrency`` through a raw aiohttp loop and through
asyncbento (this checkout's, or the ``asyncbento/`` folder given with ``--package``), each under
cProfile in its own process pinned to CPU 1, against the stand-in server on CPU 0. Prints the
total own time by package and the functions whose own time (``tottime``) grew the most, per
request. cProfile inflates small functions, so read the ranking, not the absolute µs, and measure
a change with ``hot_path_ab.py``. ``--pyinstrument`` also prints pyinstrument's call tree for
asyncbento (``pip install pyinstrument``).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import pstats
import re
import subprocess
import sys
import tempfile
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
ARGUMENTS = {"text": "The quick brown fox jumps over the lazy dog."}


def profile_one(mode: str, url: str, concurrency: int, calls: int, out: str, tree: bool) -> None:
    """Inside a case process: warm up, then profile ``calls`` calls."""
    import cProfile

    sys.path.insert(0, HERE)
    from run_all import drive_async

    async def drive(call: Any, n: int) -> None:
        await drive_async(call, n, concurrency, None)

    async def main() -> None:
        limit = max(concurrency, 100)
        if mode == "raw":
            import aiohttp
            import msgspec

            encoder, decoder = msgspec.json.Encoder(), msgspec.json.Decoder()
            headers = {"Content-Type": "application/json"}
            session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=limit))

            async def call() -> Any:
                async with session.post(
                    f"{url}/small", data=encoder.encode(ARGUMENTS), headers=headers
                ) as answer:
                    return decoder.decode(await answer.read())

            closer: Any = session
        else:
            import asyncbento

            client = asyncbento.AsyncHTTPClient(
                url, limits=asyncbento.Limits(max_connections=limit)
            )
            await client.__aenter__()
            method = client.small

            async def call() -> Any:
                return await method(**ARGUMENTS)

            closer = client
        await drive(call, max(1000, 4 * concurrency))
        if tree:
            from pyinstrument import Profiler

            profiler = Profiler(interval=0.0002, async_mode="disabled")
            profiler.start()
            await drive(call, calls)
            profiler.stop()
            print(profiler.output_text(unicode=True, color=False, short_mode=True))
        profile = cProfile.Profile()
        profile.enable()
        await drive(call, calls)
        profile.disable()
        profile.dump_stats(out)
        await closer.close()

    asyncio.run(main())


def load(path: str) -> dict[str, float]:
    stats = pstats.Stats(path).stats  # type: ignore[attr-defined]
    own: dict[str, float] = collections.defaultdict(float)
    for (filename, line, name), (_, _, tottime, _, _) in stats.items():
        short = re.sub(r"^.*/(site-packages|lib/python3\.\d+)/", "", filename)
        short = short.split("/asyncbento/")[-1] if "/asyncbento/" in short else short
        if short.endswith("profile_hot_path.py"):
            continue  # the harness's own call(): part of neither client
        own[f"{short}:{line}({name})"] += tottime
    return own


def package_of(key: str) -> str:
    path = key.split(":")[0]
    if path.startswith("_") and path.endswith(".py") and "/" not in path:
        return "asyncbento"
    if path.startswith("aiohttp/"):
        return "aiohttp"
    if path.startswith("asyncio/"):
        return "asyncio"
    if path.startswith("~"):
        return "builtins"
    return "other"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--package", default=os.path.join(ROOT, "asyncbento"))
    parser.add_argument("--pyinstrument", action="store_true")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--child", nargs=3, metavar=("MODE", "URL", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, url, out = args.child
        profile_one(mode, url, args.concurrency, args.calls, out, args.pyinstrument)
        return 0

    sys.path.insert(0, HERE)
    from run_all import TWO_CPUS, standin

    folder = tempfile.mkdtemp(prefix="asyncbento-profile-")
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.abspath(args.package)))
    pin = "import os, runpy, sys; os.sched_setaffinity(0, {1}); " if TWO_CPUS else ""
    with standin() as url:
        for mode in ("raw", "asyncbento"):
            argv = [
                os.path.abspath(__file__),
                "--concurrency",
                str(args.concurrency),
                "--calls",
                str(args.calls),
                "--child",
                mode,
                url,
                os.path.join(folder, f"{mode}.prof"),
            ]
            if args.pyinstrument and mode == "asyncbento":
                argv.append("--pyinstrument")
            code = (
                pin or "import runpy, sys; "
            ) + f"sys.argv = {argv!r}; runpy.run_path(sys.argv[0], run_name='__main__')"
            subprocess.run([sys.executable, "-c", code], check=True, env=env)
    raw = load(os.path.join(folder, "raw.prof"))
    bento = load(os.path.join(folder, "asyncbento.prof"))
    per = 1e6 / args.calls
    print(
        f"\nown time per request under cProfile: raw {sum(raw.values()) * per:.1f} µs, "
        f"asyncbento {sum(bento.values()) * per:.1f} µs"
    )
    totals: dict[str, list[float]] = collections.defaultdict(lambda: [0.0, 0.0])
    for key in set(raw) | set(bento):
        totals[package_of(key)][0] += raw.get(key, 0.0) * per
        totals[package_of(key)][1] += bento.get(key, 0.0) * per
    print("by package (raw -> asyncbento, µs per request):")
    for name, (before, after) in sorted(totals.items(), key=lambda kv: kv[1][0] - kv[1][1]):
        print(f"  {name:10} {before:7.2f} -> {after:7.2f}  ({after - before:+.2f})")
    rows = sorted(((bento.get(k, 0.0) - raw.get(k, 0.0)) * per, k) for k in set(raw) | set(bento))
    print(f"\nfunctions whose own time grew the most (µs per request, top {args.top}):")
    for delta, key in reversed(rows[-args.top :]):
        print(f"  {delta:+6.2f}  {key}")
    print(json.dumps({"profiles": folder}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
