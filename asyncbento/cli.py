"""The ``asyncbento`` command: describe a service, call one endpoint, or run a batch.

    asyncbento describe URL
    asyncbento call URL ENDPOINT [--json JSON] [key=value ...]
    asyncbento batch URL ENDPOINT --input IN.jsonl --output OUT.jsonl [--concurrency N] [--resume]
    asyncbento generate SOURCE --output MODULE.py [--class-name NAME] [--check]

Every command takes ``--token`` (default ``$BENTO_CLOUD_API_KEY``), ``--timeout``, ``--retries N``
(attempts in all) or ``--no-retry``, ``--server-ready-timeout``, and ``--header NAME:VALUE``
(repeatable) for headers on every request.

``call`` prints text outputs as they are, file outputs as their saved path, bytes raw (for
piping), streams chunk by chunk as they arrive, and everything else as JSON. A root-input
endpoint takes ``value=...`` or ``--json`` with any JSON value.

``batch`` reads one input per line: a JSON object of arguments (any JSON value for a root-input
endpoint). It writes one line per input, in completion order, flushed as results arrive::

    {"index": 0, "output": ...}
    {"index": 1, "error": {"type": "InvalidArgument", "error_code": 400, "message": "...",
                           "request_id": "81dbff7a2ecd6553"}}

``index`` is the input's 0-based line number. A line that is not JSON, blank lines included, is
reported on stderr with its line number and recorded as that index's error, never skipped; so is
every other rejected input (JSON that is not an object of arguments, an unknown argument, a 400
from the server): its error message starts with ``line N:``.
``request_id`` (and ``trace_id``) are in a record when the server's answer named itself, to
find the failure in the server's log.
Outputs that JSON cannot hold are converted: paths and images to their saved path, bytes to
base64, numpy values to lists. ``--resume`` keeps the successful lines of an earlier run and
redoes every other input, so that the output ends with exactly one line per input.

Exit codes: 0 all succeeded; 1 the call failed, or some batch inputs failed (each recorded);
2 usage errors (bad arguments, bad URL, unknown endpoint, unreadable input file); 128 + the
signal number when interrupted (130 for Ctrl-C), after writing every finished result.
"""

from __future__ import annotations

import argparse
import asyncio
import codecs
import contextlib
import inspect
import json
import os
import pathlib
import shutil
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, TextIO
from urllib.parse import urlsplit

import aiofiles
import msgspec

from ._batch import (
    Call,
    Overload,
    make_window,
    run_batch,
)
from ._client import AsyncHTTPClient
from ._codec import decode_json
from ._config import DEFAULT_RETRY, DEFAULT_TOTAL, RetryPolicy
from ._endpoints import AsyncEndpointMethod, resolve
from ._limiter import Window
from ._overload import endpoint_batch, task_batch
from ._progress import progress_figures
from ._records import error_record as plain_error_record
from ._transport import redact_url
from ._version import __version__
from .exceptions import (
    ArgumentValueError,
    BatchOverloaded,
    BentoMLException,
    EndpointNotFound,
    InvalidArgument,
)

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
_READ_BLOCK = 1 << 18


class UsageError(Exception):
    """A mistake in the command line or its inputs (exit code 2)."""


class MalformedLine(ArgumentValueError):
    """An input line that is not JSON (recorded as that input's error, code 400)."""


# ----------------------------------------------------------------------------- JSON out


def _output_hook(value: Any) -> Any:
    if (path := _saved_path(value)) is not None:
        return path  # a file or an image the client saved
    module = type(value).__module__
    if module == "numpy" or module.startswith("numpy."):
        return value.tolist()  # arrays and numpy scalars alike
    raise TypeError(f"cannot write a {type(value).__qualname__} output as JSON")


_ENCODER = msgspec.json.Encoder(enc_hook=_output_hook)
_DECODER = msgspec.json.Decoder()


def to_json(value: Any) -> bytes:
    """JSON for an output: paths and images as their path, bytes as base64, arrays as lists."""
    return _ENCODER.encode(value)


