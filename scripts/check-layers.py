#!/usr/bin/env python3
"""Checks that src/ keeps its layers: no import cycles, and no module importing a higher layer.

Every .rs file under src/ (except src/bin/, the binaries) is one module of the graph:
src/db/ledger.rs is db::ledger, src/db/mod.rs is db, src/lib.rs is the crate root. An edge is a
path in code that names another module: `use` trees, inline `crate::`, `super::` and `self::`
paths, `pub use` re-exports, and paths that start with a child module or a name a `use` brought in.
A path counts for the longest prefix of it that is a module file. `mod x;` is not an edge.

Usage: check-layers.py [--src DIR] | --self-test. Exit 0 clean, 1 findings, 2 unusable input.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import textwrap
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

# Top-level module -> rank. A module may import its own layer (without a cycle) and lower ones.
# `error` is rank 0 alone so that it stays a leaf: it may import nothing else in the crate.
# The crate root (lib.rs) is above every layer: it may import anything, and nothing imports it
# (importing a re-export from the root would hide which layer the item comes from).
LAYERS = {
    "error": 0,
    "sql": 1,
    "migrations": 2,
    "lint": 4,
    "db": 3,
    "schema": 4,
    "config": 5,
    "online": 5,
    "engine": 6,
    "report": 7,
    "aws": 8,
    "lambda": 9,
    "fleet": 9,
}
ROOT = ()  # the crate root's module path
ROOT_RANK = max(LAYERS.values()) + 1

# Binaries are separate crates that use the library from outside.
EXCLUDED_DIRS = ("bin",)
EXCLUDED_ROOT_FILES = ("main.rs",)

PATH_STARTS = {"crate", "self", "super"}


# --- lexing ------------------------------------------------------------------------------------


@dataclass
class Token:
    kind: str  # "ident" or "punct"
    text: str
    line: int


class LexError(Exception):
    pass


def tokenize(source: str) -> list[Token]:
    """Identifiers and punctuation; comments, string/char literals, lifetimes and numbers dropped."""
    tokens: list[Token] = []
    i, n, line = 0, len(source), 1

    def skip_quoted(start: int, quote: str) -> int:
        """Index after the closing quote of a literal whose opening quote is at start."""
        nonlocal line
        j = start + 1
        while j < n:
            c = source[j]
            if c == "\\":
                if j + 1 < n and source[j + 1] == "\n":
                    line += 1
                j += 2
                continue
            if c == "\n":
                line += 1
            if c == quote:
                return j + 1
            j += 1
        raise LexError(f"line {line}: unterminated literal")

    def skip_raw(start: int) -> int:
        """start is at the first '#' or '"' after the r prefix of a raw string."""
        nonlocal line
        j = start
        hashes = 0
        while j < n and source[j] == "#":
            hashes += 1
            j += 1
        if j >= n or source[j] != '"':
            raise LexError(f"line {line}: malformed raw string")
        end = '"' + "#" * hashes
        k = source.find(end, j + 1)
        if k < 0:
            raise LexError(f"line {line}: unterminated raw string")
        line += source.count("\n", j, k)
        return k + len(end)

    while i < n:
        c = source[i]
        if c == "\n":
            line += 1
            i += 1
        elif c.isspace():
            i += 1
        elif source.startswith("//", i):
            k = source.find("\n", i)
            i = n if k < 0 else k
        elif source.startswith("/*", i):
            # Rust block comments nest.
            depth, j = 1, i + 2
            while j < n and depth:
                if source.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif source.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    if source[j] == "\n":
                        line += 1
                    j += 1
            if depth:
                raise LexError(f"line {line}: unterminated block comment")
            i = j
        elif c == '"':
            i = skip_quoted(i, '"')
        elif c == "'":
            # A char literal ('x', '\n', '\u{..}', '"') or a lifetime/label ('a, 'static).
            if i + 1 < n and source[i + 1] == "\\":
                i = skip_quoted(i, "'")
            elif i + 2 < n and source[i + 2] == "'":
                i += 3
            else:
                i += 1
                while i < n and (source[i].isalnum() or source[i] == "_"):
                    i += 1
        elif c.isalpha() or c == "_":
            j = i
            while j < n and (source[j].isalnum() or source[j] == "_"):
                j += 1
            word = source[i:j]
            nxt = source[j] if j < n else ""
            if word in ("r", "br", "cr") and (nxt == '"' or (nxt == "#" and source[j + 1 : j + 2] in ('"', "#"))):
                i = skip_raw(j)
            elif word in ("b", "c") and nxt == '"':
                i = skip_quoted(j, '"')
            elif word == "b" and nxt == "'":
                i = skip_quoted(j, "'")
            elif word == "r" and nxt == "#":
                # Raw identifier r#name.
                k = j + 1
                while k < n and (source[k].isalnum() or source[k] == "_"):
                    k += 1
                tokens.append(Token("ident", source[j + 1 : k], line))
                i = k
            else:
                tokens.append(Token("ident", word, line))
                i = j
        elif c.isdigit():
            while i < n and (source[i].isalnum() or source[i] == "_"):
                i += 1
        elif source.startswith("::", i):
            tokens.append(Token("punct", "::", line))
            i += 2
        else:
            tokens.append(Token("punct", c, line))
            i += 1
    return tokens


# --- extracting paths --------------------------------------------------------------------------


@dataclass
class PathRef:
    scope: tuple[str, ...]  # the (possibly inline) module the path is written in
    segments: tuple[str, ...]  # as written, e.g. ("super", "ledger", "LedgerRow")
    line: int
    text: str
    in_use: bool
    macro: bool = False  # followed by `!`


@dataclass
class FileInfo:
    module: tuple[str, ...]
    rel: str  # path shown in messages, relative to the parent of src/
    refs: list[PathRef] = field(default_factory=list)
    # scope -> name -> absolute path (child modules and `use` bindings), for bare first segments
    names: dict[tuple[str, ...], dict[str, tuple[str, ...]]] = field(default_factory=dict)
    # scope -> absolute paths glob-imported into it
    globs: dict[tuple[str, ...], list[tuple[str, ...]]] = field(default_factory=dict)
    # (scope, name, segments-as-written) of `use` bindings still to make absolute
    pending_bindings: list[tuple[tuple[str, ...], str, tuple[str, ...]]] = field(default_factory=list)
    pending_globs: list[tuple[tuple[str, ...], tuple[str, ...]]] = field(default_factory=list)


def is_ident(tokens: list[Token], i: int, text: str | None = None) -> bool:
    return i < len(tokens) and tokens[i].kind == "ident" and (text is None or tokens[i].text == text)


def is_punct(tokens: list[Token], i: int, text: str) -> bool:
    return i < len(tokens) and tokens[i].kind == "punct" and tokens[i].text == text


def parse_use_tree(tokens: list[Token], i: int, prefix: tuple[str, ...], out: list) -> int:
    """Parses one use tree at i, appending (segments, binding name or None for a glob, line)."""
    segments = list(prefix)
    line = tokens[i].line if i < len(tokens) else 0
    while True:
        if is_punct(tokens, i, "{"):
            i += 1
            while not is_punct(tokens, i, "}"):
                if i >= len(tokens):
                    raise LexError("unterminated use group")
                i = parse_use_tree(tokens, i, tuple(segments), out)
                if is_punct(tokens, i, ","):
                    i += 1
            return i + 1
        if is_punct(tokens, i, "*"):
            out.append((tuple(segments), None, tokens[i].line))
            return i + 1
        if is_punct(tokens, i, "$") and is_ident(tokens, i + 1, "crate"):
            i += 1
        if not is_ident(tokens, i):
            raise LexError(f"line {line}: unexpected {tokens[i].text if i < len(tokens) else 'end'} in use")
        segments.append(tokens[i].text)
        line = tokens[i].line
        i += 1
        if is_punct(tokens, i, "::"):
            i += 1
            continue
        name = segments[-1]
        if name == "self":
            # `a::{self}` names a itself.
            segments.pop()
            name = segments[-1] if segments else "self"
        if is_ident(tokens, i, "as"):
            name = tokens[i + 1].text
            i += 2
        out.append((tuple(segments), name, line))
        return i


def scan_file(path: Path, module: tuple[str, ...], rel: str) -> FileInfo:
    info = FileInfo(module, rel)
    tokens = tokenize(path.read_text(encoding="utf-8"))
    scope_stack: list[tuple[tuple[str, ...], int]] = []  # (inline module scope, brace depth it opened at)
    depth = 0
    scope = module
    i = 0
    while i < len(tokens):
        t = tokens[i]
        if t.kind == "punct":
            if t.text == "{":
                depth += 1
            elif t.text == "}":
                depth -= 1
                if scope_stack and scope_stack[-1][1] == depth:
                    scope_stack.pop()
                    scope = scope_stack[-1][0] if scope_stack else module
            i += 1
            continue
        if t.text == "mod" and is_ident(tokens, i + 1) and (is_punct(tokens, i + 2, ";") or is_punct(tokens, i + 2, "{")):
            child = scope + (tokens[i + 1].text,)
            info.names.setdefault(scope, {})[tokens[i + 1].text] = child
            if is_punct(tokens, i + 2, "{"):
                scope_stack.append((child, depth))
                depth += 1
                scope = child
            i += 3
            continue
        if t.text == "use" and not is_punct(tokens, i - 1, "::"):
            j = i + 1
            if is_punct(tokens, j, "::"):
                # `use ::name` is always an external crate.
                while j < len(tokens) and not is_punct(tokens, j, ";"):
                    j += 1
                i = j + 1
                continue
            leaves: list = []
            j = parse_use_tree(tokens, j, (), leaves)
            for segments, name, line in leaves:
                text = "::".join(segments) + ("::*" if name is None else "")
                info.refs.append(PathRef(scope, segments, line, text, in_use=True))
                if name is None:
                    info.pending_globs.append((scope, segments))
                elif name != "_":
                    info.pending_bindings.append((scope, name, segments))
            i = j
            continue
        # A path in code: starts at an identifier that follows neither `::` nor `.`.
        if is_punct(tokens, i + 1, "::") and not is_punct(tokens, i - 1, "::") and not is_punct(tokens, i - 1, "."):
            start_line = t.line
            dollar = is_punct(tokens, i - 1, "$")
            if is_ident(tokens, i - 1, "in") and is_punct(tokens, i - 2, "("):
                # pub(in crate::a): a visibility bound, not a use of the module.
                i += 1
                continue
            segments = [t.text]
            j = i + 1
            while is_punct(tokens, j, "::") and is_ident(tokens, j + 1):
                segments.append(tokens[j + 1].text)
                j += 2
            if dollar and segments[0] != "crate":
                i = j
                continue
            macro = is_punct(tokens, j, "!")
            info.refs.append(PathRef(scope, tuple(segments), start_line, "::".join(segments), in_use=False, macro=macro))
            i = j
            continue
        i += 1
    return info


# --- resolving ---------------------------------------------------------------------------------


class Crate:
    def __init__(self, src: Path):
        self.src = src
        self.files: dict[tuple[str, ...], FileInfo] = {}
        self.problems: list[str] = []
        for path in sorted(src.rglob("*.rs")):
            rel_parts = path.relative_to(src).parts
            if rel_parts[0] in EXCLUDED_DIRS or (len(rel_parts) == 1 and rel_parts[0] in EXCLUDED_ROOT_FILES):
                continue
            parts = list(rel_parts)
            parts[-1] = parts[-1][: -len(".rs")]
            if parts[-1] == "mod":
                parts.pop()
            if parts == ["lib"]:
                parts = []
            module = tuple(parts)
            rel = path.relative_to(src.parent).as_posix()
            if module in self.files:
                self.problems.append(f"{rel} and {self.files[module].rel} are both module {show(module)}")
                continue
            try:
                self.files[module] = scan_file(path, module, rel)
            except (LexError, UnicodeDecodeError) as e:
                self.problems.append(f"{rel}: cannot read: {e}")
        if ROOT not in self.files:
            self.problems.append(f"no {src.name}/lib.rs")
        self.names: dict[tuple[str, ...], dict[str, tuple[str, ...]]] = {}
        self.globs: dict[tuple[str, ...], list[tuple[str, ...]]] = {}
        for info in self.files.values():
            for scope, names in info.names.items():
                self.names.setdefault(scope, {}).update(names)
        # `use` bindings refer to each other (`use crate::db; use db::ledger;`): resolve to a fixpoint.
        pending = [(info, b) for info in self.files.values() for b in info.pending_bindings]
        pending_globs = [(info, g) for info in self.files.values() for g in info.pending_globs]
        for _ in range(len(pending) + len(pending_globs) + 1):
            progress = False
            left = []
            for info, (scope, name, segments) in pending:
                absolute = self.absolute(scope, segments)
                if absolute is None:
                    left.append((info, (scope, name, segments)))
                else:
                    self.names.setdefault(scope, {}).setdefault(name, absolute)
                    progress = True
            pending = left
            left_globs = []
            for info, (scope, segments) in pending_globs:
                absolute = self.absolute(scope, segments)
                if absolute is None:
                    left_globs.append((info, (scope, segments)))
                else:
                    self.globs.setdefault(scope, []).append(absolute)
                    progress = True
            pending_globs = left_globs
            if not progress:
                break

    def lookup(self, scope: tuple[str, ...], name: str, seen: set | None = None) -> tuple[str, ...] | None:
        """What a bare first segment means in scope, if it is something of this crate."""
        found = self.names.get(scope, {}).get(name)
        if found is not None:
            return found
        seen = seen or set()
        if scope in seen:
            return None
        seen.add(scope)
        for source in self.globs.get(scope, []):
            found = self.lookup(source, name, seen)
            if found is not None:
                return found
        return None

    def absolute(self, scope: tuple[str, ...], segments: tuple[str, ...]) -> tuple[str, ...] | None:
        """The crate-absolute path of segments written in scope; None when not this crate's."""
        if not segments:
            return None
        first, rest = segments[0], list(segments[1:])
        if first == "crate":
            base: list[str] = []
        elif first in ("self", "super"):
            base = list(scope)
            rest = list(segments)
            while rest and rest[0] in ("self", "super"):
                if rest.pop(0) == "super":
                    if not base:
                        return None
                    base.pop()
        else:
            target = self.lookup(scope, first)
            if target is None:
                return None
            base = list(target)
        return tuple(base + rest)

    def module_of(self, absolute: tuple[str, ...]) -> tuple[str, ...]:
        for k in range(len(absolute), -1, -1):
            if absolute[:k] in self.files:
                return absolute[:k]
        return ROOT


