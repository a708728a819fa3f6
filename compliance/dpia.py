"""The DPIA's content in the ICO's seven steps (the services store it; the sign-off is the
status machine on PrivacyImpactAssessment):

1. identify the need — `screen()`: Art. 35 reasons (special-category data, children's data,
   systematic monitoring, automated decisions with legal effect);
2. describe the processing — `describe()`;
3. consultation — who to consult (the DPO, the recipients) is in the description;
4. necessity and proportionality — `necessity()`;
5. identify and assess risks — `risks()`: likelihood x severity on the ICO's 3 x 3 matrix;
6. measures — each risk's measure and its residual likelihood x severity;
7. sign off — draft → in review → approved / rejected by the compliance group.

Likelihood: remote 1, possible 2, probable 3. Severity: minimal 1, significant 2, severe 3.
Score = likelihood x severity; level: 1-2 low, 3-4 medium, 6-9 high.
"""

# Art. 9 and 10 categories, with the words a data type may use for them.
SPECIAL_CATEGORIES = {
    "health": ("health", "medical", "diagnosis", "disability", "prescription"),
    "biometric": ("biometric", "fingerprint", "face_scan", "facial", "voiceprint", "retina"),
    "genetic": ("genetic", "dna", "genome"),
    "ethnicity": ("ethnicity", "ethnic", "racial", "race"),
    "religion": ("religion", "religious", "belief"),
    "sexual orientation": ("sexual_orientation", "sexual orientation", "sex_life", "sexuality"),
    "political opinions": ("political", "politics"),
    "trade union membership": ("trade_union", "union_membership"),
    "criminal records": ("criminal", "conviction", "offence", "offense"),
}
CHILDREN = ("child", "children", "minor", "kids", "under_16", "under_13", "student_age")
MAX_PROPORTIONATE_RETENTION = 365

LIKELIHOOD = {1: "remote", 2: "possible", 3: "probable"}
SEVERITY = {1: "minimal", 2: "significant", 3: "severe"}


def level(score: int) -> str:
    return "low" if score <= 2 else "medium" if score <= 4 else "high"


def _matches(data_type: str, words) -> bool:
    normalized = data_type.replace("-", "_")
    return any(w in normalized or w in data_type for w in words)


def special_categories(data_types: list[str]) -> list[str]:
    return [
        name
        for name, words in SPECIAL_CATEGORIES.items()
        if any(_matches(t, words) for t in data_types)
    ]


def children_data(data_types: list[str]) -> list[str]:
    return [t for t in data_types if _matches(t, CHILDREN)]


def screen(
    data_types: list[str], *, systematic_monitoring: bool, automated_decisions: bool
) -> list[str]:
    """Step 1: the Art. 35 reasons that make a DPIA required (none → not required)."""
    reasons = []
    special = special_categories(data_types)
    if special:
        reasons.append(
            "Art. 35(3)(b): special-category or criminal-offence data (" + ", ".join(special) + ")"
        )
    children = children_data(data_types)
    if children:
        reasons.append("Art. 35(1) / EDPB criteria: children's data (" + ", ".join(children) + ")")
    if systematic_monitoring:
        reasons.append("Art. 35(3)(c): systematic monitoring")
    if automated_decisions:
        reasons.append("Art. 35(3)(a): automated decisions with legal or similar effect")
    return reasons


def describe(
    *,
    feature_name: str,
    data_types: list[str],
    retention_days: int,
    sharing: list[str],
    consent: bool,
) -> dict:
    """Step 2 (nature, scope, context, purpose) and step 3 (whom to consult)."""
    return {
        "nature": f"{feature_name} collects {', '.join(data_types) or 'no declared data types'}.",
        "scope": f"{len(data_types)} data type(s), kept {retention_days} day(s).",
        "context": "Shared with " + (", ".join(sharing) if sharing else "no third party") + ".",
        "purpose": f"To provide {feature_name}.",
        "lawful_basis": "consent (Art. 6(1)(a))"
        if consent
        else "to be documented: consent is not collected",
        "consult": ["data protection officer", *[f"processor: {s}" for s in sharing]],
    }


