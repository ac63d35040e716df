from django.urls import path

from messaging_lab.exercises import practice_views as views

app_name = "practice"

urlpatterns = [
    path("", views.home, name="home"),
    path("start", views.start, name="start"),
    path("<int:session_id>/", views.round_page, name="round"),
    path("<int:session_id>/answer", views.answer, name="answer"),
    path("<int:session_id>/next", views.next_question, name="next"),
    path("<int:session_id>/demo", views.demo, name="demo"),
    path("<int:session_id>/demo/", views.demo_page, name="demo_page"),
    path("<int:session_id>/demo/run", views.run_demo, name="run_demo"),
]