@dataclass
class Edge:
    source: tuple[str, ...]
    target: tuple[str, ...]
    where: str  # file:line
    text: str


@dataclass
class Result:
    modules: list[tuple[str, ...]]
    edges: dict[tuple[tuple[str, ...], tuple[str, ...]], Edge]
    cycles: list[tuple[list[tuple[str, ...]], list[list[tuple[str, ...]]]]]  # (component, cycles)
    upward: list[tuple[Edge, str]]
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not (self.cycles or self.upward or self.problems)


def show(module: tuple[str, ...]) -> str:
    return "::".join(module) if module else "crate"


def rank_of(module: tuple[str, ...]) -> int | None:
    if module == ROOT:
        return ROOT_RANK
    return LAYERS.get(module[0])


def layer_name(module: tuple[str, ...]) -> str:
    return "crate root" if module == ROOT else module[0]


def tarjan(nodes: list, succ: dict) -> list[list]:
    """Strongly connected components (iterative Tarjan, so deep graphs don't hit the recursion limit)."""
    index: dict = {}
    low: dict = {}
    on_stack: set = set()
    stack: list = []
    components: list[list] = []
    counter = 0
    for root in nodes:
        if root in index:
            continue
        work = [(root, iter(succ.get(root, ())))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, it = work[-1]
            advanced = False
            for nxt in it:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(succ.get(nxt, ()))))
                    advanced = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(component)
    return components


