"""The ``asyncbento`` command: describe a service, call one endpoint, or run a batch.

    asyncbento describe URL
    asyncbento call URL ENDPOINT [--json '{...}'] [key=value ...]
    asyncbento batch URL ENDPOINT --input IN.jsonl --output OUT.jsonl [--concurrency N] [--resume]

Exit codes: 0 success; 1 some batch inputs (or the call) failed, every failure recorded;
2 usage errors (bad arguments, unknown endpoint, unreadable input); 130 interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import json
import os
import pathlib
import signal
import sys
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any, TextIO

import aiofiles
import msgspec

from . import __version__
from ._batch import endpoint_call, run_batch
from ._client import AsyncHTTPClient
from ._config import RetryPolicy
from .exceptions import BentoMLException

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class UsageError(Exception):
    """A mistake in the command line or its inputs (exit code 2)."""


def _output_hook(value: Any) -> Any:
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    module = type(value).__module__
    if module == "numpy" or module.startswith("numpy."):
        return value.tolist()
    if module.startswith("PIL."):
        filename = getattr(value, "filename", "")
        if filename:
            return filename
    raise TypeError(f"cannot write a {type(value).__qualname__} as JSON")


_ENCODER = msgspec.json.Encoder(enc_hook=_output_hook)


def to_json(value: Any) -> str:
    """Outputs as JSON text: paths as strings, bytes as base64, arrays as lists."""
    return _ENCODER.encode(value).decode("utf-8")


def error_record(error: BaseException) -> dict[str, Any]:
    """How a failed input is written: its type, error code (if any) and message."""
    code = int(error.error_code) if isinstance(error, BentoMLException) else None
    return {"type": type(error).__name__, "error_code": code, "message": str(error)}


# ----------------------------------------------------------------------------- arguments


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="asyncbento", description="Call BentoML services from the command line."
    )
    parser.add_argument("--version", action="version", version=f"asyncbento {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--token", help="Bearer token (default: $BENTO_CLOUD_API_KEY)")
    common.add_argument("--timeout", type=float, default=30.0, help="seconds per call")
    common.add_argument(
        "--server-ready-timeout", type=float, default=None, help="seconds to wait for /readyz"
    )
    common.add_argument("--retries", type=int, default=3, help="attempts per call in all")
    common.add_argument("--no-retry", action="store_true", help="never retry")
    commands = parser.add_subparsers(dest="command", required=True)

    describe = commands.add_parser("describe", parents=[common], help="list the endpoints")
    describe.add_argument("url")

    call = commands.add_parser("call", parents=[common], help="call one endpoint once")
    call.add_argument("url")
    call.add_argument("endpoint")
    call.add_argument("--json", dest="json_arguments", help="arguments as a JSON object")
    call.add_argument("arguments", nargs="*", metavar="key=value", help="value: JSON or text")
    call.add_argument("--download-dir", help="where file outputs are saved")

    batch = commands.add_parser("batch", parents=[common], help="call an endpoint per line")
    batch.add_argument("url")
    batch.add_argument("endpoint")
    batch.add_argument("--input", required=True, help="JSON Lines file of inputs")
    batch.add_argument("--output", required=True, help="JSON Lines file of results")
    batch.add_argument("--concurrency", type=int, default=64)
    batch.add_argument("--resume", action="store_true", help="redo only what did not succeed")
    batch.add_argument("--download-dir", help="where file outputs are saved")
    batch.add_argument(
        "--progress",
        choices=("auto", "on", "off"),
        default="auto",
        help="progress bar on stderr (auto: when stderr is a terminal)",
    )
    return parser


def make_client(args: argparse.Namespace) -> AsyncHTTPClient:
    if args.no_retry or args.retries <= 1:
        retry: RetryPolicy | None = None
    else:
        retry = RetryPolicy(max_attempts=args.retries)
    try:
        return AsyncHTTPClient(
            args.url,
            token=args.token,
            timeout=args.timeout,
            server_ready_timeout=args.server_ready_timeout,
            retry=retry,
            download_dir=getattr(args, "download_dir", None),
        )
    except (ValueError, TypeError) as error:
        raise UsageError(str(error)) from error


def parse_pairs(pairs: Sequence[str], json_arguments: str | None) -> dict[str, Any]:
    """``--json`` plus ``key=value`` words (each value JSON if it parses, else text)."""
    arguments: dict[str, Any] = {}
    if json_arguments is not None:
        try:
            parsed = json.loads(json_arguments)
        except json.JSONDecodeError as error:
            raise UsageError(f"--json is not valid JSON: {error}") from error
        if not isinstance(parsed, dict):
            raise UsageError("--json must be a JSON object of arguments")
        arguments.update(parsed)
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"expected key=value, got {pair!r}")
        try:
            arguments[key] = json.loads(text)
        except json.JSONDecodeError:
            arguments[key] = text
    return arguments


def _method(client: AsyncHTTPClient, name: str) -> Any:
    method = client._methods.get(name)
    if method is None:
        known = ", ".join(sorted(client._methods)) or "none"
        raise UsageError(f"the service has no endpoint {name!r} (it has: {known})")
    return method


# ----------------------------------------------------------------------------- commands


def describe_signature(signature: inspect.Signature) -> str:
    """A signature as Python source would show it (no quotes around text annotations)."""
    parts = []
    for parameter in signature.parameters.values():
        text = parameter.name
        if parameter.annotation is not inspect.Parameter.empty:
            annotation = parameter.annotation
            shown = (
                annotation if isinstance(annotation, str) else inspect.formatannotation(annotation)
            )
            text += f": {shown}"
        if parameter.default is not inspect.Parameter.empty:
            text += f" = {parameter.default!r}"
        parts.append(text)
    if any(p.kind is inspect.Parameter.POSITIONAL_ONLY for p in signature.parameters.values()):
        parts.append("/")
    return f"({', '.join(parts)})"


async def describe(args: argparse.Namespace, out: TextIO) -> int:
    async with make_client(args) as client:
        out.write(f"service {client.service_name} at {client.url}\n")
        for name, endpoint in sorted(client.endpoints.items()):
            signature = describe_signature(endpoint.signature)
            marks = [
                m for m, on in (("stream", endpoint.is_stream), ("task", endpoint.is_task)) if on
            ]
            output = endpoint.output.value
            suffix = f"  [{', '.join(marks)}]" if marks else ""
            out.write(f"  {name}{signature} -> {output}  POST {endpoint.route}{suffix}\n")
    return EXIT_OK


async def call(args: argparse.Namespace, out: TextIO) -> int:
    arguments = parse_pairs(args.arguments, args.json_arguments)
    async with make_client(args) as client:
        method = _method(client, args.endpoint)
        endpoint = method.endpoint
        if endpoint.root is not None:
            if set(arguments) != {"value"}:
                raise UsageError(f"{args.endpoint} takes one root input: pass value=...")
            result = method(arguments["value"])
        else:
            result = method(**arguments)
        if endpoint.is_stream:
            async for chunk in result:
                if isinstance(chunk, bytes):
                    out.flush()
                    sys.stdout.buffer.write(chunk)
                    sys.stdout.buffer.flush()
                else:
                    out.write(chunk)
                    out.flush()
            return EXIT_OK
        value = await result
    if isinstance(value, bytes):
        out.flush()
        sys.stdout.buffer.write(value)  # raw bytes, for piping
    elif isinstance(value, str):
        out.write(value + "\n")
    else:
        out.write(to_json(value) + "\n")
    return EXIT_OK


def read_done(path: pathlib.Path) -> dict[int, str]:
    """Successful lines already in an output file, by index (for ``--resume``)."""
    done: dict[int, str] = {}
    if not path.exists():
        return done
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by an interruption
            if (
                isinstance(record, dict)
                and "output" in record
                and isinstance(record.get("index"), int)
            ):
                done[record["index"]] = line if line.endswith("\n") else line + "\n"
    return done


class MalformedLine(ValueError):
    """An input line that is not valid JSON (recorded as that input's error)."""


def read_inputs(path: pathlib.Path, skip: set[int], stderr: TextIO) -> Iterator[tuple[int, Any]]:
    """(index, arguments) per input line, lazily; malformed lines come as errors."""
    with open(path, encoding="utf-8") as lines:
        for index, line in enumerate(lines):
            if index in skip:
                continue
            try:
                if not line.strip():
                    raise MalformedLine("blank line")
                yield index, json.loads(line)
            except (json.JSONDecodeError, MalformedLine) as error:
                stderr.write(f"asyncbento batch: line {index + 1}: malformed input: {error}\n")
                yield index, MalformedLine(f"line {index + 1}: {error}")


def _rewrite(path: pathlib.Path, kept: dict[int, str]) -> None:
    """Replace ``path`` atomically with only the kept (successful) lines."""
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "w", encoding="utf-8") as handle:
        for index in sorted(kept):
            handle.write(kept[index])
    os.replace(temporary, path)