def error_record(error: BaseException, line: int | None = None) -> dict[str, Any]:
    """How a failed input is written: its type, error code (if any) and message, and the
    server's ``request_id`` / ``trace_id`` when its answer had them.

    With ``line`` (1-based), a rejected input's message starts with its line number.
    """
    record = plain_error_record(error)
    if line is not None and _rejected(error):
        record["message"] = f"line {line}: {record['message']}"
    for name in ("request_id", "trace_id"):
        if record[name] is None:
            del record[name]
    return record


def _rejected(error: BaseException) -> bool:
    # A malformed line is named (on stderr and in its message) when it is read.
    return isinstance(error, InvalidArgument) and not isinstance(error, MalformedLine)


def report_rejected(error: BaseException, line: int, stderr: TextIO) -> None:
    """Name a rejected input's line on stderr: refused by the client (not an object of
    arguments, an unknown argument, a missing file...) or by the server (400)."""
    if _rejected(error):
        message = error.message if isinstance(error, BentoMLException) else error
        stderr.write(f"asyncbento batch: line {line}: rejected input: {message}\n")


def _saved_path(value: Any) -> str | None:
    if isinstance(value, os.PathLike):
        return os.fsdecode(value)
    filename = getattr(value, "filename", None)
    if type(value).__module__.startswith("PIL.") and isinstance(filename, str) and filename:
        return filename
    return None


# ----------------------------------------------------------------------------- arguments


def build_parser() -> argparse.ArgumentParser:
    """The command line's parser (four sub-commands sharing the connection options)."""
    parser = argparse.ArgumentParser(
        prog="asyncbento",
        description="Call BentoML services from the command line.",
        epilog="Exit codes: 0 ok, 1 failures (recorded), 2 usage error, 130 interrupted.",
    )
    parser.add_argument("--version", action="version", version=f"asyncbento {__version__}")
    common = _common_options()
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_describe_and_generate(commands, common)
    _add_call(commands, common)
    _add_batch(commands, common)
    return parser