def covering_cycles(component: list, succ: dict) -> list[list]:
    """Short cycles that together use every edge inside the component, so each one is shown."""
    members = set(component)
    inner = sorted((u, v) for u in component for v in succ.get(u, ()) if v in members)
    covered: set = set()
    cycles = []
    for u, v in inner:
        if (u, v) in covered:
            continue
        # Shortest path v -> u inside the component closes the cycle u -> v -> ... -> u.
        previous = {v: None}
        queue = deque([v])
        while queue and u not in previous:
            x = queue.popleft()
            for y in sorted(succ.get(x, ())):
                if y in members and y not in previous:
                    previous[y] = x
                    queue.append(y)
        chain = []
        x = u
        while x is not None:
            chain.append(x)
            x = previous[x]
        chain.reverse()  # v ... u
        cycle = [u] + chain
        for a, b in zip(cycle, cycle[1:]):
            covered.add((a, b))
        cycles.append(cycle)
    return cycles


def analyze(src: Path) -> Result:
    crate = Crate(src)
    problems = list(crate.problems)
    edges: dict = {}
    for module, info in sorted(crate.files.items()):
        for ref in info.refs:
            absolute = crate.absolute(ref.scope, ref.segments)
            if absolute is None:
                continue
            target = crate.module_of(absolute)
            if ref.macro and target == ROOT:
                # #[macro_export] macros live at the root whichever module defines them.
                continue
            if target == module:
                continue
            edges.setdefault((module, target), Edge(module, target, f"{info.rel}:{ref.line}", ref.text))
    modules = sorted(crate.files)
    for module in modules:
        if module != ROOT and rank_of(module) is None:
            problems.append(
                f"{crate.files[module].rel}: top-level module `{module[0]}` has no layer: add it to LAYERS in scripts/check-layers.py"
            )
    succ: dict = {}
    for (a, b) in edges:
        succ.setdefault(a, set()).add(b)
    cycles = []
    for component in tarjan(modules, {k: sorted(v) for k, v in succ.items()}):
        if len(component) > 1:
            found = covering_cycles(sorted(component), succ)
            cycles.append((sorted(component), sorted(found, key=lambda c: (len(c), c))))
    cycles.sort()
    upward = []
    for (a, b), edge in sorted(edges.items()):
        if a == ROOT:
            continue
        ra, rb = rank_of(a), rank_of(b)
        if ra is None or rb is None or rb <= ra:
            continue
        if b == ROOT:
            why = "imports from the crate root: name the module that defines it"
        elif ra == 0:
            why = f"`{layer_name(a)}` is a leaf and may import nothing in the crate"
        else:
            why = f"layer {layer_name(a)} ({ra}) imports layer {layer_name(b)} ({rb})"
        upward.append((edge, why))
    return Result(modules, edges, cycles, upward, problems)


