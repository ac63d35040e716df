"""The ASGI entry point Daphne serves: HTTP goes to Django, WebSockets to Channels consumers.

Run with `daphne messaging_lab.asgi:application` (scripts/serve.sh does).
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "messaging_lab.settings")

# Build the Django app first: it populates the app registry, which anything importing models
# (consumers, via routing) needs. Channels imports come after it for the same reason.
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from messaging_lab.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # Refuse WebSocket handshakes whose Origin is not in ALLOWED_HOSTS (cross-site hijacking),
        # then attach the session user, as Django's middleware does for HTTP.
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)
