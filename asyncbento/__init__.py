"""asyncbento: a fast, async-first client for BentoML services.

A drop-in replacement for ``bentoml.SyncHTTPClient`` / ``bentoml.AsyncHTTPClient`` built on
aiohttp, without the BentoML framework::

    async with asyncbento.AsyncHTTPClient("http://localhost:3000") as client:
        print(await client.summarize(text="..."))

    with asyncbento.SyncHTTPClient("http://localhost:3000") as client:
        print(client.summarize(text="..."))
"""

from . import exceptions
from ._client import AsyncHTTPClient
from ._config import NOT_GIVEN, Limits, RetryPolicy, Timeout
from ._endpoints import AsyncEndpointMethod, NotAnEndpoint
from ._limiter import Adaptive
from ._response import Response
from ._schema import Endpoint
from ._streaming import ServerSentEvent
from ._sync import SyncEndpointMethod, SyncHTTPClient, Task
from ._tasks import AsyncTask, ResultStatus
from ._version import __version__
from .exceptions import BentoMLException

__all__ = [
    "NOT_GIVEN",
    "Adaptive",
    "AsyncEndpointMethod",
    "AsyncHTTPClient",
    "AsyncTask",
    "BentoMLException",
    "Endpoint",
    "Limits",
    "NotAnEndpoint",
    "Response",
    "ResultStatus",
    "RetryPolicy",
    "ServerSentEvent",
    "SyncEndpointMethod",
    "SyncHTTPClient",
    "Task",
    "Timeout",
    "__version__",
    "exceptions",
]
