#!/usr/bin/env python3
"""Checks that the function's IAM role grants exactly what the code calls.

The code's AWS calls: every operation of an `aws-sdk-*` crate (the folders of the crate's
src/operation/, found through `cargo metadata`) called as `.operation()` in a file of src/ that
names that crate. Each becomes `<service>:<Operation>`. The grants: every Action in the
policies of the role in template.yaml. Grants the code does not make itself are allowed only
when listed in PLATFORM with the reason.

Usage: check-iam.py [--template FILE] [--src DIR] | --self-test. Exit 0 clean, 1 findings.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROLE = "MigratorRole"
# Actions someone other than our code uses on the function's behalf.
PLATFORM = {
    "logs:CreateLogStream": "the Lambda service writes the function's logs",
    "logs:PutLogEvents": "the Lambda service writes the function's logs",
    "ec2:CreateNetworkInterface": "the Lambda service attaches the function to the VPC",
    "ec2:DescribeNetworkInterfaces": "the Lambda service attaches the function to the VPC",
    "ec2:DescribeSubnets": "the Lambda service attaches the function to the VPC",
    "ec2:DeleteNetworkInterface": "the Lambda service attaches the function to the VPC",
    "ec2:AssignPrivateIpAddresses": "the Lambda service attaches the function to the VPC",
    "ec2:UnassignPrivateIpAddresses": "the Lambda service attaches the function to the VPC",
    "kms:Decrypt": "Secrets Manager decrypts a secret under a customer key on GetSecretValue's behalf",
}


# Actions only the CLI calls, with the operator's own credentials, never the function's role
# (docs/deploy.md lists what an operator needs).
CLI_ONLY: dict[str, str] = {
    "ssm:GetParameters": "envs reads a fleet's target states ten to a call; the function reads none",
}


def sdk_operations(root: Path) -> dict[str, set[str]]:
    """IAM service prefix -> the snake_case operations its SDK crate has."""
    # Online (not offline-only): the metadata covers every platform's crates, which a build for this one
    # never downloads (bootstrap fetches them all; without it cargo fetches what is missing).
    out = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--locked"],
        cwd=root, check=True, capture_output=True, text=True,
    ).stdout
    services: dict[str, set[str]] = {}
    for package in json.loads(out)["packages"]:
        name = package["name"]
        if not name.startswith("aws-sdk-"):
            continue
        ops = Path(package["manifest_path"]).parent / "src" / "operation"
        services[name.removeprefix("aws-sdk-")] = {p.name for p in ops.iterdir() if p.is_dir()}
    return services


def code_calls(src: Path, services: dict[str, set[str]]) -> dict[str, list[str]]:
    """`service:Operation` -> where the code calls it."""
    calls: dict[str, list[str]] = {}
    for path in sorted(src.rglob("*.rs")):
        text = path.read_text()
        for service, ops in services.items():
            if f"aws_sdk_{service}" not in text:
                continue
            for n, line in enumerate(text.splitlines(), 1):
                for op in re.findall(r"\.\s*([a-z][a-z0-9_]*)\s*\(\s*\)", line):
                    if op in ops:
                        action = f"{service}:{''.join(w.title() for w in op.split('_'))}"
                        calls.setdefault(action, []).append(f"{path}:{n}")
    return calls


def granted(template: str) -> set[str]:
    """The Actions of the role's policies (not its trust policy)."""
    block = re.search(rf"^  {ROLE}:\n(.*?)(?=^  \S|\Z)", template, re.M | re.S)
    if not block:
        raise SystemExit(f"template: no resource {ROLE}")
    policies = block.group(1).split("Policies:", 1)
    if len(policies) != 2:
        raise SystemExit(f"template: {ROLE} has no Policies")
    actions: set[str] = set()
    lines = policies[1].splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"^(\s*)(?:- )?Action:\s*(.*)$", line)
        if not m:
            continue
        if m.group(2):
            actions.add(m.group(2).strip())
            continue
        indent = len(m.group(1))
        for item in lines[i + 1:]:
            im = re.match(r"^(\s*)- (\S+)\s*$", item)
            if not im or len(im.group(1)) <= indent - 2:
                break
            actions.add(im.group(2))
    return actions


def check(template: str, calls: dict[str, list[str]]) -> list[str]:
    grants = granted(template)
    findings = []
    for action in sorted(set(calls) - grants - set(CLI_ONLY)):
        findings.append(f"{action} is called ({', '.join(calls[action])}) but {ROLE} does not grant it")
    for action in sorted(grants - set(calls) - set(PLATFORM)):
        findings.append(f"{ROLE} grants {action}, which nothing in src/ calls: remove it, or list it in PLATFORM with the reason")
    return findings


SELF_TEST_TEMPLATE = f"""Resources:
  {ROLE}:
    Properties:
      AssumeRolePolicyDocument:
        Statement:
          - Action: sts:AssumeRole
      Policies:
        - PolicyDocument:
            Statement:
              - Action: secretsmanager:GetSecretValue
              - Action:
                  - ssm:PutParameter
                  - ssm:DeleteParameter
                Resource: "*"
  Other:
    Properties:
      Action: ssm:GetParameter
"""


def self_test() -> None:
    services = {"ssm": {"put_parameter", "get_parameter", "delete_parameter"}, "secretsmanager": {"get_secret_value"}}
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp)
        (src / "state.rs").write_text(
            "use aws_sdk_ssm::Client;\nfn f(c: Client) { c.put_parameter().send(); c.get_parameter()\n.send(); }\n"
        )
        (src / "secrets.rs").write_text("use aws_sdk_secretsmanager as sm;\nfn g(c: sm::Client) { c.get_secret_value().send(); }\n")
        (src / "other.rs").write_text("fn h(x: X) { x.get_parameter(); }\n")  # names no SDK crate: not a call
        calls = code_calls(src, services)
    assert set(calls) == {"ssm:PutParameter", "ssm:GetParameter", "secretsmanager:GetSecretValue"}, calls
    assert granted(SELF_TEST_TEMPLATE) == {"secretsmanager:GetSecretValue", "ssm:PutParameter", "ssm:DeleteParameter"}
    findings = check(SELF_TEST_TEMPLATE, calls)
    assert len(findings) == 2, findings
    assert "ssm:GetParameter is called" in findings[0], findings
    assert "grants ssm:DeleteParameter" in findings[1], findings
    print("check-iam self-test: ok (finds a missing grant and an unused one)")


def main() -> int:
    parser = argparse.ArgumentParser()
    root = Path(__file__).resolve().parent.parent
    parser.add_argument("--template", type=Path, default=root / "template.yaml")
    parser.add_argument("--src", type=Path, default=root / "src")
    parser.add_argument("--self-test", action="store_true")
    args = parser.parse_args()
    if args.self_test:
        self_test()
        return 0
    calls = code_calls(args.src, sdk_operations(root))
    findings = check(args.template.read_text(), calls)
    for finding in findings:
        print(f"check-iam: {finding}", file=sys.stderr)
    if not findings:
        function_calls = sorted(set(calls) - set(CLI_ONLY))
        cli_calls = sorted(set(calls) & set(CLI_ONLY))
        print(f"check-iam: {ROLE} grants exactly the {len(function_calls)} AWS calls of src/ ({', '.join(function_calls)}) "
              f"and the platform's; CLI only, with the operator's credentials: {', '.join(cli_calls) or 'none'}")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
