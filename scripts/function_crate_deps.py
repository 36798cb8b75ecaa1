#!/usr/bin/env python3
"""Fails if a function crate depends on another function crate.

The function crates (functions/*) are adapters over the shared crate: each may depend on
trcker-shared, never on another function (normal, dev or build dependency alike). Tests and
benches that drive several functions live in infra/local, which mounts them all. Reads
`cargo metadata` (no network, no build) and prints one line per offending dependency.

Usage: scripts/function_crate_deps.py [--self-test]
"""

import json
import subprocess
import sys
from pathlib import Path


def offending_dependencies(metadata: dict, workspace_root: Path) -> list[str]:
    """Each `crate -> function crate` dependency of a function crate, as text."""
    functions_dir = (workspace_root / "functions").resolve()

    def is_function(manifest: str) -> bool:
        return functions_dir in Path(manifest).resolve().parents

    function_dirs = {
        str(Path(package["manifest_path"]).resolve().parent): package["name"]
        for package in metadata["packages"]
        if is_function(package["manifest_path"])
    }
    problems = []
    for package in metadata["packages"]:
        if not is_function(package["manifest_path"]):
            continue
        for dependency in package["dependencies"]:
            path = dependency.get("path")
            if path and str(Path(path).resolve()) in function_dirs:
                kind = dependency.get("kind") or "normal"
                problems.append(f"{package['name']} -> {dependency['name']} ({kind} dependency)")
    return sorted(problems)


def self_test() -> None:
    root = Path("/w")
    package = lambda name, path, deps: {  # noqa: E731 - a table of fixtures
        "name": name,
        "manifest_path": f"{path}/Cargo.toml",
        "dependencies": [{"name": d, "path": p, "kind": k} for d, p, k in deps],
    }
    metadata = {
        "packages": [
            package("shared", "/w/shared", []),
            package("api", "/w/functions/api", [("shared", "/w/shared", None)]),
            package("mcp", "/w/functions/mcp", [("api", "/w/functions/api", "dev")]),
            package("local", "/w/infra/local", [("api", "/w/functions/api", None)]),
        ]
    }
    found = offending_dependencies(metadata, root)
    assert found == ["mcp -> api (dev dependency)"], found
    metadata["packages"][2]["dependencies"] = []
    assert offending_dependencies(metadata, root) == []
    print("function_crate_deps self-test: 2 passed, 0 failed")


def main() -> int:
    if "--self-test" in sys.argv:
        self_test()
        return 0
    root = Path(__file__).resolve().parent.parent
    metadata = json.loads(
        subprocess.run(
            ["cargo", "metadata", "--format-version", "1", "--no-deps", "--offline"],
            cwd=root,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    problems = offending_dependencies(metadata, root)
    for problem in problems:
        print(f"function crate depends on a function crate: {problem}", file=sys.stderr)
    functions = sum(1 for p in metadata["packages"] if "/functions/" in p["manifest_path"])
    print(f"function crates: {functions}, dependencies between them: {len(problems)}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
