"""Batches against a real BentoML service that accepts 4 calls at once and answers 429 beyond
(``examples/capped_service.py``, 50 ms per call): with default settings, ``map``, ``imap``,
``map_tasks`` and ``asyncbento batch`` lose no input, return every result in order, and finish
within twice the ideal time (inputs x latency / capacity)."""

from __future__ import annotations

import json
import pathlib
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from _clients import opened_client
from _misbehaving import MisbehavingServer, error, ok
from _misbehaving import misbehaving as misbehaving
from _misbehaving import misbehaving_client as misbehaving_client

from asyncbento import Adaptive
from asyncbento import exceptions as exc

CAPACITY, LATENCY = 4, 0.05
INPUTS = 200
IDEAL = INPUTS * LATENCY / CAPACITY  # 2.5 s


@pytest.fixture
async def capped(client_kind: str, capped_url: str) -> AsyncIterator[Any]:
    async with opened_client(client_kind, capped_url) as opened:
        yield opened


async def test_map_loses_nothing_against_a_capped_service(capped: Any) -> None:
    started = time.monotonic()
    results = await capped.map("echo", ({"x": i} for i in range(INPUTS)))
    elapsed = time.monotonic() - started
    assert results == list(range(INPUTS))
    assert elapsed < 2 * IDEAL, f"{elapsed:.2f} s for an ideal {IDEAL:.2f} s"


@pytest.mark.parametrize("ordered", [False, True])
async def test_imap_loses_nothing_against_a_capped_service(capped: Any, ordered: bool) -> None:
    started = time.monotonic()
    pairs = [
        pair
        async for pair in capped.imap("echo", [{"x": i} for i in range(INPUTS)], ordered=ordered)
    ]
    elapsed = time.monotonic() - started
    assert sorted(pairs) == [(i, i) for i in range(INPUTS)]
    if ordered:
        assert [index for index, _ in pairs] == list(range(INPUTS))
    assert elapsed < 2 * IDEAL, f"{elapsed:.2f} s for an ideal {IDEAL:.2f} s"


async def test_map_tasks_loses_nothing_against_a_capped_service(capped: Any) -> None:
    started = time.monotonic()
    results = await capped.map_tasks("echo_task", [{"x": i} for i in range(INPUTS)], timeout=60)
    elapsed = time.monotonic() - started
    assert results == list(range(INPUTS))
    # A running task holds one of the 4 request slots until it ends, so its submission, status
    # polls and get all compete with the tasks themselves: the batch must see a task end soon
    # after it does (a learned poll time) and wait out refused polls briefly.
    assert elapsed < 2 * IDEAL, f"{elapsed:.2f} s for an ideal {IDEAL:.2f} s"


async def test_a_fixed_window_loses_inputs_where_the_adaptive_one_does_not(
    client_kind: str, capped_url: str
) -> None:
    inputs = [{"x": i} for i in range(40)]
    async with opened_client(client_kind, capped_url, retry=None) as quick:
        fixed = await quick.map(
            "echo", inputs, concurrency=16, adaptive=False, return_exceptions=True
        )
        adaptive = await quick.map("echo", inputs, concurrency=16)
    refused = [r for r in fixed if isinstance(r, exc.TooManyRequests)]
    assert refused, "16 at once against a service capped at 4 must see 429s"
    assert all(r == i for i, r in enumerate(fixed) if not isinstance(r, Exception))
    assert adaptive == list(range(40))  # even with retries off: a refusal is not an attempt


