"""Offline validation of KubeRay custom resources against the real v1.7.0 CRDs.

Each object is checked against its CRD's `v1` openAPIV3Schema the way the API server does on
`kubectl apply --validate=strict`: structural types, formats and bounds, enums and patterns,
unknown fields rejected, int-or-string quantities, map/set list keys, and the CEL rules simple
enough to evaluate here. Transition rules (`oldSelf`) cannot apply to a new object and are skipped.
What the KubeRay operator checks after admission (cluster selector mode, submission modes, TTLs)
is not in the CRD and not checked here.
"""

from __future__ import annotations

import ast
import datetime as dt
import difflib
import functools
import os
import re
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
CRD_DIR = Path(
    os.environ.get("KUBERAY_CRD_DIR") or REPO.parent / "shared" / "schemas" / "kuberay-v1.7.0"
)
API_VERSION = "ray.io/v1"
CRD_FILES = {
    "RayCluster": "ray.io_rayclusters.yaml",
    "RayJob": "ray.io_rayjobs.yaml",
    "RayService": "ray.io_rayservices.yaml",
    "RayCronJob": "ray.io_raycronjobs.yaml",
}
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
INT_RANGES = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}
DATE_TIME = re.compile(r"\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)")
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
DNS_SUBDOMAIN = re.compile(rf"{DNS_LABEL.pattern}(\.{DNS_LABEL.pattern})*")
LABEL_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
OBJECT_META = {
    "name",
    "generateName",
    "namespace",
    "labels",
    "annotations",
    "finalizers",
    "ownerReferences",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
}
HAS_FIELD = re.compile(r"has\(self\.(\w+)\)")


@functools.cache
def crd_schema(kind: str) -> dict:
    """The `v1` openAPIV3Schema of a KubeRay kind, parsed once per process. Do not mutate it."""
    if kind not in CRD_FILES:
        raise KeyError(f"unknown KubeRay kind {kind!r}; expected one of {', '.join(CRD_FILES)}")
    path = CRD_DIR / CRD_FILES[kind]
    if not path.is_file():
        raise FileNotFoundError(f"KubeRay CRD {path} not found; set KUBERAY_CRD_DIR")
    crd = yaml.load(path.read_text(), Loader=LOADER)
    for version in crd["spec"]["versions"]:
        if version["name"] == "v1":
            return version["schema"]["openAPIV3Schema"]
    raise ValueError(f"{path} serves no v1 version")


def validate_resource(obj: Any) -> list[str]:
    """Every schema violation of one ray.io/v1 object as 'path: expected ..., found ...'."""
    if not isinstance(obj, dict):
        return [f"<root>: expected object, found {describe(obj)}"]
    errors = []
    if obj.get("apiVersion") != API_VERSION:
        errors.append(
            f"apiVersion: expected {API_VERSION!r}, found {describe(obj.get('apiVersion'))}"
        )
    if not isinstance(obj.get("kind"), str) or obj["kind"] not in CRD_FILES:
        errors.append(
            f"kind: expected one of {', '.join(CRD_FILES)}, found {describe(obj.get('kind'))}"
        )
    if errors:
        return errors
    body = {key: value for key, value in obj.items() if key != "metadata"}
    return check(body, crd_schema(obj["kind"]), "") + check_object_meta(obj.get("metadata"))


def validate_file(path: Path) -> dict[str, list[str]]:
    """Errors per ray.io document ('Kind/name'); documents of other groups are left out."""
    results: dict[str, list[str]] = {}
    with open(path, encoding="utf-8") as stream:
        documents = list(yaml.load_all(stream, Loader=LOADER))
    for index, doc in enumerate(documents):
        if not isinstance(doc, dict) or not str(doc.get("apiVersion", "")).startswith("ray.io/"):
            continue
        meta = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
        key = f"{doc.get('kind')}/{meta.get('name', f'#{index}')}"
        results[f"{key}#{index}" if key in results else key] = validate_resource(doc)
    return results


