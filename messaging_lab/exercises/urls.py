from django.urls import path

from messaging_lab.exercises import views

app_name = "exercises"

urlpatterns = [
    path("", views.index, name="index"),
    path("<slug:exercise_id>/", views.lab, name="lab"),
    path("<slug:exercise_id>/start", views.start, name="start"),
    path("<slug:exercise_id>/panel", views.panel, name="panel"),
    path("<slug:exercise_id>/answer", views.answer, name="answer"),
    path("<slug:exercise_id>/next", views.next_step, name="next"),
    path("<slug:exercise_id>/hint", views.hint, name="hint"),
    path("<slug:exercise_id>/show-me", views.show_me, name="show_me"),
]
