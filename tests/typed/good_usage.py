"""A typed user script: correct use of the generated example-service clients (mypy passes).

``tests/test_codegen.py`` copies it next to the generated ``example_client`` module and runs
``mypy --strict`` on both; every ``assert_type`` pins what an endpoint returns.
"""

from __future__ import annotations

import pathlib
from typing import Any

import numpy.typing as npt
from clash_client import ClashServiceSyncClient
from example_client import ExampleServiceAsyncClient, ExampleServiceSyncClient, Params, Stats
from PIL import Image
from pydantic import BaseModel
from typing_extensions import assert_type

from asyncbento import ResultStatus, ServerSentEvent


class Inner(BaseModel):
    label: str


class ParamsModel(BaseModel):
    prompt: str
    nested: Inner | None = None


async def use_async(url: str) -> None:
    async with ExampleServiceAsyncClient(url, check_schema=True) as client:
        assert_type(await client.add(1, b=2), int)
        assert_type(await client.summarize(text="a b"), str)
        assert_type(await client.shout("hi"), str)
        assert_type(await client.sum_root([1, 2.5]), float)
        assert_type(await client.stats(numbers=[1.0, 2]), Stats)
        assert_type(await client.make_params({"prompt": "p", "width": 2}, seed=1), Params)
        assert_type(await client.make_params(ParamsModel(prompt="p")), Params)
        assert_type(await client.encode(), npt.NDArray[Any])
        assert_type(await client.make_bytes(n=3), bytes)
        assert_type(await client.make_file(size=1), pathlib.Path)
        assert_type(await client.invert_image(image=pathlib.Path("x.png")), Image.Image)
        assert_type(await client.flags(note=None), dict[str, Any])
        assert_type(await client.concat_files([b"a", pathlib.Path("b")]), dict[str, Any])
        assert_type(await client.slow(), dict[str, float])
        async for chunk in client.stream_async(n=2):
            assert_type(chunk, str)
        async for event in client.stream_sync.events():
            assert_type(event, ServerSentEvent)
        task = await client.slow_square.submit(x=3)
        assert_type(await task.get_status(), ResultStatus)
        assert_type(await task.result(timeout=5), dict[str, int])
        assert_type(await (await task.retry()).wait(), dict[str, int])
        assert_type(await client.slow_square.get(task.id), dict[str, int])
        image_task = await client.task_image.submit()
        assert_type(await image_task.result(), Image.Image)
        view = client.with_options(timeout=5)
        assert_type(await view.add(1), int)


def use_sync(url: str) -> None:
    with ExampleServiceSyncClient(url) as client:
        assert_type(client.add(1, 2), int)
        assert_type(client.transcribe(audio_file="audio.txt", language="fr"), dict[str, Any])
        assert_type(client.file_size(b"bytes"), dict[str, Any])
        assert_type(client.reverse_file(f=open("f", "rb")), pathlib.Path)  # noqa: SIM115
        assert_type(client.echo_value(value=[1, "x"]), Any)
        for chunk in client.stream_unicode(n=1):
            assert_type(chunk, str)
        task = client.slow_square.submit(2, delay=0.1)
        assert_type(task.result(), dict[str, int])
        assert_type(task.get_status(), ResultStatus)
    with ClashServiceSyncClient(url) as clash:
        assert_type(clash.api_url(x=2), int)  # 'url' clashes with the client's own url
        assert_type(clash.url, str)
