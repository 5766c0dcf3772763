#!/usr/bin/env python3
"""Validates the workflows' state machines with a real Amazon States Language validator
(npm `asl-validator`, pinned in package-lock.json), for every shape the template can deploy: the
Definitions of ReleaseStateMachine and FleetStateMachine in template.yaml, with each condition
they use resolved both ways (e.g. with and without the pre-migration snapshot) and their
substitutions filled in. `definition()` is what the executed workflow tests (tests/it/workflows.rs)
run, so what is validated here is what they execute.

Usage: check-asl.py [--template FILE]. Exit 0 valid, 1 invalid.
       check-asl.py --print RESOURCE [--set NAME=VALUE ...]: prints that Definition as JSON,
       conditions false, substitutions from --set then the plausible values below.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
RESOURCES = ("ReleaseStateMachine", "FleetStateMachine")
# Plausible values for what CloudFormation substitutes at deploy time.
VALUES = {
    "MigratorFunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:wishlist-migrator-prod:live",
    "SnapshotCluster": "wishlist-prod",
    "FleetBucket": "wishlist-fleet-prod",
    "FleetMaxConcurrency": "8",
    "FleetToleratedFailurePercentage": "10",
}
NO_VALUE = object()


class CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation's short-form tags (`!If`, `!Ref`, ...) as `{"Fn::If": ...}` values."""


def _tag(loader, suffix, node):
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


CfnLoader.add_multi_constructor("!", _tag)


def conditions_used(node, found):
    if isinstance(node, dict):
        if "Fn::If" in node:
            found.add(node["Fn::If"][0])
        for v in node.values():
            conditions_used(v, found)
    elif isinstance(node, list):
        for v in node:
            conditions_used(v, found)
    return found


def resolve(node, truth):
    if isinstance(node, dict):
        if "Fn::If" in node:
            name, yes, no = node["Fn::If"]
            return resolve(yes if truth[name] else no, truth)
        if node == {"Ref": "AWS::NoValue"}:
            return NO_VALUE
        out = {}
        for k, v in node.items():
            r = resolve(v, truth)
            if r is not NO_VALUE:
                out[k] = r
        return out
    if isinstance(node, list):
        return [r for r in (resolve(v, truth) for v in node) if r is not NO_VALUE]
    return node


def substitute(definition, values):
    text = json.dumps(definition)
    return json.loads(re.sub(r"\$\{(\w+)\}", lambda m: values.get(m.group(1), m.group(0)), text))


def load(template: Path) -> dict:
    return yaml.load(template.read_text(), Loader=CfnLoader)


def definition(template: dict, resource: str, truth: dict, values: dict) -> dict:
    """A state machine's Definition as CloudFormation would deploy it, its conditions as `truth`
    says (absent ones false) and its substitutions from `values` (then VALUES)."""
    props = template["Resources"][resource]["Properties"]
    names = conditions_used(props["Definition"], set())
    truth = {name: bool(truth.get(name)) for name in names}
    return substitute(resolve(props["Definition"], truth), {**VALUES, **values})


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--template", type=Path, default=ROOT / "template.yaml")
    parser.add_argument("--print", dest="resource")
    parser.add_argument("--set", action="append", default=[])
    args = parser.parse_args()
    template = load(args.template)
    if args.resource:
        values = dict(pair.split("=", 1) for pair in args.set)
        print(json.dumps(definition(template, args.resource, {}, values)))
        return 0
    validator = ROOT / "node_modules" / ".bin" / "asl-validator"
    failed = False
    for RESOURCE in RESOURCES:
        failed |= check(template, RESOURCE, validator)
    return 1 if failed else 0


def check(template: dict, RESOURCE: str, validator: Path) -> bool:
    props = template["Resources"][RESOURCE]["Properties"]
    names = sorted(conditions_used(props["Definition"], set()))
    failed = False
    for combo in itertools.product([True, False], repeat=len(names)):
        truth = dict(zip(names, combo))
        definition = substitute(resolve(props["Definition"], truth), VALUES)
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(definition, f)
        r = subprocess.run([str(validator), "--json-path", f.name], capture_output=True, text=True)
        shape = ", ".join(f"{k}={v}" for k, v in truth.items()) or "as written"
        states = len(definition.get("States", {}))
        if r.returncode != 0:
            failed = True
            print(f"check-asl: {RESOURCE} ({shape}) is not valid States Language:\n{r.stdout}{r.stderr}", file=sys.stderr)
        else:
            print(f"check-asl: {RESOURCE} ({shape}): valid, {states} states, starts at {definition['StartAt']}")
    return failed


if __name__ == "__main__":
    sys.exit(main())
