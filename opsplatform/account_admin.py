"""The customer 360 on the staff account page: the core's own panels (API tokens, the
account's history) and its on-behalf action (revoke a token); the other apps contribute
theirs through `registry.account_panels` / `registry.account_actions` (ADR 0001)."""

from django import forms
from django.urls import reverse
from unfold.widgets import UnfoldAdminSelectWidget, UnfoldAdminTextareaWidget

from opsplatform import registry, services
from opsplatform.history import change_story, note_reason
from opsplatform.models import Account, ApiToken
from opsplatform.registry import AccountAction, AccountPanel, PanelItem

HISTORY_SHOWN = 10
TOKENS_SHOWN = 20


def reason_field() -> forms.CharField:
    return forms.CharField(
        max_length=500,
        label="Reason (recorded in history)",
        help_text="Why, and who asked: e.g. “Customer asked by phone, ticket SUP-000123”.",
        widget=UnfoldAdminTextareaWidget(attrs={"rows": 2}),
    )


def core_panels(account: Account, *, user) -> list[AccountPanel]:
    panels = []
    if user.has_perm("opsplatform.view_apitoken"):
        tokens = ApiToken.objects.filter(user_id=account.user_id).order_by(
            "revoked_at", "-created_at"
        )[:TOKENS_SHOWN]
        panels.append(
            AccountPanel(
                key="tokens",
                title="API tokens",
                order=60,
                items=tuple(
                    PanelItem(
                        text=f"{t.label} ({t.token_prefix}…)",
                        url=reverse("admin:opsplatform_apitoken_change", args=[t.pk]),
                        detail=(
                            f"revoked {t.revoked_at:%Y-%m-%d}"
                            if t.revoked_at
                            else "last used "
                            + (f"{t.last_used_at:%Y-%m-%d %H:%M}" if t.last_used_at else "never")
                        ),
                        tone="" if t.revoked_at else "success",
                    )
                    for t in tokens
                ),
                empty="No API tokens.",
            )
        )
    rows = list(
        Account.history.filter(id=account.pk)
        .select_related("history_user")
        .order_by("-history_date", "-history_id")[: HISTORY_SHOWN + 1]
    )
    panels.append(
        AccountPanel(
            key="history",
            title="History",
            order=90,
            items=tuple(
                PanelItem(
                    text=change_story(row, rows[i + 1] if i + 1 < len(rows) else None),
                    detail=f"{row.history_date:%Y-%m-%d %H:%M} · "
                    + (row.history_user.get_username() if row.history_user else "system"),
                )
                for i, row in enumerate(rows[:HISTORY_SHOWN])
            ),
            empty="No changes recorded.",
            more_url=reverse("admin:opsplatform_account_history", args=[account.pk]),
        )
    )
    return panels


class ActionForm(forms.Form):
    """The base of an on-behalf action's form: it knows the account it acts on (a choice of
    the account's tokens, say). The view adds the required `reason` field."""

    def __init__(self, *args, account: Account, **kwargs):
        self.account = account
        super().__init__(*args, **kwargs)


class TokenForm(ActionForm):
    token = forms.ModelChoiceField(queryset=ApiToken.objects.none(), widget=UnfoldAdminSelectWidget)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["token"].queryset = ApiToken.objects.filter(
            user_id=self.account.user_id, revoked_at__isnull=True
        ).order_by("label")


def _preview_revoke(account: Account, data) -> list[str]:
    token = data["token"]
    return [f"The token “{token.label}” ({token.token_prefix}…) stops working at once."]


def _run_revoke(account: Account, data, *, actor, reason) -> str:
    token = data["token"]  # the form only offers this account's active tokens
    token = services.revoke_api_token(token=token, actor=actor)
    note_reason(token, f"On behalf of the customer: {reason}"[:100])
    return f"Token “{token.label}” revoked."


def _has_active_token(account: Account) -> bool:
    return ApiToken.objects.filter(user_id=account.user_id, revoked_at__isnull=True).exists()


def on_behalf_actions() -> dict[str, AccountAction]:
    """Every app's actions plus the core's token revocation, by name."""
    actions = dict(registry.account_actions())
    actions["revoke-token"] = AccountAction(
        name="revoke-token",
        label="Revoke an API token",
        permission="opsplatform.change_apitoken",
        form=TokenForm,
        preview=_preview_revoke,
        run=_run_revoke,
        available=_has_active_token,
        destructive=True,
        order=70,
    )
    return dict(sorted(actions.items(), key=lambda kv: (kv[1].order, kv[0])))