def prepare_batch(args: argparse.Namespace) -> dict[int, str]:
    """Check a batch's files (before any event loop runs) and set up its output file.

    Returns the successful lines kept from an earlier run (``--resume``), by index.
    """
    source = pathlib.Path(args.input)
    if not source.is_file():
        raise UsageError(f"no such input file: {source}")
    if args.concurrency < 1:
        raise UsageError("--concurrency must be at least 1")
    target = pathlib.Path(args.output)
    done = read_done(target) if args.resume else {}
    _rewrite(target, done)
    return done


async def batch(args: argparse.Namespace, done: dict[int, str], stderr: TextIO) -> int:
    source = pathlib.Path(args.input)
    target = pathlib.Path(args.output)
    show_progress = args.progress == "on" or (args.progress == "auto" and stderr.isatty())
    counts = {"ok": len(done), "failed": 0}
    started = time.monotonic()
    async with make_client(args) as client:
        call_endpoint = endpoint_call(_method(client, args.endpoint))

        async def call_one(item: tuple[int, Any]) -> Any:
            _, arguments = item
            if isinstance(arguments, MalformedLine):
                raise arguments
            return await call_endpoint(arguments)

        # run_batch numbers inputs in the order it pulls them; remember each one's line.
        line_of: dict[int, int] = {}

        def numbered() -> Iterator[tuple[int, Any]]:
            for position, item in enumerate(read_inputs(source, set(done), stderr)):
                line_of[position] = item[0]
                yield item

        results: AsyncIterator[tuple[int, Any]] = run_batch(
            call_one,
            numbered(),
            concurrency=args.concurrency,
            return_exceptions=True,
            progress=show_progress and _has_tqdm(),
            description=args.endpoint,
        )
        async with aiofiles.open(target, "a", encoding="utf-8") as handle:
            try:
                async for position, value in results:
                    index = line_of.pop(position)
                    if isinstance(value, BaseException):
                        record: dict[str, Any] = {"index": index, "error": error_record(value)}
                        counts["failed"] += 1
                    else:
                        try:
                            text = to_json({"index": index, "output": value})
                        except (TypeError, msgspec.EncodeError) as error:
                            record = {"index": index, "error": error_record(error)}
                            counts["failed"] += 1
                        else:
                            await handle.write(text + "\n")
                            await handle.flush()
                            counts["ok"] += 1
                            continue
                    await handle.write(to_json(record) + "\n")
                    await handle.flush()
            finally:
                await _close(results)
    elapsed = time.monotonic() - started
    total = counts["ok"] + counts["failed"]
    stderr.write(
        f"asyncbento batch: {total} inputs, {counts['ok']} succeeded, {counts['failed']} failed "
        f"in {elapsed:.1f}s ({(total - len(done)) / elapsed if elapsed else 0:.1f}/s)\n"
    )
    return EXIT_OK if counts["failed"] == 0 else EXIT_FAILED


