"""The one decorator for customer pages: a signed-in customer with an account, or 403.

    @customer_page
    def billing(request, account): ...

Staff never act as a customer: a staff login (even one that somehow owns an account) gets the
no-account page, as does a signed-in user without an account. Anonymous visitors go to login.
"""

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from opsplatform.tenancy import account_of, is_staff


def customer_page(view):
    @login_required
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        account = None if is_staff(request.user) else account_of(request.user)
        if account is None:
            return render(request, "account/no_account.html", status=403)
        return view(request, account, *args, **kwargs)

    return wrapper


def customer_page_view(view):
    """The same checks for a class-based view's `dispatch` (the view keeps its signature)."""

    @login_required
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if is_staff(request.user) or account_of(request.user) is None:
            return render(request, "account/no_account.html", status=403)
        return view(request, *args, **kwargs)

    return wrapper