def render(result: Result) -> str:
    lines = [f"check-layers: {len(result.modules)} modules, {len(result.edges)} edges"]
    for problem in result.problems:
        lines.append(f"error: {problem}")
    if result.cycles:
        lines.append(f"import cycles: {len(result.cycles)} group(s) of modules that import each other")
        for n, (component, cycles) in enumerate(result.cycles, 1):
            lines.append(f"  [{n}] {len(component)} modules: {', '.join(show(m) for m in component)}")
            for cycle in cycles:
                lines.append("      " + " -> ".join(show(m) for m in cycle))
            members = set(component)
            lines.append("      where:")
            for (a, b), edge in sorted(result.edges.items()):
                if a in members and b in members:
                    lines.append(f"        {show(a)} -> {show(b)}  {edge.where}  {edge.text}")
    if result.upward:
        lines.append(f"upward imports: {len(result.upward)}")
        for edge, why in result.upward:
            lines.append(f"  {show(edge.source)} -> {show(edge.target)}  {edge.where}  {edge.text}  ({why})")
    if result.ok:
        lines.append("ok: no cycles, every import points down (" + " < ".join(sorted(LAYERS, key=LAYERS.get)) + ")")
    else:
        lines.append("FAILED: the layers are " + " < ".join(sorted(LAYERS, key=LAYERS.get)) + " (see scripts/check-layers.py)")
    return "\n".join(lines)