def test_cli_batch_with_defaults_loses_nothing(capped_url: str, tmp_path: pathlib.Path) -> None:
    count = 300
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"x": i}) + "\n" for i in range(count)))
    target = tmp_path / "out.jsonl"
    result = subprocess.run(
        [sys.executable, "-m", "asyncbento", "batch", capped_url, "echo"]
        + ["--input", str(source), "--output", str(target), "--progress", "on"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in target.read_text().splitlines()]
    assert sorted((r["index"], r["output"]) for r in records) == [(i, i) for i in range(count)]
    summary = re.search(r"(\d+) succeeded, (\d+) failed in ([\d.]+)s", result.stderr)
    assert summary is not None, result.stderr
    assert summary.group(1, 2) == (str(count), "0")
    assert float(summary.group(3)) < 2 * count * LATENCY / CAPACITY
    assert re.search(r"refused \d+ calls for overload \(sent again\); window \d+ of", result.stderr)
    assert re.search(r"window=\d+/64 refused=[1-9]\d* errors=0", result.stderr)  # the bar


# ----------------------------------------------------------------------------- faults on demand


async def test_refusals_are_resent_outside_the_retry_policy(
    misbehaving_client: Any, misbehaving: MisbehavingServer
) -> None:
    client = misbehaving_client
    # The client's policy allows 3 attempts: five refusals of one input in a row would fail a
    # plain call, but the batch sends the input again each time instead, Retry-After honoured.
    misbehaving.script(
        "/echo",
        *[error(429, "Too many requests") for _ in range(4)],
        error(503, "scaling", retry_after="0.3"),
    )
    started = time.monotonic()
    results = await client.map("echo", [{"data": {"i": i}} for i in range(3)], concurrency=1)
    assert results == [{"data": {"i": i}} for i in range(3)]
    assert misbehaving.count("/echo") == 3 + 5
    assert time.monotonic() - started >= 0.25  # the Retry-After paused the batch


async def test_overload_budget_gives_up_with_the_input(
    misbehaving_client: Any, misbehaving: MisbehavingServer
) -> None:
    client = misbehaving_client
    misbehaving.default("/echo", error(429, "Too many requests"))
    inputs = [{"data": {"i": i}} for i in range(20)]
    started = time.monotonic()
    results = await client.map(
        "echo", inputs, adaptive=Adaptive(max_stall=0.3), return_exceptions=True
    )
    assert time.monotonic() - started < 5
    assert all(isinstance(r, exc.BatchOverloaded) for r in results)
    assert [r.batch_input for r in results] == inputs
    assert misbehaving.count("/echo") < 20 * 3  # given up, not hammered


TASK_ID = "c" * 32


async def test_task_polls_refused_for_load_are_waited_out(
    misbehaving_client: Any, misbehaving: MisbehavingServer
) -> None:
    # A running BentoML task holds a request slot, so a full service refuses polls: five
    # refused polls and a refused get (the client's policy allows 3 attempts) are waited out
    # by the batch, briefly, and the input still gets its output.
    misbehaving.script("/job/submit", ok({"task_id": TASK_ID, "status": "in_progress"}))
    misbehaving.script("/job/status", *[error(429, "Too many requests") for _ in range(5)])
    misbehaving.default("/job/status", ok({"task_id": TASK_ID, "status": "completed"}))
    misbehaving.script("/job/get", error(503, "scaling"))
    misbehaving.default("/job/get", ok({"data": {"i": 7}}))
    started = time.monotonic()
    results = await misbehaving_client.map_tasks("job", [{"data": {"i": 7}}], concurrency=1)
    assert results == [{"data": {"i": 7}}]
    assert misbehaving.count("/job/submit") == 1  # the task exists: never submitted twice
    assert misbehaving.count("/job/status") == 6
    assert misbehaving.count("/job/get") == 2
    assert time.monotonic() - started < 2  # paced in milliseconds, not the policy's backoff


async def test_a_failed_task_whose_own_error_is_503_fails_its_input(
    misbehaving_client: Any, misbehaving: MisbehavingServer
) -> None:
    # The stored answer of a failed task is its own error, whatever its status: not a refusal
    # to wait out (that would poll forever).
    misbehaving.default("/job/submit", ok({"task_id": TASK_ID, "status": "in_progress"}))
    misbehaving.default("/job/status", ok({"task_id": TASK_ID, "status": "failed"}))
    misbehaving.default("/job/get", error(503, "the model is not loaded"))
    results = await misbehaving_client.map_tasks(
        "job", [{"data": {"i": 1}}], return_exceptions=True
    )
    assert isinstance(results[0], exc.ServiceUnavailable)
    assert "the model is not loaded" in str(results[0])
    assert misbehaving.count("/job/get") == 1


async def test_a_fixed_window_leaves_refused_polls_to_the_retry_policy(
    misbehaving_client: Any, misbehaving: MisbehavingServer
) -> None:
    misbehaving.default("/job/submit", ok({"task_id": TASK_ID, "status": "in_progress"}))
    misbehaving.default("/job/status", error(429, "Too many requests"))
    results = await misbehaving_client.map_tasks(
        "job", [{"data": {"i": 1}}], adaptive=False, return_exceptions=True
    )
    assert isinstance(results[0], exc.TooManyRequests)
    assert misbehaving.count("/job/status") == 3  # the policy's 3 attempts, then the input fails


async def test_a_learned_first_poll_never_outlasts_the_timeout(
    misbehaving: MisbehavingServer,
) -> None:
    from asyncbento import AsyncHTTPClient
    from asyncbento._pace import LearnedPace

    misbehaving.default("/job/submit", ok({"task_id": TASK_ID, "status": "in_progress"}))
    misbehaving.default("/job/status", ok({"task_id": TASK_ID, "status": "in_progress"}))
    pace = LearnedPace(wait_out_refusals=True)
    for _ in range(40):  # tasks that took long: the batch now polls first after seconds
        pace.after_running(pace.first(), 1)
    assert pace.first() > 10
    async with AsyncHTTPClient(misbehaving.url, retry=None) as client:
        task = await client.job.submit(data={"i": 1})
        started = time.monotonic()
        with pytest.raises(exc.TaskTimeout):
            await task._wait(0.3, pace)
        assert time.monotonic() - started < 1.5
    assert misbehaving.count("/job/status") >= 1


async def test_polls_refused_past_the_overload_budget_fail_the_input(
    misbehaving_client: Any, misbehaving: MisbehavingServer
) -> None:
    misbehaving.default("/job/submit", ok({"task_id": TASK_ID, "status": "in_progress"}))
    misbehaving.default("/job/status", error(429, "Too many requests"))
    started = time.monotonic()
    results = await misbehaving_client.map_tasks(
        "job", [{"data": {"i": 1}}], adaptive=Adaptive(max_stall=0.5), return_exceptions=True
    )
    assert time.monotonic() - started < 3
    [given_up] = results
    assert isinstance(given_up, exc.BatchOverloaded)
    assert isinstance(given_up.__cause__, exc.TooManyRequests)
    assert misbehaving.count("/job/submit") == 1  # the task exists: never submitted again
    assert misbehaving.count("/job/status") >= 3


def test_refused_task_polls_are_counted_in_the_batch_summary(
    misbehaving: MisbehavingServer, tmp_path: pathlib.Path
) -> None:
    misbehaving.script("/job/submit", ok({"task_id": TASK_ID, "status": "in_progress"}))
    misbehaving.script("/job/status", *[error(429, "Too many requests") for _ in range(3)])
    misbehaving.default("/job/status", ok({"task_id": TASK_ID, "status": "completed"}))
    misbehaving.default("/job/get", ok({"data": {"i": 1}}))
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"data": {"i": 1}}) + "\n")
    target = tmp_path / "out.jsonl"
    result = subprocess.run(
        [sys.executable, "-m", "asyncbento", "batch", misbehaving.url, "job", "--tasks"]
        + ["--input", str(source), "--output", str(target), "--progress", "off"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert [json.loads(line) for line in target.read_text().splitlines()] == [
        {"index": 0, "output": {"data": {"i": 1}}}
    ]
    assert "the service refused 3 calls for overload" in result.stderr
