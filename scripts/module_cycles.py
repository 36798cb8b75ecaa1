"""Fails on a module cycle in any crate of the workspace (issue 20). Standard library only.

Every target cargo knows of (`cargo metadata --no-deps`: libraries, binaries, tests, benches,
build scripts) of the main workspace and of fuzz/ is a crate root. From each root the module tree
is followed through `mod x;` (x.rs or x/mod.rs, `#[path]` honoured) and inline `mod x { }`
blocks, and every path that names something of the same crate becomes an edge from the module
it is written in to the module that defines what it names:

- `use` declarations, `pub use` included, grouped and nested (`use crate::{a, b::{c, d}}`),
  `self` in groups, `as` renames, globs;
- paths in code, types and attributes: `crate::a::f()`, `super::x::T`, `self::y::Z`, `$crate::`,
  names brought in by a `use` (`dynamo::f()` after `use super::dynamo;`), and path strings inside
  attributes (`#[serde(with = "crate::a::codec")]`).

A path is followed through re-exports (`pub use`, private `use`, `pub use x::*`) to the module
that defines the item. Comments (doc comments and their intra-doc links too) and string literals
are not code and are skipped.

A child using its parent, or a parent its child, is what modules are for: each edge is collapsed
to the two sibling subtrees under the lowest common ancestor of its ends (an edge between an
ancestor and its descendant is dropped), and cycles are looked for among the children of every
module (strongly connected components). Each one is reported with the files and lines that form
it.

Not seen: paths produced by macros, and a sibling reached by a name a `use super::*` brought in
(that edge is counted as one to the parent only).

Usage:
  python3 scripts/module_cycles.py                 # the workspace and fuzz/; exit 1 on a cycle
  python3 scripts/module_cycles.py --root FILE...  # the crates rooted at these files only
  python3 scripts/module_cycles.py --self-test     # the checker's own tests on synthetic crates
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import unittest
from dataclasses import dataclass, field

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
MAX_EVIDENCE = 6
ITEM_KEYWORDS = {"fn", "struct", "enum", "union", "trait", "type", "const", "static"}


# ------------------------------------------------------------------------------------------------
# Lexer: identifiers, `::` and single punctuation, string literals (content kept, for `#[path]` and
# attribute path strings); comments dropped; lifetimes and char literals told apart.


@dataclass
class Tok:
    kind: str  # "id", "p" (punctuation), "str", "lit" (number, char), "lt" (lifetime)
    text: str
    line: int


def _is_ident_start(c):
    return c == "_" or c.isalpha()


def _is_ident_char(c):
    return c == "_" or c.isalnum()


def lex(src):
    toks = []
    i, n, line = 0, len(src), 1

    def string_end(j):
        """Index after the closing quote of a (non-raw) string opening at src[j] == '"'."""
        j += 1
        while j < n and src[j] != '"':
            j += 2 if src[j] == "\\" else 1
        return j + 1

    def raw_string_at(j):
        """If a raw string (r"..", r#".."#) starts at j (at the `r`), return its end index."""
        k = j + 1
        hashes = 0
        while k < n and src[k] == "#":
            hashes += 1
            k += 1
        if k >= n or src[k] != '"':
            return None
        close = '"' + "#" * hashes
        end = src.find(close, k + 1)
        return n if end < 0 else end + len(close)

    while i < n:
        c = src[i]
        if c == "\n":
            line += 1
            i += 1
        elif c.isspace():
            i += 1
        elif src.startswith("//", i):
            j = src.find("\n", i)
            i = n if j < 0 else j
        elif src.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if src.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif src.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            line += src.count("\n", i, j)
            i = j
        elif c == '"':
            j = string_end(i)
            toks.append(Tok("str", src[i + 1 : j - 1], line))
            line += src.count("\n", i, j)
            i = j
        elif c == "'":
            if i + 1 < n and src[i + 1] == "\\":
                j = i + 2
                while j < n and src[j] != "'":
                    j += 2 if src[j] == "\\" else 1
                toks.append(Tok("lit", src[i : j + 1], line))
                i = j + 1
            elif i + 2 < n and src[i + 2] == "'":
                toks.append(Tok("lit", src[i : i + 3], line))
                i += 3
            else:
                j = i + 1
                while j < n and _is_ident_char(src[j]):
                    j += 1
                toks.append(Tok("lt", src[i:j], line))
                i = j
        elif _is_ident_start(c):
            j = i
            while j < n and _is_ident_char(src[j]):
                j += 1
            word = src[i:j]
            # String and char prefixes: b"", c"", b'x', r"", r#""#, br"", cr#""#; raw identifiers.
            if word in ("r", "br", "cr") and j < n and src[j] in '"#':
                end = raw_string_at(j - 1)
                if end is not None:
                    body = src[j:end].strip("#")
                    toks.append(Tok("str", body[1:-1], line))
                    line += src.count("\n", i, end)
                    i = end
                    continue
            if word in ("b", "c") and j < n and src[j] == '"':
                end = string_end(j)
                toks.append(Tok("str", src[j + 1 : end - 1], line))
                line += src.count("\n", i, end)
                i = end
                continue
            if word == "b" and j < n and src[j] == "'":
                k = j + 1
                while k < n and src[k] != "'":
                    k += 2 if src[k] == "\\" else 1
                toks.append(Tok("lit", src[i : k + 1], line))
                i = k + 1
                continue
            if word == "r" and j + 1 < n and src[j] == "#" and _is_ident_start(src[j + 1]):
                k = j + 1
                while k < n and _is_ident_char(src[k]):
                    k += 1
                toks.append(Tok("id", src[j + 1 : k], line))
                i = k
                continue
            toks.append(Tok("id", word, line))
            i = j
        elif c.isdigit():
            j = i + 1
            while j < n and (_is_ident_char(src[j]) or (src[j] == "." and j + 1 < n and src[j + 1].isdigit())):
                j += 1
            toks.append(Tok("lit", src[i:j], line))
            i = j
        elif src.startswith("::", i):
            toks.append(Tok("p", "::", line))
            i += 2
        elif c == "$" and src.startswith("crate", i + 1) and not (i + 6 < n and _is_ident_char(src[i + 6])):
            toks.append(Tok("id", "$crate", line))
            i += 6
        else:
            toks.append(Tok("p", c, line))
            i += 1
    return toks


# ------------------------------------------------------------------------------------------------
# Module tree and references.


@dataclass(eq=False)
class Module:
    name: str
    parent: "Module | None"
    file: str
    child_dir: str
    children: dict = field(default_factory=dict)
    items: set = field(default_factory=set)
    imports: dict = field(default_factory=dict)  # name -> PathRef
    globs: list = field(default_factory=list)  # [PathRef]

    @property
    def path(self):
        parts, m = [], self
        while m.parent is not None:
            parts.append(m.name)
            m = m.parent
        return tuple(reversed(parts))

    def display(self):
        return "::".join(("crate",) + self.path)


@dataclass
class PathRef:
    """A path as written: `segs` after `anchor`; `strict` when its first segment is a bare name
    (then it is ours only if that name is bound in `anchor`; otherwise another crate, std, a
    type parameter...)."""

    anchor: Module
    segs: list
    strict: bool


@dataclass
class Reference:
    source: Module
    target: PathRef
    file: str
    line: int
    written: str  # the path as written, e.g. `use crate::a::{b}` leaf rendered as crate::a::b


class Crate:
    def __init__(self, label, root_file):
        self.label = label
        self.root_file = os.path.abspath(root_file)
        self.root = Module("", None, self.root_file, os.path.dirname(self.root_file))
        self.references = []
        self.files = []
        self.warnings = []
        self._globs_resolved = {}
        self._has_name_cache = {}
        self._load_file(self.root, self.root_file)

    # -- parsing -------------------------------------------------------------------------------

    def _load_file(self, module, path):
        try:
            with open(path, encoding="utf-8") as handle:
                src = handle.read()
        except OSError as error:
            self.warnings.append(f"{rel(path)}: cannot read ({error})")
            return
        self.files.append(path)
        _FileParser(self, module, path, lex(src)).run()

    def declare_file_module(self, parent, name, declaring_file, inline_dir, path_attr):
        """`mod name;` in `parent` (written in `declaring_file`; `inline_dir` is set when the
        declaration sits inside an inline `mod { }` block)."""
        if path_attr is not None:
            base = inline_dir if inline_dir is not None else os.path.dirname(declaring_file)
            candidates = [os.path.normpath(os.path.join(base, path_attr))]
        else:
            candidates = [
                os.path.join(parent.child_dir, name + ".rs"),
                os.path.join(parent.child_dir, name, "mod.rs"),
            ]
        found = next((c for c in candidates if os.path.isfile(c)), None)
        if found is None:
            self.warnings.append(
                f"{rel(declaring_file)}: `mod {name};` but none of {', '.join(rel(c) for c in candidates)} exists"
            )
            return None
        if path_attr is not None or os.path.basename(found) == "mod.rs":
            child_dir = os.path.dirname(found)
        else:
            child_dir = os.path.join(os.path.dirname(found), name)
        child = Module(name, parent, found, child_dir)
        parent.children[name] = child
        self._load_file(child, found)
        return child

    # -- resolution ----------------------------------------------------------------------------

    def resolve(self, ref, depth=0):
        """The module that defines what `ref` names, or None when it is not of this crate."""
        if depth > 24:
            return ref.anchor
        m = ref.anchor
        for index, seg in enumerate(ref.segs):
            step = self._step(m, seg, depth)
            if step is None:
                if ref.strict and index == 0:
                    return None
                return m
            kind, value = step
            if kind == "mod":
                m = value
            elif kind == "item":
                return m
            else:  # an import: continue from what it names
                onward = PathRef(value.anchor, list(value.segs) + list(ref.segs[index + 1 :]), value.strict)
                return self.resolve(onward, depth + 1)
        return m

    def _step(self, m, name, depth):
        if name in m.children:
            return ("mod", m.children[name])
        if name in m.imports:
            return ("import", m.imports[name])
        if name in m.items:
            return ("item", None)
        for source in self._glob_sources(m, depth):
            if self._has_name(source, name, depth + 1):
                return ("import", PathRef(source, [name], False))
        return None

    def _glob_sources(self, m, depth):
        """The modules `m`'s glob imports (`use x::*`) name; memoised, glob cycles cut."""
        key = id(m)
        if key not in self._globs_resolved:
            self._globs_resolved[key] = []  # while in progress: a glob cycle adds nothing
            sources = []
            for glob in m.globs:
                source = self.resolve(glob, depth + 1)
                if source is not None and source is not m and source not in sources:
                    sources.append(source)
            self._globs_resolved[key] = sources
        return self._globs_resolved[key]

    def _has_name(self, m, name, depth):
        """Whether `name` is a module, item or import of `m`, directly or through its globs."""
        key = (id(m), name)
        if key not in self._has_name_cache:
            self._has_name_cache[key] = False  # while in progress: a glob cycle adds nothing
            found = name in m.children or name in m.imports or name in m.items
            if not found and depth <= 24:
                found = any(self._has_name(source, name, depth + 1) for source in self._glob_sources(m, depth))
            self._has_name_cache[key] = found
        return self._has_name_cache[key]


def parse_use_tree(toks, i):
    """Parses the tree of a `use` declaration starting at toks[i] (just after `use`). Returns
    ([(segments, alias)], index after the closing `;`). alias is "*" for a glob, "_" for
    `as _`; a leading `::` is kept as the segment "::"."""
    leaves = []

    def tree(i, prefix):
        segs = list(prefix)
        if i < len(toks) and toks[i].text == "::":
            if not segs:
                segs.append("::")
            i += 1
        while i < len(toks):
            t = toks[i]
            if t.text == "*":
                leaves.append((segs, "*", t.line))
                return i + 1
            if t.text == "{":
                i += 1
                while i < len(toks) and toks[i].text != "}":
                    before = i
                    i = tree(i, segs)
                    if i < len(toks) and toks[i].text == ",":
                        i += 1
                    elif i == before:
                        i += 1  # unexpected token: skip rather than loop
                return i + 1
            if t.kind == "id":
                segs.append(t.text)
                i += 1
                if i < len(toks) and toks[i].text == "::":
                    i += 1
                    continue
                alias = segs[-1]
                if i + 1 < len(toks) and toks[i].text == "as":
                    alias = toks[i + 1].text
                    i += 2
                if segs[-1] == "self" and len(segs) > 1:
                    segs.pop()
                    if alias == "self":
                        alias = segs[-1]
                leaves.append((segs, alias, t.line))
                return i
            return i

    i = tree(i, [])
    while i < len(toks) and toks[i].text != ";":
        i += 1
    return leaves, i + 1


class _FileParser:
    def __init__(self, crate, module, path, toks):
        self.crate = crate
        self.file = path
        self.toks = toks
        # Brace scopes: (module, inline_dir) for a module body, None for any other block. The
        # bottom one is the file's module.
        self.scopes = [(module, None)]

    def module(self):
        for scope in reversed(self.scopes):
            if scope is not None:
                return scope[0]
        raise AssertionError("no module scope")

    def inline_dir(self):
        for scope in reversed(self.scopes):
            if scope is not None:
                return scope[1]
        return None

    def at_item_level(self):
        return self.scopes[-1] is not None

    def anchored(self, segs):
        """The PathRef for `segs` written in the current module, or None for another crate's."""
        m = self.module()
        if not segs:
            return None
        head = segs[0]
        if head == "::":
            return None
        if head in ("crate", "$crate"):
            return PathRef(self.crate.root, segs[1:], False)
        if head in ("self", "super"):
            rest = list(segs)
            if rest[0] == "self":
                rest.pop(0)
            while rest and rest[0] == "super":
                if m.parent is None:
                    return None
                m = m.parent
                rest.pop(0)
            return PathRef(m, rest, False)
        return PathRef(m, list(segs), True)

    def add_reference(self, segs, line, written):
        ref = self.anchored(segs)
        if ref is not None:
            self.crate.references.append(Reference(self.module(), ref, self.file, line, written))
        return ref

    def run(self):
        toks = self.toks
        n = len(toks)
        i = 0
        pending_path = None  # a `#[path = "..."]` waiting for its `mod`
        pending_inline = None  # (module, dir) of a `mod x {` waiting for its `{`
        attr_depth = 0  # inside `#[ ... ]`: count of open `[`
        while i < n:
            t = toks[i]
            text = t.text
            if t.kind == "p" and text == "#" and attr_depth == 0:
                j = i + 1
                if j < n and toks[j].text == "!":
                    j += 1
                if j < n and toks[j].text == "[":
                    # `#[path = "x.rs"]`
                    if j + 3 < n and toks[j + 1].text == "path" and toks[j + 2].text == "=" and toks[j + 3].kind == "str":
                        pending_path = toks[j + 3].text
                    attr_depth = 1
                    i = j + 1
                    continue
            if attr_depth:
                if text == "[":
                    attr_depth += 1
                elif text == "]":
                    attr_depth -= 1
                elif t.kind == "str" and _looks_like_path(text):
                    self.add_reference(text.split("::"), t.line, text)
                    i += 1
                    continue
            if t.kind == "id" and text == "mod" and i + 2 < n and toks[i + 1].kind == "id" and toks[i + 2].text in (";", "{"):
                name = toks[i + 1].text
                parent = self.module()
                if toks[i + 2].text == ";":
                    self.crate.declare_file_module(parent, name, self.file, self.inline_dir(), pending_path)
                    pending_path = None
                    i += 3
                else:
                    base = self.inline_dir()
                    inline_dir = os.path.join(base if base is not None else parent.child_dir, name)
                    child = Module(name, parent, self.file, inline_dir)
                    parent.children[name] = child
                    pending_inline = (child, inline_dir)
                    pending_path = None
                    i += 2
                continue
            if t.kind == "id" and text == "use" and attr_depth == 0 and not (i + 1 < n and toks[i + 1].text == "<"):
                leaves, after = parse_use_tree(toks, i + 1)
                module = self.module()
                for segs, alias, line in leaves:
                    written = "use " + "::".join(segs) + ("::*" if alias == "*" else "")
                    if alias not in ("*", "_", segs[-1] if segs else None):
                        written += " as " + alias
                    ref = self.add_reference(segs, line, written)
                    if ref is None:
                        continue
                    if alias == "*":
                        module.globs.append(ref)
                    elif alias != "_":
                        module.imports[alias] = ref
                i = after
                continue
            if t.kind == "id" and self.at_item_level() and attr_depth == 0:
                name = None
                if text in ITEM_KEYWORDS:
                    j = i + 1
                    # `const fn`, `unsafe extern "C" fn`, `static mut X`, `const _`
                    while j < n and (toks[j].text in ("fn", "unsafe", "async", "extern", "mut", "safe") or toks[j].kind == "str"):
                        j += 1
                    if j < n and toks[j].kind == "id" and toks[j].text != "_":
                        name = toks[j].text
                elif text == "macro_rules" and i + 2 < n and toks[i + 1].text == "!" and toks[i + 2].kind == "id":
                    name = toks[i + 2].text
                if name is not None:
                    self.module().items.add(name)
            if text == "{" and t.kind == "p":
                self.scopes.append(pending_inline)
                pending_inline = None
                pending_path = None
                i += 1
                continue
            if text == "}" and t.kind == "p":
                if len(self.scopes) > 1:
                    self.scopes.pop()
                i += 1
                continue
            if text == ";" and t.kind == "p":
                pending_path = None
            # A path: `crate::..`, `super::..`, `self::..`, `$crate::..`, or `name::..`.
            if (
                t.kind == "id"
                and i + 1 < n
                and toks[i + 1].text == "::"
                and not (i > 0 and toks[i - 1].text in ("::", "$"))
                and not _is_visibility_path(toks, i)
            ):
                segs = [text]
                j = i + 1
                while j + 1 < n and toks[j].text == "::" and toks[j + 1].kind == "id":
                    segs.append(toks[j + 1].text)
                    j += 2
                if len(segs) > 1 or text in ("crate", "$crate", "super", "self"):
                    self.add_reference(segs, t.line, "::".join(segs))
                i = j
                continue
            i += 1


def _looks_like_path(text):
    parts = text.split("::")
    return (
        len(parts) > 1
        and parts[0] in ("crate", "self", "super")
        and all(p and (_is_ident_start(p[0]) and all(_is_ident_char(c) for c in p)) for p in parts)
    )


def _is_visibility_path(toks, i):
    """`pub(in crate::a)`: a visibility, not a use of `a`."""
    return i >= 3 and toks[i - 1].text == "in" and toks[i - 2].text == "(" and toks[i - 3].text == "pub"


# ------------------------------------------------------------------------------------------------
# Cycles.


@dataclass
class Edge:
    source: Module
    target: Module
    ref: Reference


@dataclass
class Cycle:
    crate: Crate
    parent: Module
    members: list  # sibling modules, a strongly connected component
    evidence: dict  # (from child, to child) -> [Edge]
    cycle: list  # one shortest cycle through the first member, as a list of children


def _ancestors(m):
    chain = []
    while m is not None:
        chain.append(m)
        m = m.parent
    return list(reversed(chain))  # root first


def find_cycles(crate):
    by_parent = {}  # parent -> {(a, b): [Edge]}
    for ref in crate.references:
        target = crate.resolve(ref.target)
        if target is None or target is ref.source:
            continue
        a_chain, b_chain = _ancestors(ref.source), _ancestors(target)
        k = 0
        while k < len(a_chain) and k < len(b_chain) and a_chain[k] is b_chain[k]:
            k += 1
        if k == len(a_chain) or k == len(b_chain):
            continue  # one end is an ancestor of the other
        lca, a, b = a_chain[k - 1], a_chain[k], b_chain[k]
        by_parent.setdefault(lca, {}).setdefault((a, b), []).append(Edge(ref.source, target, ref))

    cycles = []
    for parent, edges in by_parent.items():
        graph = {}
        for a, b in edges:
            graph.setdefault(a, set()).add(b)
            graph.setdefault(b, set())
        for component in _strongly_connected(graph):
            if len(component) < 2:
                continue
            members = sorted(component, key=lambda m: m.name)
            evidence = {
                pair: found for pair, found in sorted(edges.items(), key=lambda kv: (kv[0][0].name, kv[0][1].name))
                if pair[0] in component and pair[1] in component
            }
            cycles.append(Cycle(crate, parent, members, evidence, _shortest_cycle(graph, members[0], component)))
    cycles.sort(key=lambda c: (c.parent.display(), [m.name for m in c.members]))
    return cycles


def _strongly_connected(graph):
    index, low, on_stack, stack, result = {}, {}, set(), [], []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v], key=lambda m: m.name):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w is v:
                    break
            result.append(component)

    for v in sorted(graph, key=lambda m: m.name):
        if v not in index:
            visit(v)
    return result


