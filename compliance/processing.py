"""The record of processing (GDPR Art. 30), generated from what each app declares in its
privacy.py:

    PERSONAL_DATA = [
        {
            "model": "support.Ticket",                 # app_label.ModelName
            "fields": ["requester_email", "requester_name"],
            "purpose": "Answer the customer's support request",
            "legal_basis": "Contract (Art. 6(1)(b))",
            "retention": "Until the account is deleted; then anonymised",
            "history_exempt": "",                     # optional: why it keeps no history
        },
    ]

One row per field: the app and model holding it, purpose, legal basis, retention, and
whether the model keeps history. A declaration naming a model or field that does not exist
is reported (declaration_errors) rather than silently dropped.
"""

from dataclasses import dataclass

from django.apps import apps
from django.core.exceptions import FieldDoesNotExist
from simple_history.models import registered_models

from opsplatform.registry import app_modules

REQUIRED_KEYS = ("model", "fields", "purpose", "legal_basis", "retention")
CSV_HEADER = [
    "app",
    "model",
    "field",
    "field_label",
    "purpose",
    "legal_basis",
    "retention",
    "has_history",
]


@dataclass(frozen=True)
class ProcessingRecord:
    app: str
    model: str
    field: str
    field_label: str
    purpose: str
    legal_basis: str
    retention: str
    has_history: bool

    def as_row(self) -> list:
        return [getattr(self, name) for name in CSV_HEADER]


def _declarations() -> list[tuple[str, dict]]:
    found = []
    for module in app_modules("privacy"):
        app = module.__name__.split(".")[0]
        for entry in getattr(module, "PERSONAL_DATA", ()):
            found.append((app, entry))
    return found


def _has_history(model) -> bool:
    return registered_models.get(model._meta.db_table) is model


def _resolve(entry: dict):
    """(model, [(field name, label)], error or None)."""
    missing = [k for k in REQUIRED_KEYS if not entry.get(k)]
    if missing:
        return None, [], f"{entry.get('model', '?')}: missing {', '.join(missing)}"
    try:
        model = apps.get_model(entry["model"])
    except (LookupError, ValueError):
        return None, [], f"{entry['model']}: no such model"
    fields = []
    for name in entry["fields"]:
        try:
            field = model._meta.get_field(name)
        except FieldDoesNotExist:
            return model, fields, f"{entry['model']}.{name}: no such field"
        fields.append((name, str(getattr(field, "verbose_name", name))))
    return model, fields, None


def processing_records() -> list[ProcessingRecord]:
    records = []
    for app, entry in _declarations():
        model, fields, _ = _resolve(entry)
        if model is None:
            continue
        history = _has_history(model)
        for name, label in fields:
            records.append(
                ProcessingRecord(
                    app=app,
                    model=entry["model"],
                    field=name,
                    field_label=label,
                    purpose=entry["purpose"],
                    legal_basis=entry["legal_basis"],
                    retention=entry["retention"],
                    has_history=history,
                )
            )
    return records


def declaration_errors() -> list[str]:
    return [error for _, entry in _declarations() for error in [_resolve(entry)[2]] if error]


def personal_data_models() -> list[dict]:
    """Each declared model once, with whether it keeps history or is exempt (and why)."""
    seen: dict[str, dict] = {}
    for _, entry in _declarations():
        model, _, _ = _resolve(entry)
        if model is None:
            continue
        row = seen.setdefault(
            entry["model"],
            {"model": entry["model"], "has_history": _has_history(model), "history_exempt": ""},
        )
        row["history_exempt"] = row["history_exempt"] or entry.get("history_exempt", "")
    return list(seen.values())