# --- self-test ---------------------------------------------------------------------------------


def write_tree(root: Path, files: dict[str, str]) -> Path:
    src = root / "src"
    for name, text in files.items():
        path = src / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return src


CLEAN = {
    "lib.rs": """
        //! Root docs naming crate::lambda::function, which is a comment.
        pub mod db;
        pub mod error;
        pub mod migrations;
        pub mod schema;
        pub use db::ledger::Ledger;
        pub use error::Error;
    """,
    "error.rs": """
        #[derive(Debug)]
        pub struct Error;
        #[cfg(test)]
        mod tests {
            use super::*;
        }
    """,
    "migrations/mod.rs": "pub mod source;\n",
    "migrations/source.rs": """
        use crate::error::Error;
        pub fn parse(s: &str) -> Result<(), Error> { let _q = '"'; let _l: &'static str = "crate::db::x"; Ok(()) }
    """,
    "db/mod.rs": """
        pub mod ledger;
        pub mod lock;
        pub use self::lock::Lock;
    """,
    "db/lock.rs": "pub struct Lock;\n",
    "db/ledger.rs": """
        use super::lock;
        pub struct Ledger(lock::Lock, crate::migrations::source::Marker);
        fn f() { let _ = super::super::error::Error; }
    """,
    # A nested folder: schema::drift has a mod.rs and a child.
    "schema/mod.rs": "pub mod drift;\n",
    "schema/drift/mod.rs": """
        mod compare;
        pub use compare::diff;
    """,
    "schema/drift/compare.rs": """
        use crate::db;
        pub fn diff() { let _ = db::ledger::Ledger; let _ = super::super::super::error::Error; }
    """,
}