def _common_options() -> argparse.ArgumentParser:
    """The connection options every command takes."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--token", help="Bearer token (default: $BENTO_CLOUD_API_KEY)")
    common.add_argument(
        "--timeout", type=float, default=DEFAULT_TOTAL, help=f"seconds per call ({DEFAULT_TOTAL:g})"
    )
    common.add_argument(
        "--server-ready-timeout",
        type=float,
        default=None,
        help="seconds to wait for /readyz (default: --timeout; 0: do not wait)",
    )
    common.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="NAME:VALUE",
        help="a header for every request (repeatable)",
    )
    retries = common.add_mutually_exclusive_group()
    retries.add_argument(
        "--retries",
        type=int,
        default=None,
        metavar="N",
        help=f"attempts per call in all, the first included ({DEFAULT_RETRY.max_attempts})",
    )
    retries.add_argument("--no-retry", action="store_true", help="never retry a call")
    return common


Commands = Any  # argparse's sub-parsers action (a private type)


def _add_describe_and_generate(commands: Commands, common: argparse.ArgumentParser) -> None:
    describe = commands.add_parser(
        "describe", parents=[common], help="list the endpoints and their signatures"
    )
    describe.add_argument("url")

    generate = commands.add_parser(
        "generate", parents=[common], help="write a typed client module for a service"
    )
    generate.add_argument("source", help="the service's URL, or a saved /schema.json file")
    generate.add_argument("--output", required=True, metavar="MODULE.py", help="'-': stdout")
    generate.add_argument("--class-name", help="base of the class names (default: the service's)")
    generate.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if MODULE.py is out of date"
    )


def _add_call(commands: Commands, common: argparse.ArgumentParser) -> None:
    call = commands.add_parser("call", parents=[common], help="call one endpoint once")
    call.add_argument("url")
    call.add_argument("endpoint")
    call.add_argument(
        "--json",
        dest="json_arguments",
        metavar="JSON",
        help="arguments as a JSON object (any JSON value for a root input)",
    )
    call.add_argument(
        "arguments",
        nargs="*",
        metavar="key=value",
        help="one argument; JSON if it parses, else text",
    )
    call.add_argument("--download-dir", help="where file outputs are saved")


def _add_batch(commands: Commands, common: argparse.ArgumentParser) -> None:
    batch = commands.add_parser(
        "batch", parents=[common], help="call an endpoint once per line of a JSON Lines file"
    )
    batch.add_argument("url")
    batch.add_argument("endpoint")
    batch.add_argument("--input", required=True, metavar="IN.jsonl", help="one input per line")
    batch.add_argument("--output", required=True, metavar="OUT.jsonl", help="one result per line")
    batch.add_argument(
        "--concurrency",
        type=int,
        default=64,
        help="most calls in flight (64); fewer while the service refuses calls (429/503)",
    )
    batch.add_argument(
        "--fixed-window",
        action="store_true",
        help="keep --concurrency calls in flight; a refused call fails as any other",
    )
    batch.add_argument(
        "--resume", action="store_true", help="keep the successes in OUT, redo the rest"
    )
    batch.add_argument(
        "--tasks", action="store_true", help="submit each input as a task and wait for it"
    )
    batch.add_argument("--download-dir", help="where file outputs are saved")
    batch.add_argument(
        "--progress",
        choices=("auto", "on", "off"),
        default="auto",
        help="progress bar on stderr (auto: when stderr is a terminal)",
    )


def make_client(args: argparse.Namespace) -> AsyncHTTPClient:
    """The client the options describe (not entered yet)."""
    _check_url(args.url)
    retry: RetryPolicy | None = DEFAULT_RETRY
    if args.no_retry:
        retry = None
    elif args.retries is not None:
        if args.retries < 1:
            raise UsageError("--retries must be at least 1 (attempts in all)")
        retry = RetryPolicy(max_attempts=args.retries) if args.retries > 1 else None
    try:
        return AsyncHTTPClient(
            args.url,
            token=args.token,
            timeout=args.timeout,
            server_ready_timeout=args.server_ready_timeout,
            headers=_parse_headers(args.header),
            retry=retry,
            download_dir=getattr(args, "download_dir", None),
        )
    except (ValueError, TypeError) as error:
        raise UsageError(str(error)) from error


def _parse_headers(words: Sequence[str]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for word in words:
        name, colon, value = word.partition(":")
        if not colon or not name.strip():
            raise UsageError(f"--header takes NAME:VALUE, got {word!r}")
        headers[name.strip()] = value.strip()
    return headers


def _check_url(url: str) -> None:
    # The client accepts what BentoML's does; here a typo should be a usage error at once,
    # not a 30-second wait for a server that cannot exist.
    parts = urlsplit(url if "://" in url else f"http://{url}")
    shown = redact_url(url)  # never echo credentials
    try:
        parts.port  # noqa: B018 - parsing it is the check
    except ValueError:
        raise UsageError(f"bad port in URL {shown!r}") from None
    if any(ch.isspace() for ch in url) or (parts.scheme != "file" and not parts.hostname):
        raise UsageError(f"not a URL: {shown!r} (expected e.g. http://localhost:3000)")


def parse_json_option(text: str) -> Any:
    """The value of ``--json``."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise UsageError(f"--json is not valid JSON: {error}") from error
    except RecursionError:
        raise UsageError("--json is nested too deeply") from None


def parse_pairs(pairs: Sequence[str], json_arguments: str | None) -> dict[str, Any]:
    """``--json`` (an object) plus ``key=value`` words (each value JSON if it parses, else text)."""
    arguments: dict[str, Any] = {}
    if json_arguments is not None:
        parsed = parse_json_option(json_arguments)
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
        except RecursionError:
            raise UsageError(f"the value of {key!r} is nested too deeply") from None
    return arguments


