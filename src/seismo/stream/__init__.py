"""The live stream: topics with replay buffers, subscribers with bounded backlogs, one hub."""

from seismo.stream.hub import Hub
from seismo.stream.message import Message
from seismo.stream.subscriber import QueueSink, Subscriber, TransportSink

__all__ = ["Hub", "Message", "QueueSink", "Subscriber", "TransportSink"]