def self_test() -> int:
    failures = []

    def check(name: str, condition: bool, detail: str = "") -> None:
        print(f"  {'ok  ' if condition else 'FAIL'} {name}")
        if not condition:
            failures.append(name)
            if detail:
                print(textwrap.indent(detail, "       "))

    def edges_of(result: Result) -> set[tuple[str, str]]:
        return {(show(a), show(b)) for a, b in result.edges}

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)

        print("self-test: clean tree")
        result = analyze(write_tree(tmp / "clean", CLEAN))
        check("passes", result.ok, render(result))
        expected = {
            ("crate", "db::ledger"),
            ("crate", "error"),
            ("migrations::source", "error"),
            ("db", "db::lock"),
            ("db::ledger", "db::lock"),
            ("db::ledger", "migrations::source"),
            ("db::ledger", "error"),
            ("schema::drift", "schema::drift::compare"),
            ("schema::drift::compare", "db"),
            ("schema::drift::compare", "db::ledger"),
            ("schema::drift::compare", "error"),
        }
        check("finds exactly the edges in code", edges_of(result) == expected, f"got {sorted(edges_of(result))}")

        print("self-test: cycle")
        files = dict(CLEAN)
        files["db/lock.rs"] = "pub struct Lock;\nfn f() { let _ = crate::db::ledger::Ledger; }\n"
        result = analyze(write_tree(tmp / "cycle", files))
        cycles = [" -> ".join(show(m) for m in c) for _, cs in result.cycles for c in cs]
        check("fails", not result.ok)
        check("names the cycle", "db::ledger -> db::lock -> db::ledger" in cycles, render(result))
        check("no upward import reported", not result.upward, render(result))

        print("self-test: upward import")
        files = dict(CLEAN)
        files["migrations/source.rs"] = "pub fn f() { let _ = crate::schema::drift::diff(); }\n"
        files["error.rs"] = "use crate::migrations::source;\npub struct Error;\n"
        result = analyze(write_tree(tmp / "upward", files))
        ups = {(show(e.source), show(e.target)) for e, _ in result.upward}
        check("fails", not result.ok)
        check("migrations -> schema is upward", ("migrations::source", "schema::drift") in ups, render(result))
        check("error is a leaf", ("error", "migrations::source") in ups, render(result))
        proc = subprocess.run([sys.executable, __file__, "--src", str(tmp / "upward" / "src")], capture_output=True, text=True)
        check("the command exits 1", proc.returncode == 1, proc.stdout + proc.stderr)

        print("self-test: nested use groups, comments and strings")
        files = dict(CLEAN)
        files["schema/drift/compare.rs"] = """
            use crate::{db::{ledger::{self, Ledger as L}, lock}, migrations::source::*};
            // use crate::error::Error;
            /// Returns crate::error::Error when ...
            /* a block comment /* nested */ still crate::error::Error */
            pub fn diff() { let _s = "crate::error::Error"; let _r = r#"crate::error::"Error""#; let _c = b'"'; }
        """
        result = analyze(write_tree(tmp / "groups", files))
        got = {b for a, b in edges_of(result) if a == "schema::drift::compare"}
        check("passes", result.ok, render(result))
        check("group leaves are edges, commented and quoted paths are not", got == {"db::ledger", "db::lock", "migrations::source"}, f"got {sorted(got)}")

        print("self-test: crate root, unknown layer, mod declarations")
        files = dict(CLEAN)
        files["lib.rs"] = CLEAN["lib.rs"] + "pub mod plugins;\n"
        files["plugins.rs"] = "mod inner { }\n"
        files["db/lock.rs"] = "pub struct Lock(crate::Error);\n"
        result = analyze(write_tree(tmp / "misc", files))
        ups = {(show(e.source), show(e.target)) for e, _ in result.upward}
        check("importing a root re-export is flagged", ("db::lock", "crate") in ups, render(result))
        check("a folder without a layer is an error", any("`plugins` has no layer" in p for p in result.problems), render(result))
        check("`mod x;` is no edge", ("crate", "plugins") not in edges_of(result))

    if failures:
        print(f"self-test FAILED: {len(failures)} check(s)")
        return 1
    print("self-test passed")
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--src", type=Path, default=Path(__file__).resolve().parent.parent / "src")
    parser.add_argument("--self-test", action="store_true", help="prove on synthetic trees that the check can fail")
    args = parser.parse_args(argv)
    if args.self_test:
        return self_test()
    if not args.src.is_dir():
        print(f"check-layers: {args.src} is not a directory", file=sys.stderr)
        return 2
    result = analyze(args.src)
    print(render(result))
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