def _method(client: AsyncHTTPClient, name: str) -> AsyncEndpointMethod:
    try:
        return resolve(client, name)
    except EndpointNotFound as error:
        raise UsageError(str(error)) from error  # the clients' own message, exit code 2


# ----------------------------------------------------------------------------- describe


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
    """``asyncbento describe``: one line per endpoint, streams and tasks marked."""
    async with make_client(args) as client:
        out.write(f"service {client.service_name} at {redact_url(client.url)}\n")
        for name, endpoint in sorted(client.endpoints.items()):
            signature = describe_signature(endpoint.signature)
            marks = [
                m for m, on in (("stream", endpoint.is_stream), ("task", endpoint.is_task)) if on
            ]
            output = endpoint.output.value
            suffix = f"  [{', '.join(marks)}]" if marks else ""
            out.write(f"  {name}{signature} -> {output}  POST {endpoint.route}{suffix}\n")
    return EXIT_OK


# ----------------------------------------------------------------------------- generate


def _read_or_none(path: pathlib.Path) -> str | None:
    return path.read_text(encoding="utf-8") if path.is_file() else None


async def _schema_document(args: argparse.Namespace) -> Any:
    source = pathlib.Path(args.source)
    if "://" not in args.source and await asyncio.to_thread(source.is_file):
        try:
            return json.loads(await asyncio.to_thread(source.read_bytes))
        except json.JSONDecodeError as error:
            raise UsageError(f"{args.source} is not a JSON /schema.json: {error}") from None
    args.url = args.source
    client = make_client(args)
    try:
        if args.server_ready_timeout != 0:  # wait for readiness as a client's set-up would
            await client.wait_until_server_ready(args.server_ready_timeout)
        return await client._schema_document()  # as served (a plain client embeds none)
    finally:
        await client.close()


async def generate(args: argparse.Namespace, out: TextIO, stderr: TextIO) -> int:
    """``asyncbento generate``: a typed client module from a URL or a saved schema."""
    from ._codegen import client_class_names
    from ._codegen import generate as generate_module

    document = await _schema_document(args)
    source = generate_module(document, args.class_name)
    target = pathlib.Path(args.output)
    if args.check:
        if await asyncio.to_thread(_read_or_none, target) != source:
            stderr.write(f"asyncbento: {target} is out of date: run without --check\n")
            return EXIT_FAILED
        return EXIT_OK
    if args.output == "-":
        out.write(source)
        return EXIT_OK
    await asyncio.to_thread(target.write_text, source, encoding="utf-8")
    names = " and ".join(client_class_names(document, args.class_name))
    stderr.write(f"wrote {target}: {names}, {len(document.get('routes', ()))} endpoints\n")
    return EXIT_OK


# ----------------------------------------------------------------------------- call


