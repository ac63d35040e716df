"""Site-wide pages. Views stay thin: they render, and later call a service; no engine logic here."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """The landing page: what Messaging Lab is and what is there so far."""
    return render(request, "home.html")
