from django.urls import path

from messaging_lab.labs import views

app_name = "labs"

urlpatterns = [
    path("", views.lab_list, name="list"),
    path("new", views.lab_create, name="create"),
    path("import", views.lab_import, name="import"),
    path("watch/<str:share_token>/", views.lab_watch, name="watch"),
    path("<str:lab_id>/", views.lab_detail, name="detail"),
    path("<str:lab_id>/delete", views.lab_delete, name="delete"),
    path("<str:lab_id>/command", views.lab_command, name="command"),
    path("<str:lab_id>/probe", views.lab_probe, name="probe"),
    path("<str:lab_id>/state.json", views.lab_state, name="state"),
    path("<str:lab_id>/explore", views.lab_explore, name="explore"),
    path("<str:lab_id>/timeline.json", views.lab_timeline, name="timeline"),
    path("<str:lab_id>/rewind", views.lab_rewind, name="rewind"),
    path("<str:lab_id>/fork", views.lab_fork, name="fork"),
    path("<str:lab_id>/compare", views.lab_compare, name="compare"),
    path("<str:lab_id>/wire", views.lab_wire, name="wire"),
    path("<str:lab_id>/export.json", views.lab_export, name="export"),
]
