"""The Python client of a seismo server: REST calls and live-stream subscriptions.

`Client` blocks, `AsyncClient` is for asyncio and can `subscribe()` to the stream;
`ModelMonitor` records a model's predictions in the background. See docs/client.md.
"""

from seismo.client.backoff import Backoff
from seismo.client.monitor import ModelMonitor
from seismo.client.rest import DEFAULT_URL, AsyncClient, Client
from seismo.client.stream import Subscription

__all__ = ["DEFAULT_URL", "AsyncClient", "Backoff", "Client", "ModelMonitor", "Subscription"]
