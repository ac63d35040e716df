"""URL routes of the site. Apps add their own `urls.py` here with `include()` as they arrive."""

from django.urls import include, path

from messaging_lab import views

urlpatterns = [
    path("", views.home, name="home"),
    path("labs/", include("messaging_lab.labs.urls")),
    path("learn/", include("messaging_lab.exercises.urls")),
    path("practice/", include("messaging_lab.exercises.practice_urls")),
    path("", include("messaging_lab.classroom.urls")),  # /join and /classroom/…
]
