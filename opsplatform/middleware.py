"""Turns domain errors escaping a page view into the matching HTTP page (never a 500)."""

from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import render

from opsplatform.errors import DomainError, Forbidden, NotFound


class DomainErrorMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exc):
        if not isinstance(exc, DomainError):
            return None
        if isinstance(exc, NotFound):
            raise Http404(exc.detail)
        if isinstance(exc, Forbidden):
            raise PermissionDenied(exc.detail)
        return render(request, "error.html", {"detail": exc.detail}, status=exc.status_code)
