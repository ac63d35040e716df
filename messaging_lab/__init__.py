"""Messaging Lab's Django project: settings, the ASGI entry point, URLs, and (later) the apps that
adapt the core_log engine to the web. No engine logic lives here."""
