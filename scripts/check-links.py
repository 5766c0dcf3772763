#!/usr/bin/env python3
"""Every relative link in the project's Markdown resolves: the file exists and, when the link
names an anchor, a heading of that file makes it (GitHub's rule); and docs/README.md, the table
of contents, lists every page of docs/. The README is short and points into docs/, so a page
renamed or a heading reworded must not leave a reader at a dead link.

    python3 scripts/check-links.py              # the repository's Markdown
    python3 scripts/check-links.py --self-test  # proves the check can still fail
"""

import os
import re
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The pages a reader starts from and the pages they link to. Fixtures and vendored packages
# are other people's Markdown, not ours to keep linked.
TOP_LEVEL = ["README.md", "ARCHITECTURE.md", "RELIABILITY.md", "BENCHMARKS.md"]

LINK = re.compile(r"(?<!!)\[(?:[^\]\\]|\\.)*\]\(([^()\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def slug(heading):
    """GitHub's anchor for a heading: markup dropped, lower case, punctuation other than
    hyphens and underscores removed, each space a hyphen (runs are kept: `a - b` is `a---b`)."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = text.replace("`", "").replace("*", "")
    text = text.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def prose_lines(text):
    """The lines outside fenced code blocks, with their numbers."""
    fenced = False
    for number, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            yield number, line


def anchors(text):
    seen = {}
    found = set()
    for _, line in prose_lines(text):
        match = HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def without_code_spans(line):
    return re.sub(r"`[^`]*`", "", line)


def check(root, pages):
    problems = []
    cache = {}

    def anchors_of(path):
        if path not in cache:
            with open(path, encoding="utf-8") as f:
                cache[path] = anchors(f.read())
        return cache[path]

    for page in pages:
        path = os.path.join(root, page)
        with open(path, encoding="utf-8") as f:
            text = f.read()
        for number, line in prose_lines(text):
            for target in LINK.findall(without_code_spans(line)):
                if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):
                    continue  # http:, https:, mailto: are not this check's business
                file_part, _, anchor = target.partition("#")
                where = f"{page}:{number}: {target}"
                if file_part:
                    resolved = os.path.normpath(os.path.join(os.path.dirname(path), file_part))
                    if not resolved.startswith(root + os.sep):
                        problems.append(f"{where}: points outside the repository")
                        continue
                    if not os.path.exists(resolved):
                        problems.append(f"{where}: no such file")
                        continue
                else:
                    resolved = path
                if anchor:
                    if not resolved.endswith(".md") or os.path.isdir(resolved):
                        continue  # a line anchor into source (#L10) is GitHub's, not a heading
                    if anchor not in anchors_of(resolved):
                        problems.append(f"{where}: no heading makes the anchor #{anchor}")
    return problems


def unlisted_pages(root):
    """docs/README.md is the table of contents: a page it does not link is a page nobody finds."""
    docs = os.path.join(root, "docs")
    index = os.path.join(docs, "README.md")
    if not os.path.exists(index):
        return []
    with open(index, encoding="utf-8") as f:
        linked = {
            os.path.normpath(os.path.join(docs, t.partition("#")[0]))
            for _, line in prose_lines(f.read())
            for t in LINK.findall(line)
        }
    return [
        f"docs/README.md: does not list docs/{name}"
        for name in sorted(os.listdir(docs))
        if name.endswith(".md") and name != "README.md" and os.path.join(docs, name) not in linked
    ]


def repository_pages(root):
    pages = [p for p in TOP_LEVEL if os.path.exists(os.path.join(root, p))]
    docs = os.path.join(root, "docs")
    if os.path.isdir(docs):
        pages += sorted(f"docs/{name}" for name in os.listdir(docs) if name.endswith(".md"))
    return pages


def self_test():
    assert slug("Online apply: `--online`") == "online-apply---online"
    assert slug("drizzle 1.0") == "drizzle-10"
    assert slug("`rollback --to TAG [--dry-run] [--allow-data-loss]`") == (
        "rollback---to-tag---dry-run---allow-data-loss"
    )
    with tempfile.TemporaryDirectory() as tmp:
        os.makedirs(os.path.join(tmp, "docs"))
        with open(os.path.join(tmp, "docs", "a.md"), "w") as f:
            f.write("# A\n\n## Two\n\n## Two\n\n```\n# not a heading\n[x](nowhere.md)\n```\n")
        with open(os.path.join(tmp, "README.md"), "w") as f:
            f.write(
                "[ok](docs/a.md) [ok](docs/a.md#two-1) [ok](#r) [web](https://example.com/x)\n"
                "`[code](missing.md)`\n"
                "# R\n"
                "[bad file](docs/b.md) [bad anchor](docs/a.md#three) [fenced](docs/a.md#not-a-heading)\n"
            )
        problems = check(os.path.realpath(tmp), ["README.md", "docs/a.md"])
        with open(os.path.join(tmp, "docs", "README.md"), "w") as f:
            f.write("[a](a.md#two)\n")
        assert unlisted_pages(os.path.realpath(tmp)) == []
        with open(os.path.join(tmp, "docs", "c.md"), "w") as f:
            f.write("# C\n")
        assert unlisted_pages(os.path.realpath(tmp)) == ["docs/README.md: does not list docs/c.md"]
        wanted = ["docs/b.md: no such file", "#three", "#not-a-heading"]
        assert len(problems) == 3, problems
        for fragment, problem in zip(wanted, problems):
            assert fragment in problem, (fragment, problem)
    print("check-links self-test: ok")


def main():
    if "--self-test" in sys.argv[1:]:
        self_test()
        return 0
    pages = repository_pages(ROOT)
    problems = check(ROOT, pages) + unlisted_pages(ROOT)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"check-links: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print(f"check-links: every relative link in {len(pages)} pages resolves")
    return 0


if __name__ == "__main__":
    sys.exit(main())
