"""Demo compliance rows, made by the real services: the seed's segment check, security
assessment and pattern validation, one DPIA in each sign-off state (drafted by the
operations user, reviewed by the compliance officer), and a first refresh of the monitors
over the demo data (some fail: that is what they are for)."""

from compliance import services

SEGMENT = {
    "data_collected": {"personal": True, "excessive": False},
    "consent_obtained": True,
    "data_subject_rights_supported": ["access", "rectification", "erasure"],
    "encryption_at_rest": True,
    "encryption_in_transit": True,
}
FEATURE = {
    "authentication_required": True,
    "sensitive_data_handled": True,
    "encryption_implemented": True,
    "sql_queries": False,
    "user_input_accepted": True,
    "input_validation": True,
}
PATTERN = {
    "personal_data_involved": True,
    "data_types_collected": ["email", "campaign_data"],
    "data_retention_period": 90,
    "user_consent_required": True,
    "encryption_implemented": True,
}
DPIAS = [
    # feature, data types, retention, sharing, consent, final status
    (
        "Analytics Dashboard",
        ["email", "usage_data", "campaign_data"],
        365,
        ["analytics_provider"],
        True,
        "draft",
    ),
    ("Listener surveys", ["email", "age_range", "health_interests"], 180, [], True, "in_review"),
    ("Sponsor matching", ["campaign_data", "usage_data"], 90, [], True, "approved"),
    ("Voice ID sign-in", ["voiceprint", "email"], 1095, ["biometrics_vendor"], False, "rejected"),
]


def seed_demo(ctx) -> None:
    ops = ctx.staff.get("ops")
    officer = ctx.staff.get("compliance")
    services.validate_segment_compliance(
        segment_name="Enterprise Segment",
        segment_metadata=SEGMENT,
        applicable_standards=["gdpr", "soc2"],
        actor=ops,
    )
    services.assess_security(feature_name="Data Export", feature_metadata=FEATURE, actor=ops)
    services.validate_operational_pattern(
        pattern_name="Automated Reporting",
        pattern_metadata=PATTERN,
        applicable_standards=["gdpr"],
        actor=ops,
    )
    for name, types, days, sharing, consent, status in DPIAS:
        pia = services.conduct_privacy_impact_assessment(
            feature_name=name,
            data_types_collected=types,
            data_retention_period=days,
            data_sharing=sharing,
            user_consent_required=consent,
            actor=ops,
        )
        if status == "draft":
            continue
        services.submit_pia(pia_id=pia.pk, actor=ops)
        if status in ("approved", "rejected") and officer is not None:
            note = (
                "Risks are low after the measures; approved."
                if status == "approved"
                else "Biometric data kept three years without consent: rejected."
            )
            services.review_pia(pia_id=pia.pk, decision=status, note=note, actor=officer)
    monitors = services.run_monitors(now=ctx.now)
    failing = sum(1 for m in monitors if not m.passed)
    ctx.counts["compliance_monitors_failing"] = failing
    ctx.write(
        f"compliance: 3 checks, {len(DPIAS)} DPIAs, {len(monitors)} monitors ({failing} failing)"
    )
