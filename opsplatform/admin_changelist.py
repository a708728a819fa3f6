"""The admin's change list, hardened against hostile query strings.

Django turns most bad lookups into `?e=1` (IncorrectLookupParameters), but the date
hierarchy builds Python dates from the query string first: `?starts_on__year=9999` (the
year after is 10000) or a 25-digit year raise ValueError/OverflowError, a 500. Those become
IncorrectLookupParameters too, so the admin redirects to the list with `?e=1`.
"""

from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ChangeList


class SafeChangeList(ChangeList):
    def get_filters(self, request):
        try:
            return super().get_filters(request)
        except (OverflowError, ValueError) as exc:
            raise IncorrectLookupParameters(exc) from exc


class SafeChangeListMixin:
    """Mixed into every ModelAdmin (through the base admin classes)."""

    def get_changelist(self, request, **kwargs):
        base = super().get_changelist(request, **kwargs)
        if issubclass(base, SafeChangeList):
            return base
        return type(f"Safe{base.__name__}", (SafeChangeList, base), {})