def check(value: Any, schema: dict, path: str) -> list[str]:
    """All violations of `value` against one structural-schema node (path names the node)."""
    where = path or "<root>"
    if value is None:
        ok = schema.get("nullable") or schema.get("x-kubernetes-preserve-unknown-fields")
        return [] if ok else [f"{where}: expected {expected(schema)}, found null"]
    if not type_ok(value, schema):
        quantity = schema.get("x-kubernetes-int-or-string") and isinstance(value, float)
        hint = " (quote fractions: '500m' or '0.5')" if quantity else ""
        return [f"{where}: expected {expected(schema)}, found {describe(value)}{hint}"]
    errors = scalar_errors(value, schema, where) + combinator_errors(value, schema, where)
    if isinstance(value, dict):
        errors += object_errors(value, schema, path)
    elif isinstance(value, list):
        errors += array_errors(value, schema, path)
    return errors + cel_errors(value, schema, where)


def type_ok(value: Any, schema: dict) -> bool:
    if schema.get("x-kubernetes-int-or-string"):
        return is_int(value) or isinstance(value, str)
    kind = schema.get("type")
    if kind == "integer":
        return is_int(value)
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    # YAML turns unquoted timestamps into dates; kubectl sends them to the server as strings
    types = {"object": dict, "array": list, "string": (str, dt.date), "boolean": bool}
    return kind is None or isinstance(value, types[kind])


def is_int(value: Any) -> bool:
    if isinstance(value, float):  # JSON has one number type: 2.0 is an integer, 0.5 is not
        return value.is_integer()
    return isinstance(value, int) and not isinstance(value, bool)


def scalar_errors(value: Any, schema: dict, where: str) -> list[str]:
    errors = []
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{where}: expected one of {schema['enum']}, found {describe(value)}")
    low, high = INT_RANGES.get(schema.get("format", ""), (None, None))
    low, high = schema.get("minimum", low), schema.get("maximum", high)
    if is_int(value) or isinstance(value, float):
        if low is not None and value < low:
            errors.append(f"{where}: expected a value >= {low}, found {describe(value)}")
        if high is not None and value > high:
            errors.append(f"{where}: expected a value <= {high}, found {describe(value)}")
    if isinstance(value, str):
        errors += string_errors(value, schema, where)
    return errors


def string_errors(value: str, schema: dict, where: str) -> list[str]:
    errors = []
    if len(value) < schema.get("minLength", 0):
        errors.append(
            f"{where}: expected at least {schema['minLength']} characters, found {describe(value)}"
        )
    if len(value) > schema.get("maxLength", len(value)):
        errors.append(
            f"{where}: expected at most {schema['maxLength']} characters, found {len(value)}"
        )
    if "pattern" in schema and not compiled(schema["pattern"]).search(value):
        errors.append(
            f"{where}: expected a string matching {schema['pattern']}, found {describe(value)}"
        )
    if schema.get("format") == "date-time" and not DATE_TIME.fullmatch(value):
        errors.append(f"{where}: expected an RFC 3339 date-time, found {describe(value)}")
    return errors


@functools.cache
def compiled(pattern: str) -> re.Pattern[str]:
    # Go's `$` never matches before a trailing newline; Python's does unless it is `\Z`
    return re.compile(pattern[:-1] + r"\Z" if pattern.endswith("$") else pattern)


def combinator_errors(value: Any, schema: dict, where: str) -> list[str]:
    errors = []
    branches = [] if schema.get("x-kubernetes-int-or-string") else schema.get("anyOf", [])
    if branches and not any(not check(value, branch, where) for branch in branches):
        errors.append(
            f"{where}: expected one of {[expected(b) for b in branches]}, found {describe(value)}"
        )
    passing = sum(not check(value, branch, where) for branch in schema.get("oneOf", []))
    if "oneOf" in schema and passing != 1:
        errors.append(f"{where}: expected exactly one of the oneOf schemas, {passing} match")
    for branch in schema.get("allOf", []):
        errors += check(value, branch, where)
    if "not" in schema and not check(value, schema["not"], where):
        errors.append(
            f"{where}: expected a value the 'not' schema rejects, found {describe(value)}"
        )
    return errors