def _call_arguments(
    method: AsyncEndpointMethod, args: argparse.Namespace
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    endpoint = method.endpoint
    if endpoint.root is not None:
        if args.json_arguments is not None and not args.arguments:
            return (parse_json_option(args.json_arguments),), {}
        pairs = parse_pairs(args.arguments, None)
        if set(pairs) != {"value"} or args.json_arguments is not None:
            raise UsageError(
                f"{endpoint.name} takes one root input: pass value=... or --json VALUE"
            )
        return (pairs["value"],), {}
    arguments = parse_pairs(args.arguments, args.json_arguments)
    try:
        endpoint.bind((), arguments)  # unknown or missing arguments are usage errors
    except TypeError as error:
        raise UsageError(str(error)) from error
    return (), arguments


def _write_raw(out: TextIO, data: bytes) -> None:
    out.flush()
    buffer = getattr(out, "buffer", None)
    if buffer is None:
        out.write(data.decode("utf-8", errors="replace"))
    else:
        buffer.write(data)
        buffer.flush()


async def call(args: argparse.Namespace, out: TextIO) -> int:
    """``asyncbento call``: one call, its output on stdout."""
    async with make_client(args) as client:
        method = _method(client, args.endpoint)
        positional, keywords = _call_arguments(method, args)
        result = method(*positional, **keywords)
        if method.endpoint.is_stream:
            async for chunk in result:
                if isinstance(chunk, bytes):
                    _write_raw(out, chunk)
                else:
                    out.write(chunk)
                    out.flush()
            return EXIT_OK
        value = await result
    if isinstance(value, (bytes, bytearray)):
        _write_raw(out, bytes(value))  # raw, for piping into a file
    elif isinstance(value, str):
        out.write(value + "\n")
    elif (path := _saved_path(value)) is not None:
        out.write(path + "\n")
    else:
        out.write(to_json(value).decode("utf-8") + "\n")
    return EXIT_OK


# ----------------------------------------------------------------------------- batch files


def count_lines(path: pathlib.Path) -> int:
    """Input lines in ``path``, as :func:`read_lines` splits them."""
    count = 0
    last = b"\n"
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            count += block.count(b"\n")
            last = block[-1:]
    return count if last == b"\n" else count + 1


async def read_lines(path: pathlib.Path) -> AsyncIterator[bytes]:
    """The lines of ``path`` without their newline, read in large blocks off the event loop."""
    async with aiofiles.open(path, "rb") as handle:
        partial: list[bytes] = []
        while block := await handle.read(_READ_BLOCK):
            lines = block.split(b"\n")
            if len(lines) == 1:
                partial.append(block)  # a line longer than a block
                continue
            if partial:
                partial.append(lines[0])
                lines[0] = b"".join(partial)
            last = lines.pop()  # the start of the next line (empty after a newline)
            partial = [last] if last else []
            for line in lines:
                yield line
        if partial:
            yield b"".join(partial)


def parse_line(raw: bytes, index: int, stderr: TextIO) -> Any:
    """One input line's JSON, or a :class:`MalformedLine` (reported on stderr) standing in."""
    if index == 0 and raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8) :]
    if not raw.strip():
        problem = "blank line"
    else:
        try:
            return decode_json(raw, _DECODER)
        except (msgspec.DecodeError, ValueError) as error:
            problem = str(error)
    stderr.write(f"asyncbento batch: line {index + 1}: malformed input: {problem}\n")
    return MalformedLine(f"line {index + 1} is not valid JSON: {problem}")


async def numbered_inputs(
    path: pathlib.Path, skip: set[int], stderr: TextIO
) -> AsyncIterator[tuple[int, Any]]:
    """``(line index, input)`` for every line not in ``skip``, lazily."""
    index = -1
    async for raw in read_lines(path):
        index += 1
        if index not in skip:
            yield index, parse_line(raw, index, stderr)


class _Answered(msgspec.Struct):
    index: int
    output: msgspec.Raw | msgspec.UnsetType = msgspec.UNSET
    error: msgspec.Raw | msgspec.UnsetType = msgspec.UNSET


_ANSWERED = msgspec.json.Decoder(_Answered)


def answered_index(line: bytes) -> int | None:
    """The index of a successful output line, or None (an error, or a line cut short)."""
    try:
        record: _Answered = decode_json(line, _ANSWERED)
    except (msgspec.DecodeError, ValueError):
        return None
    if record.output is msgspec.UNSET or record.error is not msgspec.UNSET:
        return None
    return record.index


def prepare_output(target: pathlib.Path, resume: bool, inputs: int) -> set[int]:
    """Start the output file afresh, keeping (with ``resume``) one success per input.

    Without ``resume`` the file is emptied in place. With it, the kept lines are streamed into
    a new file that then atomically replaces the old one, so an interruption here loses nothing;
    the new file takes the old one's permissions, and a symbolic link is followed (the link
    stays, its target is replaced). Returns the indexes kept.
    """
    try:
        if not (resume and target.exists()):
            with open(target, "wb"):  # same file: its links, owner and permissions stay
                return set()
        real = target.resolve()
    except OSError as error:
        raise UsageError(f"cannot write {target}: {error}") from error
    temporary = real.with_name(f".{real.name}.{os.getpid()}.tmp")
    try:
        done = _keep_answered(real, temporary, inputs)
        shutil.copymode(real, temporary)
        os.replace(temporary, real)
    except BaseException as error:  # nothing half-done is left behind, whatever happened
        with contextlib.suppress(OSError):
            temporary.unlink()
        if isinstance(error, OSError):
            raise UsageError(f"cannot write {target}: {error}") from error
        raise
    return done


