from django.urls import path

from support import views

app_name = "support"

urlpatterns = [
    path("", views.ticket_list, name="ticket_list"),
    path("new/", views.ticket_create, name="ticket_create"),
    path(
        "attachments/<int:attachment_id>/",
        views.attachment_download,
        name="attachment_download",
    ),
    path("<str:reference>/", views.ticket_detail, name="ticket_detail"),
    path("<str:reference>/reply/", views.ticket_reply, name="ticket_reply"),
    path("<str:reference>/status/", views.ticket_status, name="ticket_status"),
    path("<str:reference>/rate/", views.ticket_rate, name="ticket_rate"),
]