def object_errors(value: dict, schema: dict, path: str) -> list[str]:
    properties, extra = schema.get("properties", {}), schema.get("additionalProperties")
    open_ = schema.get("x-kubernetes-preserve-unknown-fields") or extra is True
    embedded = (
        {"apiVersion", "kind", "metadata"}
        if schema.get("x-kubernetes-embedded-resource")
        else set()
    )
    # the API server prunes nulls of known non-nullable fields before it validates
    present = {
        str(k): v
        for k, v in value.items()
        if v is not None
        or not known(str(k), properties, extra)
        or (properties.get(str(k)) or {}).get("nullable")
    }
    errors = [
        f"{child(path, name)}: required field is missing"
        for name in schema.get("required", [])
        if name not in present
    ]
    for key, item in present.items():
        if key in properties:
            errors += check(item, properties[key], child(path, key))
        elif isinstance(extra, dict):
            errors += check(item, extra, child(path, key))
        elif not (open_ or key in embedded):
            errors.append(unknown_field(child(path, key), key, properties))
    return errors


def known(key: str, properties: dict, extra: Any) -> bool:
    return key in properties or isinstance(extra, dict)


def unknown_field(where: str, key: str, properties: dict) -> str:
    close = difflib.get_close_matches(key, list(properties), n=1)
    hint = (
        f" (did you mean {close[0]!r}?)"
        if close
        else f" (allowed: {', '.join(sorted(properties)) or 'none'})"
    )
    return f"{where}: unknown field {key!r}{hint}"


def array_errors(value: list, schema: dict, path: str) -> list[str]:
    errors = []
    if len(value) < schema.get("minItems", 0):
        errors.append(f"{path}: expected at least {schema['minItems']} items, found {len(value)}")
    if len(value) > schema.get("maxItems", len(value)):
        errors.append(f"{path}: expected at most {schema['maxItems']} items, found {len(value)}")
    items = schema.get("items")
    for index, item in enumerate(value if items else []):
        errors += check(item, items, f"{path}[{index}]")
    return errors + list_key_errors(value, schema, path)


def list_key_errors(value: list, schema: dict, path: str) -> list[str]:
    """Set lists hold unique items, map lists unique keys (a missing key takes its default)."""
    list_type, names = (
        schema.get("x-kubernetes-list-type"),
        schema.get("x-kubernetes-list-map-keys"),
    )
    if list_type not in ("set", "map"):
        return []
    defaults = {n: p.get("default") for n, p in schema["items"].get("properties", {}).items()}
    seen: dict[str, int] = {}
    errors = []
    for index, item in enumerate(value):
        if list_type == "map" and not isinstance(item, dict):
            continue  # its type error is already reported
        key = (
            repr(item)
            if list_type == "set"
            else ", ".join(f"{n}={item.get(n, defaults.get(n))!r}" for n in names or [])
        )
        if key in seen:
            errors.append(
                f"{path}[{index}]: duplicate {'value' if list_type == 'set' else 'key'}"
                f" {key}, already at {path}[{seen[key]}]"
            )
        seen.setdefault(key, index)
    return errors


def cel_errors(value: Any, schema: dict, where: str) -> list[str]:
    return [
        f"{where}: {rule.get('message') or 'failed'} (rule: {rule['rule']})"
        for rule in schema.get("x-kubernetes-validations", [])
        if cel_verdict(rule["rule"], value) is False
    ]


def cel_verdict(rule: str, value: Any) -> bool | None:
    """True/False for `self in [...]` and boolean combinations of `has(self.f)`; None otherwise
    (transition rules on `oldSelf` never apply to an object being created)."""
    if "oldSelf" in rule:
        return None
    membership = re.fullmatch(r"\s*self in (\[.*\])\s*", rule)
    if membership:
        return value in ast.literal_eval(membership[1])
    # has(self.f) becomes the string literal 'f', whose truth is "f is set" in has_fields below
    text = HAS_FIELD.sub(lambda m: repr(m[1]), rule).replace("&&", " and ").replace("||", " or ")
    try:
        tree = ast.parse(re.sub(r"!(?!=)", " not ", text).strip(), mode="eval")
    except SyntaxError:
        return None
    return has_fields(tree.body, value)


