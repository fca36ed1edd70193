"""Ray Data integration: a local Ray, the real example service, two actors.

Runs in its own tox environment (``tox -e ray``); skipped where Ray is not installed.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator
from typing import Any

import pytest

ray = pytest.importorskip("ray")

from asyncbento.exceptions import NotFound  # noqa: E402
from asyncbento.integrations.ray import BentoMLBatchCaller  # noqa: E402

# Ray's own deprecation notices are not ours to fix.
pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
]


@pytest.fixture(scope="module")
def local_ray() -> Iterator[Any]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


ROWS = 3000


def sqrt_dataset() -> Any:
    values = [float(i) if i % 97 else -float(i + 1) for i in range(ROWS)]
    return ray.data.from_items([{"row": i, "x": v} for i, v in enumerate(values)]), values


@pytest.mark.parametrize("batch_format", ["pandas", "numpy"])
def test_every_row_answered_in_order(local_ray: Any, example_url: str, batch_format: str) -> None:
    dataset, values = sqrt_dataset()
    results = dataset.map_batches(
        BentoMLBatchCaller,
        fn_constructor_kwargs={"url": example_url, "endpoint": "checked_sqrt", "concurrency": 16},
        concurrency=2,
        batch_size=250,
        batch_format=batch_format,
    )
    rows = results.take_all()
    assert len(rows) == ROWS
    seen = set()
    failures = 0
    for row in rows:
        index = int(row["row"])
        seen.add(index)
        if values[index] >= 0:
            assert row["error"] is None
            assert math.isclose(row["output"], math.sqrt(values[index]))
        else:
            failures += 1
            assert row["output"] is None
            assert row["error"]["type"] == "InvalidArgument"
            assert row["error"]["error_code"] == 400
            assert "x must be >= 0" in row["error"]["message"]
            assert row["error"]["request_id"], "the server's answer named itself"
    assert seen == set(range(ROWS))
    assert failures == len([v for v in values if v < 0])


async def test_rows_keep_their_order_within_a_batch(example_url: str) -> None:
    import pandas

    caller = BentoMLBatchCaller(example_url, "add", concurrency=8)
    frame = pandas.DataFrame({"a": list(range(100)), "b": [1] * 100, "other": ["x"] * 100})
    result = await caller(frame)
    assert list(result["output"]) == [i + 1 for i in range(100)]
    assert list(result["error"]) == [None] * 100
    assert list(result["other"]) == ["x"] * 100


async def test_column_mapping_and_root_input(example_url: str) -> None:
    import numpy

    caller = BentoMLBatchCaller(example_url, "add", columns={"a": "left", "b": "right"})
    batch = {"left": numpy.arange(5), "right": numpy.arange(5)}
    assert list((await caller(batch))["output"]) == [0, 2, 4, 6, 8]
    shout = BentoMLBatchCaller(example_url, "shout", columns={"value": "text"})
    assert list((await shout({"text": numpy.array(["a", "b"])}))["output"]) == ["A", "B"]
    with pytest.raises(KeyError):
        await caller({"nope": numpy.arange(2)})


async def test_rows_of_several_batches_share_one_window(example_url: str) -> None:
    # Ray Data gives an async actor several batches at once; while one batch waits for its
    # slow row, the other batches' rows keep going, all within the actor's one window.
    import pandas

    caller = BentoMLBatchCaller(example_url, "slow", concurrency=8)
    frames = [pandas.DataFrame({"delay": [0.5] + [0.01] * 19}) for _ in range(4)]
    started = asyncio.get_running_loop().time()
    results = await asyncio.gather(*(caller(frame) for frame in frames))
    elapsed = asyncio.get_running_loop().time() - started
    for result in results:
        assert [r["slept"] for r in result["output"]] == [0.5] + [0.01] * 19
    # Per-batch calls would take 4 x 0.5 s one batch after another; here the slow rows overlap.
    assert elapsed < 1.5


async def test_bad_arguments_are_refused_when_the_caller_is_made(example_url: str) -> None:
    with pytest.raises(NotFound, match="nope"):
        BentoMLBatchCaller(example_url, "nope")
    with pytest.raises(TypeError, match="concurrency must be an integer"):
        BentoMLBatchCaller(example_url, "add", concurrency=2.5)  # type: ignore[arg-type]