async def _close(results: AsyncIterator[tuple[int, Any]]) -> None:
    aclose = getattr(results, "aclose", None)
    if aclose is not None:
        await aclose()


def _has_tqdm() -> bool:
    try:
        import tqdm  # noqa: F401
    except ImportError:
        return False
    return True


# ----------------------------------------------------------------------------- entry point


async def _dispatch(args: argparse.Namespace, done: dict[int, str]) -> int:
    if args.command == "describe":
        return await describe(args, sys.stdout)
    if args.command == "call":
        return await call(args, sys.stdout)
    return await batch(args, done, sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        done = prepare_batch(args) if args.command == "batch" else {}
        return asyncio.run(_run_interruptibly(args, done))
    except UsageError as error:
        sys.stderr.write(f"asyncbento: error: {error}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        sys.stderr.write("asyncbento: interrupted; finished results are written\n")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): not an error of ours.
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silences the exit-time flush
        return EXIT_OK
    except (BentoMLException, TypeError, FileNotFoundError) as error:
        sys.stderr.write(f"asyncbento: {type(error).__name__}: {error}\n")
        return EXIT_FAILED


async def _run_interruptibly(args: argparse.Namespace, done: dict[int, str]) -> int:
    # Ctrl-C cancels the main task, so every `finally` runs (files flushed, connections closed).
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError, RuntimeError):
        assert task is not None
        loop.add_signal_handler(signal.SIGINT, task.cancel)
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        return await _dispatch(args, done)
    except asyncio.CancelledError:
        raise KeyboardInterrupt from None
