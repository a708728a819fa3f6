from opsplatform import registry

_READ = [
    "compliance.view_requirement",
    "compliance.view_checkrun",
    "compliance.view_compliancecheck",
    "compliance.view_securityassessment",
    "compliance.view_privacyimpactassessment",
    "compliance.view_patternvalidation",
    "compliance.view_monitor",
]
_WORK = [
    *_READ,
    "compliance.change_requirement",
    "compliance.add_checkrun",
    "compliance.add_securityassessment",
    "compliance.add_privacyimpactassessment",
    "compliance.change_privacyimpactassessment",
    "compliance.add_patternvalidation",
    "compliance.review_dpia",
    "compliance.view_audit_trail",
    "compliance.run_monitors",
]
# Product and operations staff run checks and draft DPIAs; only the compliance group signs
# them off, edits the catalogue and reads the audit trail.
_PROPOSE = [
    "compliance.view_requirement",
    "compliance.view_checkrun",
    "compliance.view_compliancecheck",
    "compliance.add_checkrun",
    "compliance.view_securityassessment",
    "compliance.add_securityassessment",
    "compliance.view_privacyimpactassessment",
    "compliance.add_privacyimpactassessment",
    "compliance.change_privacyimpactassessment",
    "compliance.view_patternvalidation",
    "compliance.add_patternvalidation",
    "compliance.view_monitor",
]


class ComplianceConfig(registry.PlatformAppConfig):
    """GDPR/CCPA/SOC 2 requirements as data, checks, security assessments, DPIAs with
    sign-off, monitors over the platform's own records, the record of processing and the
    audit trail (docs/compliance.md)."""

    name = "compliance"
    verbose_name = "Compliance"
    admin_icon = "verified_user"
    admin_links = [
        (
            "Compliance dashboard",
            "monitoring",
            "admin:compliance_monitor_dashboard",
            "view_monitor",
        ),
        ("Audit trail", "history", "admin:compliance_monitor_audit_trail", "view_audit_trail"),
        (
            "Record of processing",
            "list_alt",
            "admin:compliance_monitor_processing",
            "view_requirement",
        ),
    ]
    api_router = "compliance.api.router"
    api_prefix = "/compliance/"
    group_permissions = {"compliance": _WORK, "operations": _PROPOSE}

    def ensure_reference_data(self):
        from compliance import services

        services.ensure_catalogue()
        services.ensure_monitors()
