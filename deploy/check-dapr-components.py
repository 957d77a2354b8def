#!/usr/bin/env python3
"""Checks Dapr Component manifests against Dapr's published component metadata.

    check-dapr-components.py FILE...            check every Component in FILEs
                                                (rendered YAML, '-' for stdin)
    check-dapr-components.py --refresh GIT_DIR [COMMIT]
                                                rewrite metadata-fields.yaml from
                                                a clone of dapr/components-contrib

For each `dapr.io/v1alpha1` Component: its type and version must be one that
deploy/dapr/metadata-fields.yaml records (taken from the component's
`metadata.yaml` in dapr/components-contrib); every metadata field it sets must
be a field of that component (its own, or one of its authentication
profiles'); every required field must be set; where the component has
authentication profiles, the fields set must satisfy one of them wholly; a
field with allowed values must hold one of them (unless it comes from a
secret or is a Dapr template such as {appID}); `scopes` must be present and
non-empty (a component no app id is scoped to is visible to every app).

Exit 0 when every Component passes, 1 otherwise. Needs Python 3 and PyYAML.
"""

import pathlib
import subprocess
import sys

import yaml

HERE = pathlib.Path(__file__).resolve().parent
FIELDS = HERE / "dapr" / "metadata-fields.yaml"

# The components Taskledger uses: Dapr type -> (folder in components-contrib,
# component version).
COMPONENTS = {
    "pubsub.kafka": ("pubsub/kafka", "v1"),
    "state.postgresql": ("state/postgresql/v2", "v2"),
    "bindings.cron": ("bindings/cron", "v1"),
    "secretstores.kubernetes": ("secretstores/kubernetes", "v1"),
}


def field_entry(item):
    entry = {"required": bool(item.get("required", False))}
    if item.get("allowedValues"):
        entry["allowedValues"] = [str(v) for v in item["allowedValues"]]
    return entry


def fields_of(items):
    return {item["name"]: field_entry(item) for item in items or []}


def refresh(git_dir, commit="HEAD"):
    def show(path):
        return subprocess.run(
            ["git", "-C", git_dir, "show", f"{commit}:{path}"],
            check=True, capture_output=True, text=True).stdout

    sha = subprocess.run(["git", "-C", git_dir, "rev-parse", commit],
                         check=True, capture_output=True, text=True).stdout.strip()
    builtin = yaml.safe_load(show(".build-tools/builtin-authentication-profiles.yaml"))
    out = {"source": {"repository": "dapr/components-contrib", "commit": sha},
           "components": {}}
    for dapr_type, (folder, version) in COMPONENTS.items():
        path = f"{folder}/metadata.yaml"
        meta = yaml.safe_load(show(path))
        profiles = []
        for ref in meta.get("builtinAuthenticationProfiles") or []:
            extra = fields_of(ref.get("metadata"))
            for profile in builtin[ref["name"]]:
                fields = fields_of(profile.get("metadata"))
                fields.update(extra)
                profiles.append({"title": profile["title"], "fields": fields})
        for profile in meta.get("authenticationProfiles") or []:
            profiles.append({"title": profile["title"],
                             "fields": fields_of(profile.get("metadata"))})
        entry = {"file": path, "version": meta.get("version", version),
                 "fields": fields_of(meta.get("metadata"))}
        if profiles:
            entry["authenticationProfiles"] = profiles
        out["components"][dapr_type] = entry
    header = (
        "# Field names, required flags and allowed values of the Dapr components\n"
        "# Taskledger uses, from each component's metadata.yaml in\n"
        f"# dapr/components-contrib at commit {sha}\n"
        "# (the file is named per component; built-in authentication profiles are\n"
        "# resolved from .build-tools/builtin-authentication-profiles.yaml).\n"
        "# Written by: deploy/check-dapr-components.py --refresh GIT_DIR [COMMIT]\n"
        "# Read by:    deploy/check-dapr-components.py FILE...\n")
    FIELDS.write_text(header + yaml.safe_dump(out, sort_keys=False, width=100))
    print(f"wrote {FIELDS} from dapr/components-contrib {sha}")


def is_template(value):
    return isinstance(value, str) and value.startswith("{") and value.endswith("}")


def check_component(doc, known):
    name = doc.get("metadata", {}).get("name", "?")
    spec = doc.get("spec") or {}
    dapr_type, version = spec.get("type"), spec.get("version")
    where = f"Component {name} ({dapr_type} {version})"
    errors = []
    if dapr_type not in known:
        return [f"{where}: type not in {FIELDS.name} (known: {', '.join(sorted(known))})"]
    info = known[dapr_type]
    if version != info["version"]:
        errors.append(f"{where}: version must be {info['version']} ({info['file']})")
    items = spec.get("metadata") or []
    given = {}
    for item in items:
        field = item.get("name")
        if field in given:
            errors.append(f"{where}: field {field} set twice")
        if ("value" in item) == ("secretKeyRef" in item):
            errors.append(f"{where}: field {field} needs exactly one of value, secretKeyRef")
        given[field] = item
    profiles = info.get("authenticationProfiles") or []
    allowed = dict(info["fields"])
    for profile in profiles:
        for field, entry in profile["fields"].items():
            allowed.setdefault(field, {"required": False, **{
                k: v for k, v in entry.items() if k != "required"}})
    for field in given:
        if field not in allowed:
            errors.append(f"{where}: unknown field {field} (not in {info['file']})")
    for field, entry in info["fields"].items():
        if entry["required"] and field not in given:
            errors.append(f"{where}: required field {field} missing")

    def value_ok(field, entry):
        item = given[field]
        if "allowedValues" not in entry or "value" not in item:
            return True
        value = str(item["value"])
        return is_template(value) or value in entry["allowedValues"]

    for field, item in given.items():
        entry = info["fields"].get(field)
        if entry and not value_ok(field, entry):
            errors.append(f"{where}: {field}={item['value']!r} is not one of "
                          f"{entry['allowedValues']}")
    if profiles:
        def satisfies(profile):
            return all((field in given and value_ok(field, entry)) or not entry["required"]
                       for field, entry in profile["fields"].items())
        matching = [p["title"] for p in profiles if satisfies(p)]
        if not matching:
            errors.append(f"{where}: the fields set satisfy no authentication profile of "
                          f"{info['file']} ({'; '.join(p['title'] for p in profiles)})")
    if not doc.get("scopes"):
        errors.append(f"{where}: no scopes (every app id would see it)")
    return errors


def main(argv):
    if argv[:1] == ["--refresh"]:
        if len(argv) not in (2, 3):
            sys.exit(__doc__)
        refresh(*argv[1:])
        return 0
    if not argv:
        sys.exit(__doc__)
    known = yaml.safe_load(FIELDS.read_text())["components"]
    errors, count = [], 0
    for path in argv:
        text = sys.stdin.read() if path == "-" else pathlib.Path(path).read_text()
        for doc in yaml.safe_load_all(text):
            if not doc or doc.get("kind") != "Component":
                continue
            if doc.get("apiVersion") != "dapr.io/v1alpha1":
                errors.append(f"Component {doc.get('metadata', {}).get('name')}: "
                              "apiVersion must be dapr.io/v1alpha1")
            count += 1
            errors.extend(check_component(doc, known))
    for error in errors:
        print(f"error: {error}", file=sys.stderr)
    if count == 0:
        print("error: no Dapr Component found", file=sys.stderr)
        return 1
    print(f"{count} Dapr components checked against {FIELDS.name}: "
          f"{'ok' if not errors else f'{len(errors)} problems'}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
