#!/usr/bin/env python3
"""The import graph of a Rust module tree, for structure reviews: which
module uses which (from `use` trees and inline `super::`/`crate::` paths),
its cycles, its floors (the longest chain of uses), and the uses that run
back up to an ancestor module (a child reaching into its parent's items).

    scripts/tools/modgraph.py [ROOT_DIR] [--crate-prefix runtime] [--edges]

ROOT_DIR defaults to engine/src/runtime; module names are given from the
crate root (engine/src), so `runtime::wire::text`.
"""
import os
import re
import sys


def module_of(path, src):
    rel = os.path.relpath(path, src)[:-3].split(os.sep)
    if rel[-1] in ("mod", "lib", "main"):
        rel = rel[:-1]
    return tuple(rel)


def expand(tree):
    """`a::{b, c::{d, self}}` -> ['a::b', 'a::c::d', 'a::c']"""
    tree = tree.strip()
    m = re.match(r"^(.*?)\{(.*)\}$", tree, re.S)
    if not m:
        return [tree.split(" as ")[0].strip()]
    prefix, inner = m.group(1), m.group(2)
    parts, depth, cur = [], 0, ""
    for ch in inner:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    out = []
    for p in parts:
        p = p.strip()
        if not p:
            continue
        if p == "self":
            out.append(prefix.rstrip(":"))
        else:
            out.extend(expand(prefix + p))
    return out


def resolve(path, here, modules):
    segs = path.split("::")
    if segs[0] == "crate":
        base, segs = (), segs[1:]
    elif segs[0] in ("super", "self"):
        base = here
        while segs and segs[0] in ("super", "self"):
            if segs[0] == "super":
                base = base[:-1]
            segs = segs[1:]
    elif here + (segs[0],) in modules:
        base = here  # a child module named from its parent
    else:
        return None
    target = base
    for s in segs:
        if target + (s,) in modules:
            target = target + (s,)
        else:
            break
    return target


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    root = args[0] if args else "engine/src/runtime"
    src = root
    while os.path.basename(src) != "src":
        src = os.path.dirname(src)
    files = []
    for d, _, names in os.walk(root):
        for n in names:
            if n.endswith(".rs") and n != "tests.rs" and not d.endswith("tests"):
                files.append(os.path.join(d, n))
    modules = {module_of(f, src): f for f in files}
    edges = {}
    for mod, f in modules.items():
        text = open(f).read()
        text = re.sub(r"#\[cfg\(test\)\]\s*mod tests\s*\{.*", "", text, flags=re.S)
        text = re.sub(r"//[^\n]*", "", text)
        targets = set()
        for m in re.finditer(r"\buse\s+([^;]+);", text):
            for p in expand(m.group(1)):
                t = resolve(p, mod, modules)
                if t is not None:
                    targets.add(t)
        for m in re.finditer(r"\b((?:crate|super)(?:::\w+)+)\b(?!::)", text):
            t = resolve(m.group(1), mod, modules)
            if t is not None:
                targets.add(t)
        targets.discard(mod)
        edges[mod] = {t for t in targets if t in modules}
    scope = module_of(os.path.join(root, "mod.rs"), src)
    inside = {m for m in modules if m[: len(scope)] == scope}
    # Strongly connected components (Tarjan).
    index, low, stack, on, sccs, counter = {}, {}, [], set(), [], [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            sccs.append(comp)

    sys.setrecursionlimit(10000)
    for v in modules:
        if v not in index:
            strong(v)
    comp_of = {v: i for i, c in enumerate(sccs) for v in c}
    floor = {}

    def depth(c):
        if c in floor:
            return floor[c]
        floor[c] = 0
        best = 0
        for v in sccs[c]:
            for w in edges.get(v, ()):
                if comp_of[w] != c:
                    best = max(best, 1 + depth(comp_of[w]))
        floor[c] = best
        return best

    floors = 1 + max(depth(c) for c in range(len(sccs)))
    name = lambda m: "::".join(m)
    cycles = [sorted(name(v) for v in c) for c in sccs if len(c) > 1]
    up = sorted(
        (name(a), name(b))
        for a in inside
        for b in edges[a]
        if b != a and a[: len(b)] == b
    )
    print("modules: %d, uses between them: %d" % (len(inside), sum(len(edges[a]) for a in inside)))
    print("floors: %d" % floors)
    print("cycles: %d" % len(cycles))
    for c in cycles:
        print("  " + " <-> ".join(c))
    print("uses running back up to an ancestor: %d" % len(up))
    for a, b in up:
        print("  %s -> %s" % (a, b))
    if "--edges" in sys.argv:
        for a in sorted(inside):
            print("%s -> %s" % (name(a), ", ".join(sorted(name(b) for b in edges[a]))))


if __name__ == "__main__":
    main()