def _keep_answered(old_path: pathlib.Path, new_path: pathlib.Path, inputs: int) -> set[int]:
    done: set[int] = set()
    with open(new_path, "wb") as new, open(old_path, "rb") as old:
        for line in old:
            index = answered_index(line)
            # Lines for indexes the input does not have are stale: drop them.
            if index is not None and 0 <= index < inputs and index not in done:
                done.add(index)
                new.write(line if line.endswith(b"\n") else line + b"\n")
    return done


def prepare_batch(args: argparse.Namespace) -> tuple[int, set[int]]:
    """Check a batch's files before any connection; return the input count and kept indexes."""
    source = pathlib.Path(args.input)
    target = pathlib.Path(args.output)
    if args.concurrency < 1:
        raise UsageError("--concurrency must be at least 1")
    if not source.is_file():
        raise UsageError(f"no such input file: {source}")
    if target.exists() and target.resolve() == source.resolve():
        raise UsageError("--output must not be the --input file")
    try:
        inputs = count_lines(source)
    except OSError as error:
        raise UsageError(f"cannot read {source}: {error}") from error
    return inputs, prepare_output(target, args.resume, inputs)


class _Writer:
    """Appends output lines to a file; each write takes every line that finished during the
    last one.

    A write that fails (a full disk, a file size limit) stops the writer: ``failure`` holds the
    error, ``on_failure`` is called (the batch stops, as on Ctrl-C), later lines are dropped.
    """

    def __init__(self, path: pathlib.Path, on_failure: Callable[[], object]) -> None:
        self._path = path
        self._lines: list[bytes] = []
        self._wake = asyncio.Event()
        self._closing = False
        self._on_failure = on_failure
        self.failure: OSError | None = None

    async def __aenter__(self) -> _Writer:
        self._handle = await aiofiles.open(self._path, "ab")
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def add(self, line: bytes) -> None:
        if self.failure is None:
            self._lines.append(line)
            self._wake.set()

    async def _run(self) -> None:
        try:
            while self._lines or not self._closing:
                if not self._lines:
                    await self._wake.wait()
                    self._wake.clear()
                    continue
                lines, self._lines = self._lines, []
                await self._handle.write(b"".join(lines))
                await self._handle.flush()  # a crash or a Ctrl-C loses nothing written here
        except OSError as error:
            self.failure = error
            self._lines.clear()
            self._on_failure()

    async def close(self) -> None:
        """Write what is left and close the file (safe to call twice)."""
        if self._closing:
            return
        self._closing = True
        self._wake.set()
        await self._task
        try:
            await self._handle.close()
        except OSError as error:  # what a failed write left in the buffer cannot go either
            self.failure = self.failure or error


