"""The one admin base every app builds on (ADR 0003: the admin runs on django-unfold).

- `BaseAdmin`: Unfold's ModelAdmin; `HistoryAdmin` adds simple-history's views.
- `ReadOnlyAdmin` / `ReadOnlyHistoryAdmin`: rows that change only through services.
- `ReadOnlyInline`: a tabular inline nobody can add to, change or delete from.
- `badge()` and `status_badge()`: colour-coded status labels (Unfold's label styles).
- `confirm()`: the intermediate page in Unfold's layout that destructive actions (and every
  detail button that changes data) show first; only a POST with `confirm=yes` acts.
- `tabbed_fieldsets()`: a change page split into tabs.
- `sidebar_navigation()`: the sidebar, one group per app, listing only what the user may see.
"""

from collections.abc import Callable, Iterable

from django.contrib import messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.templatetags.static import static
from django.urls import NoReverseMatch, reverse
from django.utils.safestring import SafeString, mark_safe
from simple_history.admin import SimpleHistoryAdmin
from unfold.admin import ModelAdmin, TabularInline
from unfold.decorators import display

from opsplatform.admin_changelist import SafeChangeListMixin
from opsplatform.errors import DomainError

# Unfold's label variants; anything else renders grey.
SUCCESS, INFO, WARNING, DANGER, PRIMARY = "success", "info", "warning", "danger", "primary"


class BaseAdmin(SafeChangeListMixin, ModelAdmin):
    """Every ModelAdmin of the project derives from this class (or from HistoryAdmin).
    Its change list turns out-of-range date filters into `?e=1` instead of a 500."""

    warn_unsaved_form = True
    list_filter_submit = False


class HistoryAdmin(SimpleHistoryAdmin, BaseAdmin):
    """For models with `HistoricalRecords`: the history view in Unfold's layout
    (templates from `unfold.contrib.simple_history`)."""


