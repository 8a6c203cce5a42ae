"""The shipped bank_corporate policy as text, and the same with some keys changed, for the policy tests."""
import yaml

from workflow import policy as policy_mod

BANK_TEXT = (policy_mod.POLICY_DIR / "bank_corporate.yaml").read_text(encoding="utf-8")
DELETE = object()


def edited(**changes) -> str:
    """bank_corporate with `changes` applied: dotted key paths ("ladder.0.tiers", digits index lists) to a
    new value, or DELETE to remove the key."""
    doc = yaml.safe_load(BANK_TEXT)
    for dotted, value in changes.items():
        node = doc
        *path, last = dotted.split(".")
        for key in path:
            node = node[int(key)] if key.isdigit() else node[key]
        last = int(last) if last.isdigit() else last
        if value is DELETE:
            del node[last]
        else:
            node[last] = value
    return yaml.safe_dump(doc, allow_unicode=True)
