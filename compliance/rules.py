"""The catalogue's rules as data and their evaluator. A rule is a small JSON tree:

    {"op": "true", "key": "encryption_at_rest"}            the key must be true
    {"op": "false", "key": "data_collected.excessive"}     the key must be false
    {"op": "contains", "key": "data_subject_rights_supported", "value": "erasure"}
    {"op": "at_most", "key": "dsr_response_days", "value": 30}
    {"op": "at_least", "key": "data_retention_period", "value": 1}
    {"op": "one_of", "key": "legal_basis", "value": ["contract", "legitimate_interests"]}
    {"op": "all", "rules": [...]}    every part passes
    {"op": "any", "rules": [...]}    one part passes

A leaf whose key is absent is "not evidenced" (a failure that names the key to supply);
`all` fails if a part fails, `any` passes if a part passes; otherwise a missing key makes
the whole "not evidenced".
"""

from dataclasses import dataclass

from opsplatform.errors import InvalidInput

PASSED, FAILED, NOT_EVIDENCED = "passed", "failed", "not_evidenced"
LEAF_OPS = {"true", "false", "contains", "one_of", "at_most", "at_least"}
GROUP_OPS = {"all", "any"}
_MISSING = object()


@dataclass(frozen=True)
class Verdict:
    outcome: str
    finding: str
    missing: tuple[str, ...] = ()


def lookup(metadata: dict, key: str):
    value = metadata
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return _MISSING if value is None else value


def _show(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(map(str, value)) + "]"
    return str(value)


def evaluate(rule: dict, metadata: dict) -> Verdict:
    op = rule["op"]
    if op in GROUP_OPS:
        parts = [evaluate(r, metadata) for r in rule["rules"]]
        missing = tuple(k for p in parts for k in p.missing)
        by = {o: [p for p in parts if p.outcome == o] for o in (PASSED, FAILED, NOT_EVIDENCED)}
        if op == "all":
            if by[FAILED]:
                return Verdict(FAILED, "; ".join(p.finding for p in by[FAILED]))
            if by[NOT_EVIDENCED]:
                return Verdict(NOT_EVIDENCED, _missing_text(missing), missing)
            return Verdict(PASSED, "; ".join(p.finding for p in parts))
        if by[PASSED]:
            return Verdict(PASSED, by[PASSED][0].finding)
        if by[NOT_EVIDENCED]:
            found = [p.finding for p in by[FAILED]] + [_missing_text(missing)]
            return Verdict(NOT_EVIDENCED, "; ".join(found), missing)
        return Verdict(FAILED, "; ".join(p.finding for p in parts))
    key = rule["key"]
    value = lookup(metadata, key)
    if value is _MISSING:
        return Verdict(NOT_EVIDENCED, _missing_text((key,)), (key,))
    if op == "true":
        ok = value is True
        need = "must be true"
    elif op == "false":
        ok = value is False
        need = "must be false"
    elif op == "contains":
        ok = isinstance(value, list) and rule["value"] in value
        if ok:
            return Verdict(PASSED, f"{key} includes {rule['value']}")
        return Verdict(FAILED, f"{key} does not include {rule['value']} ({_show(value)})")
    elif op == "one_of":
        ok = value in rule["value"]
        need = "must be one of " + ", ".join(rule["value"])
    elif op == "at_most":
        ok = isinstance(value, int) and not isinstance(value, bool) and value <= rule["value"]
        need = f"must be at most {rule['value']}"
    else:  # at_least
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= rule["value"]
        need = f"must be at least {rule['value']}"
    if ok:
        return Verdict(PASSED, f"{key} is {_show(value)}")
    return Verdict(FAILED, f"{key} is {_show(value)} ({need})")


def _missing_text(keys: tuple[str, ...]) -> str:
    names = ", ".join(dict.fromkeys(keys))
    return f"Not evidenced: the metadata does not state {names}; supply it."


def rule_keys(rule: dict) -> list[str]:
    if rule["op"] in GROUP_OPS:
        return [k for r in rule["rules"] for k in rule_keys(r)]
    return [rule["key"]]


def validate_rule(rule, *, field: str = "rule", depth: int = 0) -> None:
    """Refuses a malformed rule (InvalidInput naming `field`), so an edit in admin cannot
    store a rule the evaluator would choke on."""
    from compliance.metadata import KNOWN_KEYS

    def bad(msg):
        raise InvalidInput(f"Rule: {msg}", field=field)

    if depth > 4:
        bad("nested too deeply (at most 4 levels).")
    if not isinstance(rule, dict) or "op" not in rule:
        bad('each rule is an object with an "op".')
    op = rule["op"]
    if op in GROUP_OPS:
        if set(rule) != {"op", "rules"}:
            bad(f'"{op}" takes exactly "rules".')
        parts = rule["rules"]
        if not isinstance(parts, list) or not parts or len(parts) > 10:
            bad(f'"{op}" needs a list of 1 to 10 rules.')
        for part in parts:
            validate_rule(part, field=field, depth=depth + 1)
        return
    if op not in LEAF_OPS:
        bad(f"unknown op {op!r} (use {', '.join(sorted(LEAF_OPS | GROUP_OPS))}).")
    wanted = {"op", "key"} if op in {"true", "false"} else {"op", "key", "value"}
    if set(rule) != wanted:
        bad(f'"{op}" takes exactly {", ".join(sorted(wanted))}.')
    if rule["key"] not in KNOWN_KEYS:
        bad(f"unknown metadata key {rule['key']!r}.")
    value = rule.get("value")
    if op in {"at_most", "at_least"} and (not isinstance(value, int) or isinstance(value, bool)):
        bad(f'"{op}" needs a whole number.')
    if op == "contains" and not isinstance(value, str):
        bad('"contains" needs a text value.')
    if op == "one_of" and (
        not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value)
    ):
        bad('"one_of" needs a list of text values.')