def has_fields(node: ast.expr, value: Any) -> bool | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return isinstance(value, dict) and value.get(node.value) is not None
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        inner = has_fields(node.operand, value)
        return None if inner is None else not inner
    if isinstance(node, ast.BoolOp):
        parts = [has_fields(part, value) for part in node.values]
        if None in parts:
            return None
        return all(parts) if isinstance(node.op, ast.And) else any(parts)
    return None


def cel_rules(kind: str) -> list[tuple[str, str, bool]]:
    """(path, rule, checked here) for every CEL rule in a kind's schema."""
    found: list[tuple[str, str, bool]] = []

    def walk(node: dict, path: str) -> None:
        for rule in node.get("x-kubernetes-validations", []):
            probe = cel_verdict(rule["rule"], {})
            found.append((path, rule["rule"], probe is not None))
        for name, sub in node.get("properties", {}).items():
            walk(sub, child(path, name))
        if isinstance(node.get("items"), dict):
            walk(node["items"], f"{path}[*]")
        if isinstance(node.get("additionalProperties"), dict):
            walk(node["additionalProperties"], f"{path}[*]")

    walk(crd_schema(kind), "")
    return found


def check_object_meta(meta: Any) -> list[str]:
    """Top-level metadata is ObjectMeta, validated by the API server rather than the CRD."""
    if not isinstance(meta, dict):
        return [f"metadata: expected object with a name, found {describe(meta)}"]
    errors = [
        unknown_field(child("metadata", str(k)), str(k), dict.fromkeys(OBJECT_META))
        for k in meta
        if k not in OBJECT_META
    ]
    if "name" not in meta and "generateName" not in meta:
        errors.append("metadata.name: required field is missing")
    for key, pattern in (("name", DNS_SUBDOMAIN), ("namespace", DNS_LABEL)):
        if key in meta and not (isinstance(meta[key], str) and pattern.fullmatch(meta[key])):
            errors.append(
                f"metadata.{key}: expected a lowercase DNS-1123 name, found {describe(meta[key])}"
            )
    for field in ("labels", "annotations"):
        errors += string_map_errors(meta.get(field) or {}, f"metadata.{field}", field == "labels")
    return errors


def string_map_errors(values: Any, where: str, labels: bool) -> list[str]:
    if not isinstance(values, dict):
        return [f"{where}: expected object of strings, found {describe(values)}"]
    errors = []
    for key, value in values.items():
        at = child(where, str(key))
        if not isinstance(value, str):
            errors.append(f"{at}: expected string, found {describe(value)}")
        elif labels and not (len(value) <= 63 and (value == "" or LABEL_NAME.fullmatch(value))):
            errors.append(
                f"{at}: expected a label value (<= 63 of A-Z a-z 0-9 - _ .), "
                f"found {describe(value)}"
            )
        if labels and not valid_label_key(str(key)):
            errors.append(f"{at}: expected a label key like 'example.com/name', found {key!r}")
    return errors


def valid_label_key(key: str) -> bool:
    prefix, _, name = key.rpartition("/")
    prefix_ok = not prefix or (len(prefix) <= 253 and DNS_SUBDOMAIN.fullmatch(prefix))
    return bool(prefix_ok and len(name) <= 63 and LABEL_NAME.fullmatch(name))


def child(path: str, key: str) -> str:
    if re.fullmatch(r"[A-Za-z_][\w-]*", key):
        return f"{path}.{key}" if path else key
    return f"{path}[{key!r}]"


def expected(schema: dict) -> str:
    if schema.get("x-kubernetes-int-or-string"):
        return "integer or string"
    return str(schema.get("type", "any value"))


def describe(value: Any) -> str:
    names = {
        bool: "boolean",
        int: "integer",
        float: "number",
        str: "string",
        list: "list",
        dict: "object",
        type(None): "null",
    }
    if value is None:
        return "null"
    text = repr(value)
    text = text if len(text) <= 60 else text[:60] + "…"
    return f"{names.get(type(value), type(value).__name__)} {text}"
