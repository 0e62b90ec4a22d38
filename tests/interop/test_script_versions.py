"""The Python `bullmq` (pinned in constraints.txt) and the npm `bullmq` the tests pin
(package.json) must run compatible Lua scripts on the shared data layout.

Each side loads its own copy of a script (by SHA) and runs it on the same keys, so what must
hold, for every script the Python side calls (bullmq.redis_connection.SCRIPT_DEFINITIONS):

1. Node ships a script of that name taking the same number of keys;
2. both copies have the same code (comments and blank lines aside), or the difference has been
   reviewed and recorded in REVIEWED_DIFFERENCES with why it leaves the layout compatible.

An upgrade of either package that changes one of these scripts fails here, naming the script
and showing the difference: review it, then record it (or pin the versions back).
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import bullmq
from bullmq.redis_connection import SCRIPT_DEFINITIONS, basePath

from tests.helpers.paths import ROOT
from tests.interop.node_side import SCRIPTS

REVIEW = "review the change, then record it in REVIEWED_DIFFERENCES (or pin the versions back)"


@dataclass(frozen=True)
class Reviewed:
    """A reviewed difference: the sha256 of each side's code, and why it is harmless."""

    python_sha: str
    node_sha: str
    why: str


# Reviewed for Python bullmq 3.4.4 against npm bullmq 6.7.0.
ADDS_JOBS = (
    "Node adds, on paths Python never takes: the deduplication option 'reschedule' (re-delays "
    "the job already there), a 10th packed argument deferParentRelease for flows (records a "
    "child's value in <parent>:processed, releasing the parent later in "
    "releaseParentIfNoPendingDependencies, a Node-only script), and a parent key that no "
    "longer exists counts as no parent. A job without those options writes the same keys and "
    "fields with either copy."
)
REVIEWED_DIFFERENCES = {
    "addStandardJob": Reviewed(
        "1c337c73bb7b42f9338d89b558f3cdaa58bd69dc8b9c55116bfacfdf1d6facaa",
        "832961c2d182eecbbef3861fc2b171121a1ec516edaefa35fef68f596e070e0d",
        ADDS_JOBS,
    ),
    "addPrioritizedJob": Reviewed(
        "7a46ed625d434092f9ba995afde7288ccd7270194945cf1a4e76e0d7b550161e",
        "dd3227d62685f5c415b06abaf5e7d4cf9ae82fbf4fd74a9b85ea088ff6cae4bc",
        ADDS_JOBS,
    ),
    "addDelayedJob": Reviewed(
        "ef625fb5b66280abdaf65e990b6c2cad851586693666db6e13e14e6ef261cec6",
        "6656cb5f1d085462ef533afbc8380842b9efb0906b7ce9e06b86be445752ce88",
        ADDS_JOBS,
    ),
    "addParentJob": Reviewed(
        "17bb3b29f58b01c776c030880bb81c1afcadb30fdd7a07032f127c2be6d03d90",
        "063eb73a118e39a0968eb6e814de88ee57d3fe1d7af32dc87795194855600373",
        ADDS_JOBS,
    ),
    "getCounts": Reviewed(
        "0b43e6c23aec4afbf3e9a0e8dd8d4614f784370fb43d752879e6401f10b06927",
        "74f6dee7d602bb9e3e38c135828f65dbdd44d818669cd813035f31b2461deba5",
        "Read-only. Node's copy takes an optional delayed-cutoff timestamp as ARGV[1]; Python "
        "passes state names only, for which tonumber(ARGV[1]) is nil, so both count the same.",
    ),
}


@dataclass(frozen=True)
class Script:
    keys: int
    code: str

    @property
    def sha(self) -> str:
        return hashlib.sha256(self.code.encode()).hexdigest()


def code_of(lua: str) -> str:
    """`lua` without comments and blank lines: what runs."""
    lua = re.sub(r"--\[\[.*?\]\]", "", lua, flags=re.DOTALL)
    lines = (line.rstrip() for line in lua.splitlines())
    return "\n".join(line for line in lines if line.strip() and not line.lstrip().startswith("--"))


def python_scripts() -> dict[str, Script]:
    """The scripts Python bullmq registers and calls, from its commands/<name>-<keys>.lua."""
    scripts = {}
    for name, filename in SCRIPT_DEFINITIONS.items():
        match = re.fullmatch(rf"{re.escape(name)}-(\d+)\.lua", filename)
        assert match, f"Python bullmq's script file {filename!r} is not named <name>-<keys>.lua"
        lua = (Path(basePath) / "commands" / filename).read_text()
        scripts[name] = Script(int(match[1]), code_of(lua))
    return scripts


def node_scripts() -> tuple[str, dict[str, Script]]:
    """npm bullmq's version and its bundled scripts (what Node BullMQ loads)."""
    done = subprocess.run(
        ["node", str(SCRIPTS / "scripts.js")], capture_output=True, check=True, cwd=ROOT, timeout=60
    )
    listing = json.loads(done.stdout)
    scripts = {
        name: Script(int(script["keys"]), code_of(script["content"]))
        for name, script in listing["scripts"].items()
    }
    return listing["version"], scripts


def _diff(python: Script, node: Script, limit: int = 40) -> str:
    lines = difflib.unified_diff(
        python.code.splitlines(), node.code.splitlines(), "python", "node", n=1, lineterm=""
    )
    shown = list(lines)
    more = f"\n... {len(shown) - limit} more lines" if len(shown) > limit else ""
    return "\n".join(shown[:limit]) + more


def test_node_ships_every_script_python_calls_with_the_same_keys(node: None) -> None:
    node_version, in_node = node_scripts()
    versions = f"Python bullmq {bullmq.__version__}, npm bullmq {node_version}"

    problems = []
    for name, script in python_scripts().items():
        if name not in in_node:
            problems.append(f"{name}: Python calls it; npm bullmq has no script of that name")
        elif in_node[name].keys != script.keys:
            problems.append(f"{name}: {script.keys} keys in Python, {in_node[name].keys} in Node")

    assert not problems, f"incompatible scripts ({versions}):\n" + "\n".join(problems)


def test_scripts_python_calls_run_the_same_code_as_node_or_a_reviewed_difference(node: None) -> None:
    node_version, in_node = node_scripts()
    versions = f"Python bullmq {bullmq.__version__}, npm bullmq {node_version}"

    unreviewed = []
    seen = set()
    for name, script in python_scripts().items():
        other = in_node.get(name)
        if other is None or other.code == script.code:
            continue  # missing ones fail the test above
        seen.add(name)
        reviewed = REVIEWED_DIFFERENCES.get(name)
        if reviewed is None or (reviewed.python_sha, reviewed.node_sha) != (script.sha, other.sha):
            unreviewed.append(
                f"--- {name}: the Python and Node copies differ ({versions}); {REVIEW}\n"
                f"python sha256 {script.sha}\nnode sha256 {other.sha}\n{_diff(script, other)}"
            )
    stale = sorted(set(REVIEWED_DIFFERENCES) - seen)

    assert not unreviewed, "\n\n".join(unreviewed)
    assert not stale, f"REVIEWED_DIFFERENCES lists scripts that no longer differ: {stale}"


def test_code_of_drops_comments_and_blank_lines_only() -> None:
    lua = "--[[ doc\n  more ]]\nlocal a = 1 -- kept\n\n  -- gone\nreturn a  \n"
    assert code_of(lua) == "local a = 1 -- kept\nreturn a"