class _Meter:
    """A one-line progress display on stderr for when tqdm is not installed."""

    _EVERY = 0.25  # seconds between redraws

    def __init__(self, stream: TextIO, total: int, window: Window) -> None:
        self._stream = stream
        self._total = total
        self._window = window
        self._started = self._shown = time.monotonic()

    def show(self, done: int, failed: int, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self._shown < self._EVERY:
            return
        self._shown = now
        rate = done / (now - self._started) if now > self._started else 0.0
        left = (self._total - done) / rate if rate else 0.0
        self._stream.write(
            f"\r{done}/{self._total} calls, {rate:.1f}/s, ETA {left:.0f}s, "
            f"{progress_figures(self._window, failed)}\033[K"
        )
        if final:
            self._stream.write("\n")
        self._stream.flush()


def _tqdm_installed() -> bool:
    try:
        import tqdm  # noqa: F401
    except ImportError:
        return False
    return True


class _Recorder:
    """Records each input's outcome the moment its call ends, so that an interruption cannot
    lose a finished result; counts successes and failures.

    A call the service refused for overload is not recorded: the engine sends it again. Only
    if the batch's overload budget runs out does a ``BatchOverloaded`` come back from the
    engine, naming its input, to be recorded then (:meth:`overloaded`).
    """

    def __init__(self, call: Call, writer: _Writer, stderr: TextIO) -> None:
        self._call = call
        self._writer = writer
        self._stderr = stderr
        self.ok = self.failed = 0

    async def __call__(self, item: tuple[int, Any]) -> None:
        index, arguments = item
        try:
            if isinstance(arguments, MalformedLine):
                raise arguments
            output = await self._call(arguments)
            line = to_json({"index": index, "output": output})
        except Overload as overload:
            if not overload.resend:
                self._failure(index, overload.error)
            raise  # the engine shrinks its window (and sends a refused input again)
        except Exception as error:
            self._failure(index, error)
            raise  # counted as an error by the progress bar
        self.ok += 1
        self._writer.add(line + b"\n")

    def overloaded(self, error: BatchOverloaded) -> None:
        """Record an input the engine gave up on."""
        item: tuple[int, Any] = error.batch_input  # type: ignore[assignment]
        self._failure(item[0], error)

    def _failure(self, index: int, error: BaseException) -> None:
        self.failed += 1
        report_rejected(error, index + 1, self._stderr)
        record = error_record(error, index + 1)
        self._writer.add(to_json({"index": index, "error": record}) + b"\n")


async def batch(args: argparse.Namespace, inputs: int, done: set[int], stderr: TextIO) -> int:
    """``asyncbento batch``: every input line to the endpoint, every result to the output file."""
    todo = inputs - len(done)
    window = make_window(args.concurrency, not args.fixed_window)
    show = args.progress == "on" or (args.progress == "auto" and stderr.isatty())
    use_tqdm = show and _tqdm_installed()
    meter = _Meter(stderr, todo, window) if show and not use_tqdm else None
    counts = {"ok": 0, "failed": 0}
    started = time.monotonic()
    this_task = asyncio.current_task()
    assert this_task is not None
    writer: _Writer | None = None
    try:
        async with make_client(args) as client:
            call = _batch_call(client, args, window)
            async with _Writer(pathlib.Path(args.output), this_task.cancel) as writer:
                recorder = _Recorder(call, writer, stderr)
                results = run_batch(
                    recorder,
                    numbered_inputs(pathlib.Path(args.input), done, stderr),
                    window=window,
                    return_exceptions=True,
                    progress=use_tqdm,
                    description=args.endpoint,
                    total=todo,
                )
                try:
                    async for _, result in results:
                        if isinstance(result, BatchOverloaded):
                            recorder.overloaded(result)
                        if meter is not None:
                            meter.show(recorder.ok + recorder.failed, recorder.failed)
                finally:
                    await results.aclose()  # cancels the calls in flight
                    counts = {"ok": recorder.ok, "failed": recorder.failed}
                    await writer.close()
                    if meter is not None:
                        meter.show(recorder.ok + recorder.failed, recorder.failed, final=True)
    except asyncio.CancelledError:
        if writer is None or writer.failure is None:  # Ctrl-C or SIGTERM
            _summary(stderr, inputs, len(done), counts, time.monotonic() - started, window, True)
            raise
        getattr(this_task, "uncancel", lambda: None)()  # the write failure's own cancel
    elapsed = time.monotonic() - started
    failure = None if writer is None else writer.failure
    _summary(stderr, inputs, len(done), counts, elapsed, window, failure is not None)
    if failure is not None:  # stopped like Ctrl-C: what finished is recorded, --resume ends it
        stderr.write(f"asyncbento batch: stopped: cannot write {args.output}: {failure}\n")
        return EXIT_FAILED
    return EXIT_OK if counts["failed"] == 0 else EXIT_FAILED


def _batch_call(client: AsyncHTTPClient, args: argparse.Namespace, window: Window) -> Call:
    """What ``batch`` does with one input line's arguments."""
    _method(client, args.endpoint)  # an unknown endpoint is a usage error
    try:
        if args.tasks:
            return task_batch(client, args.endpoint, window, None)[0]
        return endpoint_batch(client, args.endpoint, window.adaptive)[0]
    except TypeError as error:
        raise UsageError(str(error)) from error


def _summary(
    stderr: TextIO,
    inputs: int,
    kept: int,
    counts: dict[str, int],
    elapsed: float,
    window: Window,
    interrupted: bool,
) -> None:
    ran = counts["ok"] + counts["failed"]
    rate = ran / elapsed if elapsed > 0 else 0.0
    succeeded = kept + counts["ok"]
    if interrupted:
        stderr.write(
            f"asyncbento batch: interrupted after {elapsed:.1f}s: {succeeded} succeeded, "
            f"{counts['failed']} failed, {inputs - kept - ran} not done of {inputs} inputs; "
            "run again with --resume to finish\n"
        )
    else:
        stderr.write(
            f"asyncbento batch: {inputs} inputs, {succeeded} succeeded, {counts['failed']} "
            f"failed in {elapsed:.1f}s ({rate:.1f}/s)\n"
        )
    if window.refused:
        stderr.write(
            f"asyncbento batch: the service refused {window.refused} calls for overload "
            f"(sent again); window {window.size} of --concurrency {window.ceiling}\n"
        )


# ----------------------------------------------------------------------------- entry point


class _Interrupted(Exception):
    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


async def _run(args: argparse.Namespace, batch_files: tuple[int, set[int]] | None) -> int:
    # SIGINT / SIGTERM cancel the command, so that every `finally` runs: finished results are
    # written, the output file and the connections are closed.
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    received: list[int] = []

    def stop(signum: int) -> None:
        received.append(signum)
        task.cancel()

    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop, signum)
    try:
        if args.command == "describe":
            return await describe(args, sys.stdout)
        if args.command == "call":
            return await call(args, sys.stdout)
        if args.command == "generate":
            return await generate(args, sys.stdout, sys.stderr)
        assert batch_files is not None
        return await batch(args, *batch_files, sys.stderr)
    except asyncio.CancelledError:
        if received:
            raise _Interrupted(received[0]) from None
        raise


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit code."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        # argparse takes `key=value` words only before the first option; accept them after.
        if args.command != "call" or any(word.startswith("-") for word in extra):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.arguments = [*args.arguments, *extra]
    try:
        batch_files = prepare_batch(args) if args.command == "batch" else None
        return asyncio.run(_run(args, batch_files))
    except UsageError as error:
        sys.stderr.write(f"asyncbento: error: {error}\n")
        return EXIT_USAGE
    except (_Interrupted, KeyboardInterrupt) as error:
        signum = error.signum if isinstance(error, _Interrupted) else signal.SIGINT
        if args.command != "batch":  # a batch has said what it finished
            sys.stderr.write("asyncbento: interrupted\n")
        return 128 + int(signum)
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): not an error of ours.
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silences the exit-time flush
        return EXIT_OK
    except BentoMLException as error:
        sys.stderr.write(f"asyncbento: {type(error).__name__}: {error.message}\n")
        if error.request_id is not None or error.trace_id is not None:  # for the server's log
            sys.stderr.write(
                f"asyncbento: request_id={error.request_id} trace_id={error.trace_id}\n"
            )
        return EXIT_FAILED
    except (OSError, TypeError, ValueError) as error:
        sys.stderr.write(f"asyncbento: {type(error).__name__}: {error}\n")
        return EXIT_FAILED