def _shortest_cycle(graph, start, component):
    previous = {start: None}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(graph[v], key=lambda m: m.name):
            if w not in component:
                continue
            if w is start:
                path = [v]
                while previous[path[-1]] is not None:
                    path.append(previous[path[-1]])
                return list(reversed(path)) + [start]
            if w not in previous:
                previous[w] = v
                queue.append(w)
    return [start]


# ------------------------------------------------------------------------------------------------
# Crates of the workspace, and the report.


def rel(path):
    path = os.path.abspath(path)
    relative = os.path.relpath(path, REPO)
    return path if relative.startswith("..") else relative


def cargo_targets(manifest):
    """(label, root file) of every target of every package of the workspace at `manifest`."""
    output = subprocess.run(
        ["cargo", "metadata", "--no-deps", "--format-version", "1", "--offline", "--manifest-path", manifest],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    targets = []
    for package in json.loads(output)["packages"]:
        for target in package["targets"]:
            kind = "/".join(target["kind"])
            targets.append((f"{package['name']} ({kind} {target['name']})", target["src_path"]))
    return targets


def check(targets, out=sys.stdout, all_evidence=False):
    """Checks every (label, root) crate; prints the cycles and one summary line. Returns the
    list of cycles."""
    cycles, files, warnings = [], set(), []
    for label, root in targets:
        crate = Crate(label, root)
        files.update(crate.files)
        warnings.extend(crate.warnings)
        cycles.extend(find_cycles(crate))
    for warning in dict.fromkeys(warnings):
        print(f"module cycles: warning: {warning}", file=sys.stderr)
    for cycle in cycles:
        where = "the crate root" if cycle.parent.parent is None else f"`{cycle.parent.display()}`"
        print(f"module cycle in {cycle.crate.label}, among the children of {where} ({rel(cycle.parent.file)}):", file=out)
        print("  " + " -> ".join(m.name for m in cycle.cycle), file=out)
        if len(cycle.members) > len(cycle.cycle) - 1:
            print("  (strongly connected: " + ", ".join(m.name for m in cycle.members) + ")", file=out)
        for (a, b), edges in cycle.evidence.items():
            print(f"  {a.name} -> {b.name}:", file=out)
            lines = {}  # (file, line) -> [Edge], in source order
            for edge in edges:
                lines.setdefault((edge.ref.file, edge.ref.line), []).append(edge)
            shown = list(lines.items()) if all_evidence else list(lines.items())[:MAX_EVIDENCE]
            for (file, line), on_line in shown:
                written = ", ".join(dict.fromkeys(e.ref.written for e in on_line))
                if len(on_line) > 1 and written.startswith("use "):
                    written = "use " + written[4:].replace(", use ", ", ")
                ends = ", ".join(dict.fromkeys(f"{e.source.display()} -> {e.target.display()}" for e in on_line))
                print(f"    {rel(file)}:{line}: {written}   ({ends})", file=out)
            if len(lines) > len(shown):
                print(f"    ... and {len(lines) - len(shown)} more lines (--all lists them)", file=out)
    crates = len(targets)
    if cycles:
        print(f"module cycles: {len(cycles)} cycle(s) found in {crates} crates, {len(files)} files", file=out)
    else:
        print(f"module cycles: none in {crates} crates, {len(files)} files", file=out)
    return cycles


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", nargs="+", help="crate root files to check instead of the workspace")
    parser.add_argument("--all", action="store_true", help="list every line of every cycle")
    parser.add_argument("--self-test", action="store_true", help="run the checker's own tests")
    args = parser.parse_args(argv)
    if args.self_test:
        suite = unittest.defaultTestLoader.loadTestsFromTestCase(SelfTest)
        result = unittest.TextTestRunner(stream=sys.stderr, verbosity=1).run(suite)
        print(
            f"module cycles self-test: {result.testsRun - len(result.failures) - len(result.errors)} passed, "
            f"{len(result.failures) + len(result.errors)} failed"
        )
        return 0 if result.wasSuccessful() else 1
    if args.root:
        targets = [(rel(root), root) for root in args.root]
    else:
        manifests = [os.path.join(REPO, "Cargo.toml")]
        if os.path.isfile(os.path.join(REPO, "fuzz", "Cargo.toml")):
            manifests.append(os.path.join(REPO, "fuzz", "Cargo.toml"))
        targets = [target for manifest in manifests for target in cargo_targets(manifest)]
    return 1 if check(targets, all_evidence=args.all) else 0


# ------------------------------------------------------------------------------------------------
# Self-test: synthetic crate trees in a temporary directory.


class SelfTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.addCleanup(self.dir.cleanup)

    def write(self, files):
        for name, text in files.items():
            path = os.path.join(self.dir.name, name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(textwrap.dedent(text))

    def cycles(self, files, root="src/lib.rs"):
        self.write(files)
        crate = Crate("test", os.path.join(self.dir.name, root))
        self.assertEqual(crate.warnings, [])
        return crate, find_cycles(crate)

    def names(self, cycles):
        return sorted((c.parent.display(), tuple(m.name for m in c.members)) for c in cycles)

    def test_sibling_cycle_is_reported_with_its_lines(self):
        _, cycles = self.cycles(
            {
                "src/lib.rs": "mod a;\nmod b;\n",
                "src/a.rs": "use crate::b::Thing;\npub fn g() {}\n",
                "src/b.rs": "pub struct Thing;\npub fn f() {\n    crate::a::g();\n}\n",
            }
        )
        self.assertEqual(self.names(cycles), [("crate", ("a", "b"))])
        lines = {(a.name, b.name): [(rel_to(self.dir.name, e.ref.file), e.ref.line, e.ref.written) for e in edges]
                 for (a, b), edges in cycles[0].evidence.items()}
        self.assertEqual(lines[("a", "b")], [("src/a.rs", 1, "use crate::b::Thing")])
        self.assertEqual(lines[("b", "a")], [("src/b.rs", 3, "crate::a::g")])
        out = _Capture()
        check([("test", os.path.join(self.dir.name, "src/lib.rs"))], out=out)
        self.assertIn("a -> b -> a", out.text)
        self.assertIn("1 cycle(s) found", out.text)

    def test_parent_and_child_are_no_cycle(self):
        _, cycles = self.cycles(
            {
                "src/lib.rs": "mod p;\npub use p::Z;\nfn root() { p::c::y(); }\n",
                "src/p/mod.rs": """\
                    mod c;
                    pub use self::c::y;
                    pub struct Z;
                    fn uses_child() { c::y(); }
                """,
                "src/p/c.rs": """\
                    use super::Z;
                    use super::*;
                    use crate::p::Z as Zed;
                    pub fn y() { let _ = crate::Z; }
                    #[cfg(test)]
                    mod tests {
                        use super::*;
                        use super::super::Z;
                        #[test]
                        fn t() { super::y(); }
                    }
                """,
            }
        )
        self.assertEqual(cycles, [])

    def test_grouped_and_nested_use_trees(self):
        leaves, _ = parse_use_tree(lex("crate::{a, b::{c::{self, D}, e as f}, g::*, h as _};"), 0)
        self.assertEqual(
            [(segs, alias) for segs, alias, _ in leaves],
            [
                (["crate", "a"], "a"),
                (["crate", "b", "c"], "c"),
                (["crate", "b", "c", "D"], "D"),
                (["crate", "b", "e"], "f"),
                (["crate", "g"], "*"),
                (["crate", "h"], "_"),
            ],
        )
        leaves, _ = parse_use_tree(lex("::std::{io, fmt::Write};"), 0)
        self.assertEqual([segs for segs, _, _ in leaves], [["::", "std", "io"], ["::", "std", "fmt", "Write"]])
        # A cycle whose one edge is a leaf deep in a multi-line group.
        _, cycles = self.cycles(
            {
                "src/lib.rs": "pub mod x;\npub mod y;\n",
                "src/x.rs": "pub struct X;\nuse crate::{\n    y::{\n        Y,\n    },\n};\n",
                "src/y.rs": "pub struct Y;\npub use crate::x::X as Ex;\n",
            }
        )
        self.assertEqual(self.names(cycles), [("crate", ("x", "y"))])
        [edge] = cycles[0].evidence[(cycles[0].members[0], cycles[0].members[1])]
        self.assertEqual((edge.ref.line, edge.ref.written), (4, "use crate::y::Y"))

    def test_cycle_between_subtrees_is_reported_at_their_common_ancestor(self):
        _, cycles = self.cycles(
            {
                "src/lib.rs": "mod outer;\nmod other;\n",
                "src/outer.rs": "mod p;\nmod q;\n",
                "src/outer/p.rs": "use super::q::Q;\npub fn p() {}\n",
                "src/outer/q.rs": "pub struct Q;\nfn f() { super::p::p(); }\n",
                "src/other.rs": "mod deep { pub fn d() { crate::outer::p::p(); } }\n",
            }
        )
        self.assertEqual(self.names(cycles), [("crate::outer", ("p", "q"))])
        _, cycles = self.cycles(
            {
                "src/outer/p.rs": "pub fn p() { crate::other::deep::d(); }\n",
                "src/outer/q.rs": "pub struct Q;\n",
                "src/other.rs": "pub mod deep { pub fn d() { super::super::outer::p::p(); } }\n",
            }
        )
        self.assertEqual(self.names(cycles), [("crate", ("other", "outer"))])

    def test_re_exports_are_followed_to_the_defining_module(self):
        _, cycles = self.cycles(
            {
                "src/lib.rs": "mod a;\nmod b;\nmod c;\npub use a::Thing;\npub use c::*;\n",
                "src/a.rs": "pub struct Thing;\nfn f() { crate::b::g(); }\n",
                "src/b.rs": "use crate::Thing;\npub fn g() {}\n",
                "src/c.rs": "pub struct Other;\n",
            }
        )
        self.assertEqual(self.names(cycles), [("crate", ("a", "b"))])
        # Through a glob re-export, and a name a `use` brought in (`d::h()` after `use super::d`).
        _, cycles = self.cycles(
            {
                "src/lib.rs": "mod a;\nmod b;\nmod c;\nmod d;\npub use c::*;\n",
                "src/a.rs": "use super::d;\nfn f() { d::h(); }\n",
                "src/b.rs": "pub fn g() {}\n",
                "src/c.rs": "pub struct Other;\n",
                "src/d.rs": "pub fn h() { let _ = crate::Other; }\n",
            }
        )
        self.assertEqual(self.names(cycles), [])
        self.write({"src/c.rs": "pub struct Other;\npub fn k() { crate::a::f(); }\n", "src/a.rs": "use super::d;\npub fn f() { d::h(); }\n"})
        crate = Crate("test", os.path.join(self.dir.name, "src/lib.rs"))
        self.assertEqual(self.names(find_cycles(crate)), [("crate", ("a", "c", "d"))])

    def test_glob_cycles_end_and_local_items_win_over_globs(self):
        _, cycles = self.cycles(
            {
                "src/lib.rs": "mod a;\nmod b;\nmod c;\n",
                "src/a.rs": "pub use crate::b::*;\npub struct Same;\n",
                "src/b.rs": "pub use crate::a::*;\npub struct Same;\n",
                # `crate::a::Same` is a's own, `crate::a::Missing` is nowhere: both end in a.
                "src/c.rs": "fn f() { let _ = (crate::a::Same, crate::a::Missing); }\n",
            }
        )
        self.assertEqual(self.names(cycles), [("crate", ("a", "b"))])
        crate = Crate("test", os.path.join(self.dir.name, "src/lib.rs"))
        targets = {r.written: crate.resolve(r.target).display() for r in crate.references if r.source.name == "c"}
        self.assertEqual(targets, {"crate::a::Same": "crate::a", "crate::a::Missing": "crate::a"})

    def test_comments_strings_lifetimes_and_chars_are_not_code(self):
        _, cycles = self.cycles(
            {
                "src/lib.rs": "mod a;\nmod b;\n",
                "src/a.rs": """\
                    // use crate::b::X;
                    /* crate::b::X /* nested */ crate::b::X */
                    /// [`crate::b::X`]
                    pub fn f<'a>(s: &'a str) -> &'a str {
                        let _ = ("crate::b::X", r#"crate::b::"X""#, b"crate::b::X", '{', '"', b'}');
                        s
                    }
                    pub fn g() -> impl Sized + use<> {}
                """,
                "src/b.rs": "pub struct X;\nfn h() { crate::a::f(\"\"); }\n",
            }
        )
        self.assertEqual(cycles, [])

    def test_attribute_path_strings_and_path_attributes(self):
        _, cycles = self.cycles(
            {
                "src/lib.rs": "mod a;\n#[path = \"elsewhere/bee.rs\"]\nmod b;\n",
                "src/a.rs": "#[derive(Deserialize)]\nstruct S {\n    #[serde(deserialize_with = \"crate::b::de\")]\n    f: u8,\n}\n",
                "src/elsewhere/bee.rs": "pub fn de() {}\nfn x() { super::a::S; }\n",
            }
        )
        self.assertEqual(self.names(cycles), [("crate", ("a", "b"))])

    def test_inline_test_module_and_crate_visibility(self):
        _, cycles = self.cycles(
            {
                "src/lib.rs": "pub mod a;\npub mod b;\n",
                "src/a.rs": """\
                    pub(crate) fn f() {}
                    pub(in crate::a) fn g() {}
                    #[cfg(test)]
                    mod tests {
                        use super::*;
                        use crate::b::helper;
                    }
                """,
                "src/b.rs": "pub fn helper() { crate::a::f(); }\n",
            }
        )
        # a's own tests use b, and b uses a: a cycle between a (with its tests) and b.
        self.assertEqual(self.names(cycles), [("crate", ("a", "b"))])

    def test_workspace_targets_come_from_cargo_metadata(self):
        if not any(os.access(os.path.join(p, "cargo"), os.X_OK) for p in os.environ.get("PATH", "").split(os.pathsep)):
            self.skipTest("cargo not on PATH")
        self.write(
            {
                "Cargo.toml": '[package]\nname = "tiny"\nversion = "0.0.0"\nedition = "2024"\n\n[workspace]\n',
                "src/lib.rs": "mod a;\nmod b;\n",
                "src/a.rs": "pub fn f() { crate::b::g(); }\n",
                "src/b.rs": "pub fn g() { crate::a::f(); }\n",
                "src/main.rs": "fn main() {}\n",
                "tests/t.rs": "mod common;\n",
                "tests/common/mod.rs": "",
            }
        )
        targets = cargo_targets(os.path.join(self.dir.name, "Cargo.toml"))
        self.assertEqual(
            sorted(label for label, _ in targets), ["tiny (bin tiny)", "tiny (lib tiny)", "tiny (test t)"]
        )
        out = _Capture()
        self.assertEqual(len(check(targets, out=out)), 1)
        self.assertIn("module cycle in tiny (lib tiny)", out.text)


class _Capture:
    def __init__(self):
        self.text = ""

    def write(self, text):
        self.text += text


def rel_to(base, path):
    return os.path.relpath(path, base)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