def necessity(*, data_types: list[str], retention_days: int, consent: bool) -> list[dict]:
    """Step 4: each question with whether the declared processing answers it."""
    return [
        {
            "question": "Is there a lawful basis?",
            "ok": consent,
            "answer": "Consent is collected."
            if consent
            else "No consent: document another Art. 6 basis (e.g. a legitimate-interests test).",
        },
        {
            "question": "Is the retention proportionate?",
            "ok": 0 < retention_days <= MAX_PROPORTIONATE_RETENTION,
            "answer": f"{retention_days} days "
            + (
                f"(within {MAX_PROPORTIONATE_RETENTION})."
                if 0 < retention_days <= MAX_PROPORTIONATE_RETENTION
                else f"(over {MAX_PROPORTIONATE_RETENTION}: justify or shorten)."
                if retention_days
                else "(none set: set one)."
            ),
        },
        {
            "question": "Is the data limited to what is needed?",
            "ok": len(data_types) <= 10,
            "answer": f"{len(data_types)} data type(s) declared; each must serve the purpose.",
        },
    ]


def _risk(name, likelihood, severity, measure, residual_likelihood, residual_severity):
    score = likelihood * severity
    residual = residual_likelihood * residual_severity
    return {
        "risk": name,
        "likelihood": LIKELIHOOD[likelihood],
        "severity": SEVERITY[severity],
        "score": score,
        "level": level(score),
        "measure": measure,
        "residual_likelihood": LIKELIHOOD[residual_likelihood],
        "residual_severity": SEVERITY[residual_severity],
        "residual_score": residual,
        "residual_level": level(residual),
    }


def risks(
    *,
    data_types: list[str],
    retention_days: int,
    sharing: list[str],
    consent: bool,
    systematic_monitoring: bool,
    automated_decisions: bool,
) -> list[dict]:
    """Steps 5 and 6: each risk, its measure and what remains after it."""
    special = special_categories(data_types)
    harm = 3 if special or children_data(data_types) else 2
    found = [
        _risk(
            "Unauthorised access to the data (breach)",
            2,
            harm,
            "Encrypt at rest and in transit; role-based access; audit trail of changes.",
            1,
            harm,
        )
    ]
    if special:
        found.append(
            _risk(
                "Processing special-category data without an Art. 9 condition",
                2,
                3,
                "Explicit consent (Art. 9(2)(a)) recorded per subject; access limited to "
                "named staff.",
                1,
                3,
            )
        )
    if children_data(data_types):
        found.append(
            _risk(
                "Children's data processed without parental consent",
                2,
                3,
                "Age check and parental consent (Art. 8); no profiling of children.",
                1,
                3,
            )
        )
    if retention_days > MAX_PROPORTIONATE_RETENTION or retention_days == 0:
        found.append(
            _risk(
                "Data kept longer than needed",
                3,
                2,
                f"Shorten retention to at most {MAX_PROPORTIONATE_RETENTION} days and delete "
                "automatically when it ends.",
                1,
                2,
            )
        )
    if sharing:
        found.append(
            _risk(
                f"Disclosure by recipients ({', '.join(sharing)})",
                2,
                2,
                "An Art. 28 processing agreement with each recipient; share the minimum.",
                1,
                2,
            )
        )
    if not consent:
        found.append(
            _risk(
                "Processing without a documented lawful basis",
                2,
                2,
                "Document the Art. 6 basis (a legitimate-interests assessment) before launch.",
                1,
                2,
            )
        )
    if systematic_monitoring:
        found.append(
            _risk(
                "Subjects monitored without knowing it",
                3,
                2,
                "Tell subjects at collection; let them object (Art. 21); minimise tracking.",
                2,
                1,
            )
        )
    if automated_decisions:
        found.append(
            _risk(
                "Automated decisions with legal effect without human review",
                2,
                3,
                "Human review on request and a way to contest the decision (Art. 22(3)).",
                1,
                3,
            )
        )
    return found


def residual_risk(found: list[dict]) -> str:
    """The highest residual level; "high" means the authority must be consulted (Art. 36)."""
    order = ("low", "medium", "high")
    return max((r["residual_level"] for r in found), key=order.index, default="low")
