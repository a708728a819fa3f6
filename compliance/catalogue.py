"""The requirement catalogue, versioned. A published version is never edited: a change to the
wording or a rule becomes a new version (a new constant and a data migration that applies it),
so a stored check always names the version it was decided under. Editing a rule in admin is
also possible; that edit is kept in the requirement's history."""


def _true(key):
    return {"op": "true", "key": key}


def _false(key):
    return {"op": "false", "key": key}


def _right(name):
    return {"op": "contains", "key": "data_subject_rights_supported", "value": name}


V2026_11 = "2026.11-1"

# (code, standard, title, text, severity, rule, remediation)
_ROWS_2026_11 = [
    (
        "GDPR-5.1.c",
        "gdpr",
        "Data minimisation",
        "Art. 5(1)(c): personal data shall be adequate, relevant and limited to what is "
        "necessary for the purposes.",
        "high",
        _false("data_collected.excessive"),
        "Drop the fields the purpose does not need; record why each remaining field is needed.",
    ),
    (
        "GDPR-5.1.e",
        "gdpr",
        "Storage limitation",
        "Art. 5(1)(e): personal data shall be kept no longer than necessary for the purposes.",
        "medium",
        {
            "op": "all",
            "rules": [
                {"op": "at_least", "key": "data_retention_period", "value": 1},
                {"op": "at_most", "key": "data_retention_period", "value": 365},
            ],
        },
        "Set a retention period of at most a year (or document why longer is necessary) and "
        "delete or anonymise data when it ends.",
    ),
    (
        "GDPR-6",
        "gdpr",
        "Lawful basis",
        "Art. 6(1): processing is lawful only on consent, contract, legal obligation, vital "
        "interests, public task or legitimate interests.",
        "critical",
        {
            "op": "any",
            "rules": [
                _true("consent_obtained"),
                {
                    "op": "one_of",
                    "key": "legal_basis",
                    "value": [
                        "contract",
                        "legal_obligation",
                        "vital_interests",
                        "public_task",
                        "legitimate_interests",
                    ],
                },
            ],
        },
        "Obtain consent before processing, or document another Art. 6 basis (legal_basis).",
    ),
    (
        "GDPR-7",
        "gdpr",
        "Conditions for consent",
        "Art. 7: where processing is based on consent, the controller must be able to "
        "demonstrate that the data subject consented.",
        "high",
        _true("consent_obtained"),
        "Record each data subject's consent (what, when, how) and let them withdraw it as "
        "easily as they gave it.",
    ),
    (
        "GDPR-12",
        "gdpr",
        "Answering data-subject requests",
        "Art. 12(3): information on action taken on a request is given without undue delay "
        "and in any event within one month of receipt.",
        "high",
        {"op": "at_most", "key": "dsr_response_days", "value": 30},
        "Answer access, erasure and other requests within 30 days; track each request's deadline.",
    ),
    (
        "GDPR-15",
        "gdpr",
        "Right of access",
        "Art. 15: the data subject has the right to obtain confirmation and a copy of the "
        "personal data processed.",
        "high",
        _right("access"),
        "Offer a self-serve or on-request copy of the subject's data (the data export).",
    ),
    (
        "GDPR-16",
        "gdpr",
        "Right to rectification",
        "Art. 16: the data subject has the right to have inaccurate personal data rectified "
        "without undue delay.",
        "medium",
        _right("rectification"),
        "Let subjects correct their data, or handle correction requests.",
    ),
    (
        "GDPR-17",
        "gdpr",
        "Right to erasure",
        "Art. 17: the data subject has the right to have personal data erased without undue delay.",
        "high",
        _right("erasure"),
        "Offer account deletion that erases the subject's data (keeping only what law requires).",
    ),
    (
        "GDPR-18",
        "gdpr",
        "Right to restriction",
        "Art. 18: the data subject has the right to restrict processing while accuracy or "
        "lawfulness is contested.",
        "medium",
        _right("restriction"),
        "Provide a way to freeze processing of a subject's data on request.",
    ),
    (
        "GDPR-20",
        "gdpr",
        "Right to data portability",
        "Art. 20: the data subject may receive their data in a structured, commonly used, "
        "machine-readable format.",
        "medium",
        _right("portability"),
        "Export the subject's data as CSV or JSON.",
    ),
    (
        "GDPR-21",
        "gdpr",
        "Right to object",
        "Art. 21: the data subject may object to processing based on legitimate interests or "
        "for direct marketing.",
        "medium",
        _right("objection"),
        "Honour objections (opt-out of marketing and profiling) and record them.",
    ),
    (
        "GDPR-25",
        "gdpr",
        "Data protection by design and by default",
        "Art. 25: only personal data necessary for each purpose is processed by default.",
        "medium",
        _true("privacy_by_default"),
        "Make the most privacy-protective settings the default and design minimisation in.",
    ),
    (
        "GDPR-30",
        "gdpr",
        "Records of processing activities",
        "Art. 30: the controller keeps a record of processing: purposes, categories of data "
        "and subjects, recipients, transfers, retention.",
        "medium",
        _true("records_of_processing"),
        "Declare each personal-data field with purpose, legal basis and retention in the "
        "app's privacy.py (the record of processing is generated from it).",
    ),
    (
        "GDPR-32",
        "gdpr",
        "Security of processing",
        "Art. 32: appropriate technical measures, including encryption of personal data.",
        "critical",
        {"op": "all", "rules": [_true("encryption_at_rest"), _true("encryption_in_transit")]},
        "Encrypt personal data at rest (database, backups, files) and in transit (TLS everywhere).",
    ),
    (
        "GDPR-33",
        "gdpr",
        "Breach notification",
        "Art. 33: a personal-data breach is notified to the supervisory authority within 72 "
        "hours of becoming aware of it.",
        "high",
        {"op": "at_most", "key": "breach_notification_hours", "value": 72},
        "Keep a breach procedure that notifies the authority within 72 hours.",
    ),
    (
        "GDPR-35",
        "gdpr",
        "Data protection impact assessment",
        "Art. 35: processing likely to result in a high risk requires a DPIA before it starts.",
        "high",
        _true("dpia_completed"),
        "Run a DPIA (POST /compliance/pias) and have it approved before processing starts.",
    ),
    (
        "GDPR-44",
        "gdpr",
        "Transfers to third countries",
        "Art. 44: personal data leaves the EEA only under Chapter V safeguards (adequacy, "
        "SCCs, BCRs).",
        "high",
        {"op": "any", "rules": [_false("international_transfers"), _true("transfer_safeguards")]},
        "Stop the transfer or put standard contractual clauses (or another Chapter V "
        "safeguard) in place.",
    ),
    (
        "CCPA-1798.100",
        "ccpa",
        "Notice at collection",
        "§1798.100: a business informs consumers, at or before collection, of the categories "
        "collected and their purposes.",
        "medium",
        _true("privacy_notice_provided"),
        "Show a notice at collection listing the categories and purposes.",
    ),
    (
        "CCPA-1798.105",
        "ccpa",
        "Right to delete",
        "§1798.105: a consumer may request deletion of personal information collected from them.",
        "high",
        _right("erasure"),
        "Offer deletion on request, verified, with service providers told to delete too.",
    ),
    (
        "CCPA-1798.110",
        "ccpa",
        "Right to know",
        "§1798.110: a consumer may request the categories and specific pieces of personal "
        "information collected.",
        "high",
        _right("access"),
        "Offer a copy of the consumer's data and the categories collected.",
    ),
    (
        "CCPA-1798.120",
        "ccpa",
        "Right to opt out of sale or sharing",
        "§1798.120: a consumer may direct a business not to sell or share their personal "
        "information.",
        "high",
        {"op": "any", "rules": [_false("sells_personal_information"), _right("opt_out_of_sale")]},
        "Stop selling or sharing, or honour opt-out requests.",
    ),
    (
        "CCPA-1798.135",
        "ccpa",
        '"Do Not Sell or Share" link',
        '§1798.135: a business that sells or shares provides a clear "Do Not Sell or Share '
        'My Personal Information" link.',
        "medium",
        {"op": "any", "rules": [_false("sells_personal_information"), _true("do_not_sell_link")]},
        'Add the "Do Not Sell or Share My Personal Information" link to the homepage.',
    ),
    (
        "CCPA-1798.150",
        "ccpa",
        "Reasonable security",
        "§1798.150: a business maintains reasonable security; unencrypted data exposed in a "
        "breach gives consumers a private right of action.",
        "critical",
        _true("encryption_in_transit"),
        "Encrypt personal information in transit (TLS) and at rest.",
    ),
    (
        "SOC2-CC6.1",
        "soc2",
        "Logical access security",
        "CC6.1: logical access security software, infrastructure and architectures protect "
        "information assets, including encryption of data at rest.",
        "high",
        _true("encryption_at_rest"),
        "Encrypt data at rest and restrict access to it by role.",
    ),
    (
        "SOC2-CC6.6",
        "soc2",
        "Threats from outside the system boundary",
        "CC6.6: logical access measures protect against threats from sources outside the "
        "system boundaries.",
        "high",
        _true("external_access_restricted"),
        "Restrict external access (authentication, network rules, rate limits) to what is needed.",
    ),
    (
        "SOC2-CC6.7",
        "soc2",
        "Data in transmission",
        "CC6.7: the transmission, movement and removal of information is restricted and "
        "protected (encryption in transit).",
        "high",
        _true("encryption_in_transit"),
        "Serve every connection over TLS (HSTS, secure cookies).",
    ),
    (
        "SOC2-CC7.2",
        "soc2",
        "Monitoring for anomalies",
        "CC7.2: system components are monitored for anomalies indicative of malicious acts "
        "and errors.",
        "medium",
        _true("security_monitoring"),
        "Monitor sign-in failures, lockouts and errors, with alerts.",
    ),
    (
        "SOC2-CC7.3",
        "soc2",
        "Evaluating security events",
        "CC7.3: security events are evaluated to decide whether they are incidents, and "
        "incidents are responded to.",
        "medium",
        _true("incident_response_plan"),
        "Write and exercise an incident response plan.",
    ),
    (
        "SOC2-CC8.1",
        "soc2",
        "Change management",
        "CC8.1: changes to infrastructure, data and software are authorised, recorded and "
        "approved.",
        "medium",
        _true("change_management"),
        "Record every change to personal data and configuration (history), and review "
        "changes before release.",
    ),
    (
        "SOC2-A1.2",
        "soc2",
        "Backups and recovery",
        "A1.2: backup processes and recovery infrastructure are in place and tested.",
        "medium",
        _true("backups_tested"),
        "Back up the database and test a restore regularly.",
    ),
]


