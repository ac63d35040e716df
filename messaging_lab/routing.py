"""WebSocket URL patterns, routed by `messaging_lab.asgi`: one live frame stream per lab."""

from django.urls import path

from messaging_lab.classroom.consumers import ClassroomConsumer
from messaging_lab.labs.consumers import LabLiveConsumer

websocket_urlpatterns = [
    path("ws/labs/<str:lab_id>/", LabLiveConsumer.as_asgi()),
    path("ws/watch/<str:share>/", LabLiveConsumer.as_asgi()),
    path("ws/classroom/<int:classroom_id>/", ClassroomConsumer.as_asgi()),
]
