"""The baseline: one Django view with no middleware, no database and no templates, served by
the same gunicorn settings as the product. The load report divides by its throughput."""

import django
from django.conf import settings
from django.core.wsgi import get_wsgi_application
from django.http import HttpResponse
from django.urls import path


def ok(request):
    return HttpResponse(b'{"status": "ok"}', content_type="application/json")


settings.configure(
    DEBUG=False,
    SECRET_KEY="loadtest-bare-view-only",
    ALLOWED_HOSTS=["127.0.0.1"],
    ROOT_URLCONF=__name__,
    MIDDLEWARE=[],
    INSTALLED_APPS=[],
    DATABASES={},
)
urlpatterns = [path("bare", ok)]
django.setup()
application = get_wsgi_application()
