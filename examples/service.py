"""The example BentoML service: every input and output kind of the protocol, model-free.

Serve it with ``bentoml serve service:ExampleService`` from this folder. The tests and the
README's main job start it on 127.0.0.1; every answer is deterministic.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import pathlib
import tempfile
import typing as t
from http import HTTPStatus

import bentoml
import numpy as np
from bentoml.exceptions import (
    BentoMLException,
    InvalidArgument,
    NotFound,
    ServiceUnavailable,
    UnprocessableEntity,
)
from PIL import Image, ImageOps
from pydantic import BaseModel


class Inner(BaseModel):
    label: str
    score: float = 0.0


class Params(BaseModel):
    prompt: str
    width: int = 1
    height: int = 1
    nested: Inner | None = None


class Stats(BaseModel):
    count: int
    total: float
    mean: float
    minimum: float
    maximum: float


def _digest(path: pathlib.Path) -> tuple[int, str]:
    data = path.read_bytes()
    return len(data), hashlib.sha256(data).hexdigest()


def _temp_dir() -> pathlib.Path:
    return pathlib.Path(tempfile.mkdtemp(prefix="example-out-"))


def _error_for(code: int, message: str) -> Exception:
    """An exception the server turns into the given HTTP status."""
    known: dict[int, type[BentoMLException]] = {
        400: InvalidArgument,
        404: NotFound,
        422: UnprocessableEntity,
        503: ServiceUnavailable,
    }
    if code in known:
        return known[code](message)
    if code == 500:
        return RuntimeError(message)
    return BentoMLException(message, error_code=HTTPStatus(code))


@bentoml.service(
    name="example_service",
    threads=8,
    traffic={"timeout": 120},
    http={"response": {"trace_id": True}},  # answers also carry X-BentoML-Trace-ID
)
class ExampleService:
    # ------------------------------------------------------------------ JSON in and out

    @bentoml.api
    def summarize(self, text: str) -> str:
        """Count the words and echo the start of the text."""
        return f"{len(text.split())} words: {text[:20]}"

    @bentoml.api(route="/v1/math/add")
    def add(self, a: int, b: int = 0) -> int:
        return a + b

    @bentoml.api
    def stats(self, numbers: list[float]) -> Stats:
        total = float(sum(numbers))
        return Stats(
            count=len(numbers),
            total=total,
            mean=total / len(numbers) if numbers else 0.0,
            minimum=min(numbers) if numbers else 0.0,
            maximum=max(numbers) if numbers else 0.0,
        )

    @bentoml.api
    def echo(self, data: dict[str, t.Any]) -> dict[str, t.Any]:
        return data

    @bentoml.api
    def echo_list(self, items: list[t.Any]) -> list[t.Any]:
        return items

    @bentoml.api
    def echo_value(self, value: t.Any = None) -> t.Any:
        return value

    @bentoml.api
    def make_params(self, params: Params, seed: int = 0) -> Params:
        return params.model_copy(
            update={"width": params.width * 2, "prompt": f"{params.prompt}#{seed}"}
        )

    @bentoml.api
    def flags(self, flag: bool = False, ratio: float = 0.5, note: str | None = None) -> dict:
        return {"flag": flag, "ratio": ratio, "note": note}

    @bentoml.api
    def shout(self, text: str, /) -> str:
        return text.upper()

    @bentoml.api
    def sum_root(self, values: list[float], /) -> float:
        return float(sum(values))

    @bentoml.api
    def encode(
        self, sentences: list[str] = ["The sun dips below the horizon.", "A gentle breeze."]
    ) -> np.ndarray:
        rows = [
            [len(s), sum(c in "aeiou" for c in s.lower()), ord(s[0]) if s else 0, 1.0]
            for s in sentences
        ]
        return np.asarray(rows, dtype=float).reshape(len(sentences), 4)

    @bentoml.api
    def make_bytes(self, n: int = 16, start: int = 0) -> bytes:
        return bytes((start + i) % 256 for i in range(n))

    # ------------------------------------------------------------------ files

    @bentoml.api
    def file_size(self, f: pathlib.Path, /) -> dict[str, t.Any]:
        size, digest = _digest(f)
        return {"size": size, "sha256": digest, "name_suffix": f.name[-20:]}

    @bentoml.api
    def transcribe(
        self, audio_file: pathlib.Path, language: str = "en", word_timestamps: bool = True
    ) -> dict[str, t.Any]:
        size, digest = _digest(audio_file)
        return {
            "size": size,
            "sha256": digest,
            "language": language,
            "word_timestamps": word_timestamps,
            "filename_endswith": audio_file.name[-40:],
        }

    @bentoml.api
    def concat_files(self, files: list[pathlib.Path], separator: str = "") -> dict[str, t.Any]:
        chunks = [f.read_bytes() for f in files]
        joined = separator.encode().join(chunks)
        return {
            "count": len(chunks),
            "sha256": hashlib.sha256(joined).hexdigest(),
            "sizes": [len(c) for c in chunks],
        }

    @bentoml.api
    def describe_with_file(self, document: pathlib.Path, params: Params) -> dict[str, t.Any]:
        return {"size": document.stat().st_size, "params": params.model_dump()}

    @bentoml.api
    def invert_image(self, image: Image.Image) -> Image.Image:
        return ImageOps.invert(image.convert("RGB"))

    @bentoml.api
    def image_info(self, image: Image.Image) -> dict[str, t.Any]:
        return {"size": list(image.size), "mode": image.mode, "format": image.format}

    @bentoml.api
    def reverse_file(self, f: pathlib.Path) -> pathlib.Path:
        original = f.name
        out = _temp_dir() / f"reversed-{original}"
        out.write_bytes(f.read_bytes()[::-1])
        return out

    @bentoml.api
    def make_file(self, size: int = 1024, name: str = "data.bin") -> pathlib.Path:
        out = _temp_dir() / name
        out.write_bytes(bytes(i % 251 for i in range(size)))
        return out

    @bentoml.api
    def big_file(self, size_mb: int = 1) -> pathlib.Path:
        out = _temp_dir() / "big.bin"
        block = bytes(i % 251 for i in range(251 * 4096))
        remaining = size_mb * 1024 * 1024
        with open(out, "wb") as handle:
            while remaining > 0:
                piece = block[: min(remaining, len(block))]
                handle.write(piece)
                remaining -= len(piece)
        return out

    # ------------------------------------------------------------------ streams

    @bentoml.api
    def stream_sync(self, n: int = 5, prefix: str = "tok") -> t.Generator[str, None, None]:
        for i in range(n):
            yield f"{prefix}{i}\n"

    @bentoml.api
    async def stream_async(
        self, n: int = 5, delay: float = 0.0, prefix: str = "tok"
    ) -> t.AsyncGenerator[str, None]:
        for i in range(n):
            if delay:
                await asyncio.sleep(delay)
            yield f"{prefix}{i}\n"

    @bentoml.api
    async def stream_json(self, n: int = 5) -> t.AsyncGenerator[str, None]:
        """One JSON object per item, with no delimiter: parseable only item by item."""
        for i in range(n):
            yield json.dumps({"index": i, "token": f"tok{i}", "last": i == n - 1})

    @bentoml.api
    async def stream_unicode(self, n: int = 50) -> t.AsyncGenerator[str, None]:
        for i in range(n):
            yield f"héllo-🙂-日本-{i}\n"

    @bentoml.api
    async def stream_fail(
        self, n: int = 3, fail_before: bool = False
    ) -> t.AsyncGenerator[str, None]:
        if fail_before:
            raise ValueError("failed before the first item")
        for i in range(n):
            yield f"item{i}\n"
        raise ValueError("failed after the last item")

    # ------------------------------------------------------------------ slow and failing

    @bentoml.api
    async def slow(self, delay: float = 1.0) -> dict[str, float]:
        await asyncio.sleep(delay)
        return {"slept": delay}

    @bentoml.api
    def checked_sqrt(self, x: float) -> float:
        """The square root of ``x``; a 400 error for negative numbers."""
        if x < 0:
            raise InvalidArgument(f"x must be >= 0, got {x}")
        return float(x) ** 0.5

    @bentoml.api
    def fail(self, code: int = 500, message: str = "boom") -> str:
        raise _error_for(code, message)

    # ------------------------------------------------------------------ request context

    @bentoml.api
    def echo_headers(self, names: list[str], ctx: bentoml.Context) -> dict[str, t.Any]:
        """Every value of each request header asked for by name (a list per name, empty when
        absent), and the trace and span the server ran this call in."""
        from opentelemetry import trace

        span = trace.get_current_span().get_span_context()
        return {
            "headers": {name: ctx.request.headers.getlist(name) for name in names},
            "trace_id": format(span.trace_id, "032x") if span.is_valid else None,
            "span_id": format(span.span_id, "016x") if span.is_valid else None,
        }

    # ------------------------------------------------------------------ tasks

    @bentoml.task
    async def slow_square(self, x: int, delay: float = 0.5) -> dict[str, int]:
        await asyncio.sleep(delay)
        if x < 0:
            raise InvalidArgument("x must be >= 0")
        return {"x": x, "square": x * x}

    @bentoml.task
    def task_image(self, size: int = 8) -> Image.Image:
        return Image.new("RGB", (size, size), (size % 256, 0, 0))
