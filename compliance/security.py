"""assess_security's rules: what a feature's metadata says → vulnerabilities mapped to the
OWASP Top 10 (2021) and CWE, each with its severity and remediation.

A control (authentication, encryption, validation, parameterised queries) that the metadata
does not state is taken as absent when the exposure it guards is stated: an assessment does
not give credit for what nobody claimed. An exposure that is not stated (does it accept
input? handle sensitive data?) is listed in `unanswered` instead of guessed.
"""

from dataclasses import asdict, dataclass

LEVELS = ("none", "low", "medium", "high", "critical")


@dataclass(frozen=True)
class Vulnerability:
    key: str
    title: str
    owasp: str
    cwe: str
    severity: str
    finding: str
    remediation: str


def _yes(meta, key):
    return meta.get(key) is True


def _not(meta, key):
    """The control is not in place: stated false, or not stated."""
    return meta.get(key) is not True


def _said(meta, key):
    return "stated false" if meta.get(key) is False else "not stated"


EXPOSURES = ("sensitive_data_handled", "user_input_accepted", "sql_queries")


def find_vulnerabilities(meta: dict) -> list[Vulnerability]:
    found = []
    if (
        _yes(meta, "sql_queries")
        and _yes(meta, "user_input_accepted")
        and _not(meta, "input_validation")
        and _not(meta, "parameterized_queries")
    ):
        found.append(
            Vulnerability(
                "sql_injection",
                "SQL built from input without validation (SQL injection)",
                "A03:2021",
                "CWE-89",
                "high",
                "sql_queries and user_input_accepted are true; input_validation is "
                f"{_said(meta, 'input_validation')} and parameterized_queries is "
                f"{_said(meta, 'parameterized_queries')}.",
                "Use parameterised queries (the ORM or bound parameters) for every "
                "statement, and validate input against an allow-list.",
            )
        )
    if _yes(meta, "user_input_accepted") and _not(meta, "input_validation"):
        found.append(
            Vulnerability(
                "input_validation",
                "Input accepted without validation",
                "A03:2021",
                "CWE-20",
                "medium",
                f"user_input_accepted is true; input_validation is "
                f"{_said(meta, 'input_validation')}.",
                "Validate every input's type, length, range and format at the boundary "
                "(schemas) and reject the rest with a 422.",
            )
        )
    if _yes(meta, "sensitive_data_handled") and _not(meta, "authentication_required"):
        found.append(
            Vulnerability(
                "missing_authentication",
                "Sensitive data reachable without authentication",
                "A07:2021",
                "CWE-306",
                "critical",
                "sensitive_data_handled is true; authentication_required is "
                f"{_said(meta, 'authentication_required')}.",
                "Require authentication (and a tenant check) on every path to the data.",
            )
        )
    if _yes(meta, "sensitive_data_handled") and _not(meta, "encryption_implemented"):
        found.append(
            Vulnerability(
                "missing_encryption",
                "Sensitive data without encryption",
                "A02:2021",
                "CWE-311",
                "high",
                "sensitive_data_handled is true; encryption_implemented is "
                f"{_said(meta, 'encryption_implemented')}.",
                "Encrypt the data in transit (TLS) and at rest (database, files, backups).",
            )
        )
    if _yes(meta, "authentication_required") and meta.get("rate_limiting") is False:
        found.append(
            Vulnerability(
                "no_rate_limiting",
                "Authentication without limits on failed attempts",
                "A07:2021",
                "CWE-307",
                "medium",
                "authentication_required is true; rate_limiting is stated false.",
                "Lock out or throttle repeated failed sign-ins per user and address.",
            )
        )
    if _yes(meta, "sensitive_data_handled") and meta.get("audit_logging") is False:
        found.append(
            Vulnerability(
                "no_audit_logging",
                "Access to sensitive data is not logged",
                "A09:2021",
                "CWE-778",
                "low",
                "sensitive_data_handled is true; audit_logging is stated false.",
                "Record who read or changed sensitive data, and when (history, access logs).",
            )
        )
    return found


def security_level(vulnerabilities: list[Vulnerability]) -> str:
    """The highest severity found, or "none"."""
    return max((v.severity for v in vulnerabilities), key=LEVELS.index, default="none")


def unanswered(meta: dict) -> list[str]:
    return [key for key in EXPOSURES if key not in meta]


def recommendations(vulnerabilities: list[Vulnerability], open_questions: list[str]) -> list[str]:
    found = [f"{v.cwe}: {v.remediation}" for v in vulnerabilities]
    found += [
        f"State {key} (true or false) so the assessment can cover it." for key in open_questions
    ]
    return found


def as_dicts(vulnerabilities: list[Vulnerability]) -> list[dict]:
    return [asdict(v) for v in vulnerabilities]
