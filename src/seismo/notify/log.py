"""The log channel: each notification as one WARNING line on the `seismo.alerts` logger.

For trying rules out and for sites that ship logs rather than run receivers. The line is the
title, `reason=`, `channel=` and the Alertmanager webhook JSON, so a log pipeline can parse it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import ClassVar

from seismo.notify.channel import Payload
from seismo.notify.message import Notification
from seismo.notify.webhook import Webhook

LOGGER = logging.getLogger("seismo.alerts")


@dataclass(frozen=True)
class Log:
    """Writes notifications to the `seismo.alerts` logger; nothing to retry."""

    kind: ClassVar[str] = "log"
    name: str

    def line(self, notification: Notification) -> str:
        """The log line: `[FIRING:1] HighCPU reason=first channel=ops {...webhook JSON}`."""
        body = Webhook(self.name).payload(notification).body.decode()
        return f"{notification.title} reason={notification.reason.value} channel={self.name} {body}"

    def payload(self, notification: Notification) -> Payload:
        return Payload("text/plain; charset=utf-8", self.line(notification).encode())

    def should_retry(self, status: int) -> bool:
        return False

    def write(self, notification: Notification) -> None:
        """Log the notification at WARNING."""
        LOGGER.warning("%s", self.line(notification))
