"""The live view's WebSocket: a full snapshot on connect, then the runtime's delta frames.

Inbound messages are small JSON objects: ``{"type": "ping"}`` or
``{"type": "command", "command": {"kind": ...}}``. Anything else — bad JSON, too
large, an unknown type, a command from a read-only viewer — is answered with an
``{"type": "error", "message": ...}`` frame; the connection stays open.
"""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async

from messaging_lab.ws import BoundedJsonConsumer

from core_log.lab import LabCommandError
from messaging_lab.labs.models import Lab
from messaging_lab.labs.runtime import group_name, runtime



@database_sync_to_async
def _find_lab(lab_id: str | None, share: str | None, session_key: str | None) -> Lab | None:
    if share is not None:
        return Lab.objects.filter(share_token=share).first()
    if lab_id is None or not session_key:
        return None
    return Lab.objects.filter(pk=lab_id, owner_session=session_key).first()


class LabLiveConsumer(BoundedJsonConsumer):
    lab_id: str | None = None
    read_only = True

    async def connect(self) -> None:
        kwargs = self.scope["url_route"]["kwargs"]
        session = self.scope.get("session")
        lab = await _find_lab(kwargs.get("lab_id"), kwargs.get("share"), getattr(session, "session_key", None))
        if lab is None:
            await self.close(code=4404)
            return
        self.read_only = "share" in kwargs
        await self.accept()
        await self.channel_layer.group_add(group_name(lab.pk), self.channel_name)
        self.lab_id = lab.pk
        snapshot = await runtime.acall(lambda: runtime.join(lab.pk))
        await self.send_json({**snapshot, "read_only": self.read_only})

    async def disconnect(self, code: int) -> None:
        if self.lab_id is not None:
            lab_id = self.lab_id
            await self.channel_layer.group_discard(group_name(lab_id), self.channel_name)
            await runtime.acall(lambda: runtime.leave(lab_id))

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if not isinstance(content, dict) or content.get("type") not in ("ping", "command"):
            await self._error("messages are {\"type\": \"ping\"} or {\"type\": \"command\", \"command\": {...}}")
            return
        if content["type"] == "ping":
            await self.send_json({"type": "pong"})
            return
        if self.read_only:
            await self._error("this is a read-only view of someone else's lab; commands are not accepted")
            return
        command = content.get("command")
        if not isinstance(command, dict) or not isinstance(command.get("kind"), str):
            await self._error("a command needs an object with a 'kind'")
            return
        lab_id = self.lab_id
        assert lab_id is not None
        try:
            result = await runtime.acall(lambda: runtime.apply(lab_id, command))
        except (LabCommandError, TypeError, ValueError) as exc:
            await self._error(str(exc))
            return
        await self.send_json({"type": "result", "result": result})

    async def lab_frame(self, event: dict[str, Any]) -> None:
        await self.send(text_data=event["text"])  # the runtime encoded the frame once for every viewer
