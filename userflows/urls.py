from django.urls import path, re_path

from userflows import views

app_name = "userflows"

# Ids are bounded to 18 digits: a longer number would overflow the database's integer.
urlpatterns = [
    path("exports/", views.exports_page, name="exports"),
    re_path(
        r"^exports/(?P<export_id>[0-9]{1,18})/status/$", views.export_status, name="export_status"
    ),
    path("billing/", views.billing_page, name="billing"),
    path("billing/payment-method/", views.billing_payment_method, name="billing_payment_method"),
    path("billing/cancel/", views.billing_cancel, name="billing_cancel"),
    path("billing/resume/", views.billing_resume, name="billing_resume"),
    path("billing/plan/", views.billing_plan, name="billing_plan"),
    re_path(r"^billing/invoices/(?P<invoice_id>[0-9]{1,18})/$", views.invoice_page, name="invoice"),
    re_path(
        r"^billing/invoices/(?P<invoice_id>[0-9]{1,18})/pdf/$",
        views.invoice_pdf,
        name="invoice_pdf",
    ),
    path("delete/", views.delete_page, name="delete"),
    path("delete/cancel/", views.delete_cancel, name="delete_cancel"),
]
