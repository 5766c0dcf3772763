#!/usr/bin/env python3
"""The benchmark's Python modules (bench/) import one another without a cycle, none imports the
driver (bench/bench.py), and every part the driver lists exists and has its `run(ctx)`.

bench.py was once a 1,500-line module that its parts imported back (`import bench`), which only
worked because it planted itself in sys.modules; a part now takes what it shares from
bench/common.py, so a part can be read, and run (BENCH_ONLY), without the rest.

    python3 scripts/check-bench-imports.py              # the repository's bench/
    python3 scripts/check-bench-imports.py --self-test  # proves the check can still fail
"""

import ast
import os
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DRIVER = "bench"


def modules(bench_dir):
    """{dotted name as bench/ on sys.path sees it: path} for every module under bench/."""
    found = {}
    for folder, dirs, files in os.walk(bench_dir):
        dirs[:] = sorted(d for d in dirs if d not in ("__pycache__", "node_modules", "proposals"))
        for name in sorted(files):
            if not name.endswith(".py"):
                continue
            rel = os.path.relpath(os.path.join(folder, name), bench_dir)[: -len(".py")]
            dotted = rel.replace(os.sep, ".")
            if dotted.endswith(".__init__"):
                dotted = dotted[: -len(".__init__")]
            found[dotted] = os.path.join(folder, name)
    return found


def local_imports(path, dotted, known):
    """The modules of `known` that `path` imports, wherever in the file (a function-level import
    closes a cycle as surely as a top-level one)."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    package = dotted.rsplit(".", 1)[0] if "." in dotted else ""
    out = set()

    def add(name):
        # `import parts.part1_noop` imports parts too; the longest known prefix is the module.
        parts = name.split(".")
        for i in range(len(parts), 0, -1):
            candidate = ".".join(parts[:i])
            if candidate in known:
                out.add(candidate)
                return

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: max(0, len(package.split(".")) - (node.level - 1))] if package else []
                base = ".".join([p for p in anchor if p] + ([base] if base else []))
            for alias in node.names:
                add(f"{base}.{alias.name}" if base else alias.name)
            add(base)
    out.discard(dotted)
    return out


def cycles(graph):
    """Every elementary cycle found by a depth-first search, each once, as a list of modules."""
    found = []
    seen = set()
    state = {}

    def visit(node, stack):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                cycle = stack[stack.index(nxt):] + [nxt]
                key = frozenset(cycle)
                if key not in seen:
                    seen.add(key)
                    found.append(cycle)
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    return found


def listed_parts(driver_path):
    """The module names of the driver's PARTS list: [(number, module)]."""
    with open(driver_path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), driver_path)
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "PARTS" for t in node.targets):
            return ast.literal_eval(node.value)
    return None


def has_run(path):
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    return any(isinstance(n, ast.FunctionDef) and n.name == "run" and len(n.args.args) == 1 for n in tree.body)


def check(bench_dir):
    known = modules(bench_dir)
    graph = {m: local_imports(p, m, known) for m, p in known.items()}
    problems = []
    for m in sorted(graph):
        if DRIVER in graph[m]:
            problems.append(
                f"bench/{known[m][len(bench_dir) + 1:]} imports the driver (bench.py): take what it needs from bench/common.py instead"
            )
    for cycle in cycles({m: deps - {DRIVER} for m, deps in graph.items()}):
        problems.append("import cycle: " + " -> ".join(cycle))
    if DRIVER in known:
        parts = listed_parts(known[DRIVER])
        if parts is None:
            problems.append("bench/bench.py has no PARTS list")
        for num, module in parts or []:
            if module not in known:
                problems.append(f"part {num}: bench.py lists {module}, which is not a module under bench/")
            elif not has_run(known[module]):
                problems.append(f"part {num}: {module} has no top-level run(ctx)")
    return problems, len(known)


def self_test():
    scratch = tempfile.TemporaryDirectory()

    def tree(files):
        tmp = tempfile.mkdtemp(dir=scratch.name)
        for rel, text in files.items():
            path = os.path.join(tmp, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                f.write(text)
        return tmp

    good = tree({
        "bench.py": 'import common\nPARTS = [("1", "parts.part1_a")]\n',
        "common.py": "import os\n",
        "parts/__init__.py": "",
        "parts/part1_a.py": "from common import os\nimport history\n\ndef run(ctx):\n    return ''\n",
        "history.py": "import json\n",
    })
    assert check(good)[0] == [], check(good)[0]
    bad = tree({
        "bench.py": 'PARTS = [("1", "parts.part1_a"), ("2", "parts.part2_gone"), ("3", "helper")]\n',
        "common.py": "def f():\n    import helper\n",
        "helper.py": "from common import f\n",
        "parts/part1_a.py": "def run(ctx):\n    import bench\n",
    })
    problems = check(bad)[0]
    wanted = ["part1_a.py imports the driver", "import cycle: common -> helper -> common", "parts.part2_gone", "helper has no top-level run"]
    assert len(problems) == len(wanted), problems
    for fragment, problem in zip(wanted, problems):
        assert fragment in problem, (fragment, problem)
    scratch.cleanup()
    print("check-bench-imports self-test: ok")


def main():
    if "--self-test" in sys.argv[1:]:
        self_test()
        return 0
    problems, count = check(os.path.join(ROOT, "bench"))
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        return 1
    print(f"check-bench-imports: {count} modules under bench/, no cycle, every listed part has run(ctx)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
