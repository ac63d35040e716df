"""Classroom routes, included at the site root: /join for students, /classroom/… for everything else."""

from django.urls import path

from messaging_lab.classroom import views

app_name = "classroom"

urlpatterns = [
    path("join", views.join, name="join"),
    path("classroom/", views.index, name="index"),
    path("classroom/login", views.LoginView.as_view(), name="login"),
    path("classroom/logout", views.LogoutView.as_view(), name="logout"),
    path("classroom/new", views.create, name="create"),
    path("classroom/<int:classroom_id>/", views.detail, name="detail"),
    path("classroom/<int:classroom_id>/roster", views.roster, name="roster"),
    path("classroom/<int:classroom_id>/present", views.present, name="present"),
    path("classroom/<int:classroom_id>/question", views.push, name="push"),
    path("classroom/<int:classroom_id>/questions", views.questions, name="questions"),
    path("classroom/<int:classroom_id>/question/<int:question_id>/reveal", views.reveal, name="reveal"),
    path("classroom/<int:classroom_id>/pause", views.pause, name="pause"),
    path("classroom/<int:classroom_id>/code", views.code, name="code"),
    path("classroom/<int:classroom_id>/delete", views.delete, name="delete"),
    path("classroom/<int:classroom_id>/fork", views.fork, name="fork"),
    path("classroom/<int:classroom_id>/guided", views.guided, name="guided"),
    path("classroom/<int:classroom_id>/mine", views.mine, name="mine"),
]
