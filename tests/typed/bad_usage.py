"""A typed user script that misuses the generated clients: mypy must report each marked line.

Each ``# error:`` comment holds a piece of the message mypy has to give for that line.
"""

from __future__ import annotations

from example_client import ExampleServiceAsyncClient, ExampleServiceSyncClient


async def misuse_async(url: str) -> None:
    async with ExampleServiceAsyncClient(url) as client:
        await client.add(a="2")  # error: Argument "a" to "__call__" of "AddEndpoint"
        await client.summarize()  # error: Missing positional argument "text"
        await client.add(a=1, c=2)  # error: Unexpected keyword argument "c"
        await client.shout(text="x")  # error: Unexpected keyword argument "text"
        text: str = await client.add(1)  # error: Incompatible types in assignment
        task = await client.slow_square.submit(x="3")  # error: Argument "x" to "submit"
        await client.summarise(text="x")  # error: "NotAnEndpoint" not callable
        await client.slow_sqare.submit(x=3)  # error: "NotAnEndpoint" has no attribute "submit"
        print(text, task)


def misuse_sync(url: str) -> None:
    with ExampleServiceSyncClient(url) as client:
        client.transcribe(audio_file=1)  # error: Argument "audio_file" to "__call__"
        client.flags(ratio="high")  # error: Argument "ratio" to "__call__" of "FlagsSyncEndpoint"
        client.stats()  # error: Missing positional argument "numbers"
        client.make_params(params={"width": 2})  # error: "MakeParamsSyncEndpoint" has incompatible
        number: int = client.stream_sync()  # error: Incompatible types in assignment
        client.stream_synk()  # error: "NotAnEndpoint" not callable
        print(number)