class ReadOnlyMixin:
    """View, never add, change or delete (rows that change only through their services)."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyAdmin(ReadOnlyMixin, BaseAdmin):
    """Rows that change only through their services: view, never add, change or delete."""


class ReadOnlyHistoryAdmin(SimpleHistoryAdmin, ReadOnlyAdmin):
    """Read-only, with the history view."""


class ReadOnlyInline(ReadOnlyMixin, TabularInline):
    """An inline that only shows related rows (threads, escalations, ratings)."""

    extra = 0
    can_delete = False
    show_change_link = False


# --- badges -----------------------------------------------------------------------------------


def badge(value, text, colours: dict, css_class: str = "") -> SafeString:
    """A coloured label for `value` (shown as `text`), usable in lists and on change pages."""
    html = render_to_string(
        "unfold/helpers/label.html",
        {"type": colours.get(value, ""), "text": text, "class": css_class},
    )
    return mark_safe(" ".join(html.split()))  # noqa: S308 (the template escaped `text`)


class _Label(tuple):
    """(value, text): Unfold's `@display(label=...)` colours it in changelists; on a change
    page (read-only field) it renders itself through `__html__` with the same colours."""

    colours: dict = {}

    def __html__(self):
        return badge(self[0], self[1], self.colours)


def status_badge(field: str, colours: dict, description: str | None = None) -> Callable:
    """A column showing a choice field as a coloured label through Unfold's
    `@display(label={value: colour})`. Use it as `status_label = status_badge("status", {...})`
    and put "status_label" in `list_display` (or `readonly_fields`)."""

    @display(
        description=description or field.replace("_", " ").capitalize(),
        ordering=field,
        label=colours,
    )
    def column(model_admin, obj):
        value = _Label((getattr(obj, field), getattr(obj, f"get_{field}_display")()))
        value.colours = colours
        return value

    return column


# --- confirmation page ------------------------------------------------------------------------


def confirm(
    model_admin,
    request: HttpRequest,
    *,
    title: str,
    message: str,
    items: Iterable[str] = (),
    confirm_label: str,
    on_confirm: Callable[[], str | None],
    done_url: str,
    destructive: bool = True,
    action: str | None = None,
    form=None,
) -> HttpResponse | None:
    """Shows what will happen and acts only on a POST with `confirm=yes`.

    `on_confirm` returns a success message (or None); a DomainError becomes an error message.
    With `form` (a form class), the page asks for its fields and `on_confirm(cleaned_data)`
    runs only once they are valid.
    For a changelist action pass `action` (its name): the page re-posts the selection, and
    None is returned after acting so the admin redirects back to the list as usual.
    """
    confirmed = request.method == "POST" and request.POST.get("confirm") == "yes"
    bound = form(request.POST if confirmed else None) if form is not None else None
    if confirmed and (bound is None or bound.is_valid()):
        try:
            text = on_confirm() if bound is None else on_confirm(bound.cleaned_data)
        except DomainError as exc:
            model_admin.message_user(request, exc.detail, messages.ERROR)
        else:
            if text:
                model_admin.message_user(request, text, messages.SUCCESS)
        return None if action else HttpResponseRedirect(done_url)
    context = {
        **model_admin.admin_site.each_context(request),
        "title": title,
        "opts": model_admin.model._meta,
        "message": message,
        "items": list(items),
        "form": bound,
        "confirm_label": confirm_label,
        "destructive": destructive,
        "cancel_url": done_url,
        "action": action,
        "selected": request.POST.getlist(ACTION_CHECKBOX_NAME) if action else [],
        "select_across": request.POST.get("select_across", "0"),
        "action_checkbox_name": ACTION_CHECKBOX_NAME,
    }
    return TemplateResponse(request, "admin/opsplatform/confirm_action.html", context)


# --- tabs -------------------------------------------------------------------------------------


def tabbed_fieldsets(fields: Iterable, tabs: dict[str, list[str]], first: str) -> list:
    """Fieldsets shown as tabs: each named tab takes its listed fields (those present), and the
    first tab takes every other field, so fields added later still appear."""
    fields = list(fields)
    placed = {name for names in tabs.values() for name in names}
    fieldsets = [(first, {"classes": ["tab"], "fields": [f for f in fields if f not in placed]})]
    for name, names in tabs.items():
        present = [f for f in names if f in fields]
        if present:
            fieldsets.append((name, {"classes": ["tab"], "fields": present}))
    return fieldsets


# --- sidebar ----------------------------------------------------------------------------------

APP_ICONS = {
    "support": "support_agent",
    "userflows": "manage_accounts",
    "opsplatform": "podcasts",
    "auth": "group",
    "django_q": "schedule",
    "axes": "lock",
}
# Pages that are not changelists, shown under their app: (app, title, icon, url name, perm).
EXTRA_LINKS = [
    ("support", "Support dashboard", "monitoring", "admin:support_ticket_dashboard", "view_ticket"),
    (
        "userflows",
        "Cancellation reasons",
        "insights",
        "admin:userflows_subscription_cancellation_reasons",
        "view_subscription",
    ),
    (
        "deployments",
        "Health summary",
        "monitor_heart",
        "admin:deployments_accounthealth_summary",
        "view_accounthealth",
    ),
]


def favicon_url(request: HttpRequest) -> str:
    """UNFOLD["SITE_FAVICONS"]: the admin's icon, served from this origin."""
    return static("favicon.svg")


def sidebar_navigation(request: HttpRequest) -> list[dict]:
    """UNFOLD["SIDEBAR"]["navigation"]: one group per app with the models this user may view
    (the admin's own app list, so it follows the permissions), plus the app's extra pages."""
    from django.contrib import admin

    groups = []
    for app in admin.site.get_app_list(request):
        label = app["app_label"]
        items = []
        for app_label, title, icon, url_name, perm in EXTRA_LINKS:
            if app_label == label and request.user.has_perm(f"{label}.{perm}"):
                try:
                    items.append({"title": title, "icon": icon, "link": reverse(url_name)})
                except NoReverseMatch:
                    continue
        items += [
            {
                "title": model["name"],
                "icon": APP_ICONS.get(label, "table"),
                "link": model["admin_url"],
            }
            for model in app["models"]
            if model.get("admin_url")
        ]
        groups.append({"title": app["name"], "collapsible": True, "items": items})
    return groups
