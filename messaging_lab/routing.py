"""WebSocket URL patterns, routed by `messaging_lab.asgi`.

Empty for now: the labs app adds its live-view consumer here (one frame stream per lab).
"""

from django.urls import URLPattern

websocket_urlpatterns: list[URLPattern] = []
