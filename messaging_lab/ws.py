"""What every WebSocket consumer of the site shares: bounded JSON text in, error frames out.

A message that is not text, is longer than :data:`MAX_MESSAGE_CHARS` or is not
JSON gets an ``{"type": "error", "message": …}`` frame and the socket stays
open; subclasses validate the decoded object in ``receive_json``.
"""

from __future__ import annotations

import json
from typing import Any

from channels.generic.websocket import AsyncJsonWebsocketConsumer

MAX_MESSAGE_CHARS = 4096


class BoundedJsonConsumer(AsyncJsonWebsocketConsumer):
    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any) -> None:
        if text_data is None or len(text_data) > MAX_MESSAGE_CHARS:
            await self._error(f"send JSON text of at most {MAX_MESSAGE_CHARS} characters")
            return
        try:
            content = json.loads(text_data)
        except ValueError:
            await self._error("that was not JSON")
            return
        await self.receive_json(content)

    async def _error(self, message: str) -> None:
        await self.send_json({"type": "error", "message": message})