FIELDS = ("code", "standard", "title", "text", "severity", "rule", "remediation")
# Each published version: its rows, in display order. Never edit a published version.
VERSIONS = {V2026_11: [dict(zip(FIELDS, row, strict=True)) for row in _ROWS_2026_11]}
CURRENT_VERSION = V2026_11


def load(
    requirement_model, version: str = CURRENT_VERSION, *, overwrite: bool, history_model=None
) -> int:
    """Writes `version`'s rows into `requirement_model` (the real model, or the historical one
    in a data migration). With overwrite, existing codes take the version's wording and rule
    (a new version's migration); without, only missing codes are added (ensure_reference_data
    after a test flush), so an edit made in admin is never undone. A migration passes the
    requirement's `history_model` so each row written gets its history row (the real model's
    saves write theirs themselves). Returns rows written."""
    from django.utils import timezone

    written = 0
    for order, row in enumerate(VERSIONS[version]):
        values = {**row, "catalogue_version": version, "sort_order": order}
        code = values.pop("code")
        if overwrite:
            obj, created = requirement_model.objects.update_or_create(code=code, defaults=values)
        else:
            obj, created = requirement_model.objects.get_or_create(code=code, defaults=values)
            if not created:
                continue
        written += 1
        if history_model is not None:
            history_model.objects.create(
                **{
                    f.attname: getattr(obj, f.attname)
                    for f in requirement_model._meta.concrete_fields
                },
                history_date=timezone.now(),
                history_type="+" if created else "~",
                history_change_reason=f"catalogue {version}",
            )
    return written
