"""The seams of STYLE.md, checked on the source: who may import what, who reads the environment.

Ruff's banned-api (TID251) flags a forbidden import where it is written; these tests also see
imports inside functions, ``importlib.import_module("...")`` with a literal name, modules
ruff does not list (``mode``, the core's standard-library bans), and the environment.
"""

from __future__ import annotations

import ast
import functools
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SOURCE_ROOTS = {
    "hub": REPO / "hub",
    "producers": REPO / "producers",
    "devtools": REPO / "devtools",
}

STREAMING = "hub/involvement_hub/streaming/"
CEILING = "devtools/involvement_hub_devtools/bench/ceiling.py"  # the bare Faust stages
SMTP = "hub/involvement_hub/delivery/smtp.py"
KAFKA = "hub/involvement_hub/kafka/"
PUBLISHER = "producers/involvement_hub_producer/publisher.py"
# Development tools that measure or break Kafka itself: the raw aiokafka baselines, the
# load and state generators, and the fault harness's hostile producer and group rewinds.
KAFKA_TOOLS = (
    "devtools/involvement_hub_devtools/bench/",
    "devtools/involvement_hub_devtools/chaos/",
)
CODEC = "producers/involvement_hub_producer/codec.py"
MAILBOX = "devtools/involvement_hub_devtools/mailbox.py"
SETTINGS = "hub/involvement_hub/settings.py"
CORE = "hub/involvement_hub/core/"

# Each third-party transport and the places (a file, or a folder ending in /) it may enter.
SEAMS: dict[str, tuple[str, ...]] = {
    "faust": (STREAMING, CEILING),
    "mode": (STREAMING, CEILING),  # faust's service framework: the same seam
    "aiosmtplib": (SMTP,),
    "aiokafka": (KAFKA, PUBLISHER, *KAFKA_TOOLS),
    "fastavro": (CODEC,),
    "aiosmtpd": (MAILBOX,),
}
NOT_IN_CORE = frozenset(
    {
        "faust",
        "mode",
        "aiokafka",
        "aiosmtplib",
        "aiosmtpd",
        "fastavro",
        "prometheus_client",
        "aiohttp",
        "os",
        "socket",
        "subprocess",
        "asyncio",
    }
)
# Modules that hand the environment, unread, to a child process: a child inherits JAVA_HOME,
# PATH, proxies and locale as any child would. They may only pass ``os.environ`` on whole
# (as a call argument or a ``**`` in a dict), never look a variable up in it.
CHILD_ENVIRONMENT = frozenset(
    {
        "devtools/involvement_hub_devtools/processes.py",  # the hub commands it starts
        "devtools/involvement_hub_devtools/localkafka.py",  # the Kafka JVM, via os.posix_spawn
    }
)
ENV_NAMES = frozenset({"environ", "environb", "getenv", "getenvb", "putenv", "unsetenv"})


@dataclass(frozen=True)
class Source:
    path: str  # relative to the repository, with forward slashes
    module: str
    tree: ast.Module

    def under(self, *places: str) -> bool:
        return any(
            self.path.startswith(place) if place.endswith("/") else self.path == place
            for place in places
        )


def _module_name(relative: Path) -> str:
    parts = list(relative.with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _not_source(folder: str) -> bool:
    """Build output, packaging metadata and hidden folders: copies, not the source."""
    return folder in ("build", "dist") or folder.endswith(".egg-info") or folder.startswith(".")


@functools.cache
def sources() -> tuple[Source, ...]:
    found = []
    for root in SOURCE_ROOTS.values():
        for path in sorted(root.rglob("*.py")):
            relative = path.relative_to(root)
            if any(_not_source(part) for part in relative.parts[:-1]):
                continue
            found.append(
                Source(
                    path=path.relative_to(REPO).as_posix(),
                    module=_module_name(relative),
                    tree=ast.parse(path.read_text("utf-8"), filename=str(path)),
                )
            )
    return tuple(found)


def imported(source: Source) -> Iterator[tuple[str, int]]:
    """Every module the file imports, absolute and dotted, with its line."""
    is_package = source.path.endswith("__init__.py")
    for node in ast.walk(source.tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                base = node.module or ""
            else:
                package = source.module.split(".")
                if not is_package:
                    package = package[:-1]
                package = package[: len(package) - (node.level - 1)]
                base = ".".join([*package, *([node.module] if node.module else [])])
            yield base, node.lineno
            for alias in node.names:
                yield f"{base}.{alias.name}", node.lineno
        elif (
            isinstance(node, ast.Call)
            and _dotted(node.func) in ("importlib.import_module", "import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            yield node.args[0].value, node.lineno


def _dotted(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def top_level(module: str) -> str:
    return module.split(".")[0]


def test_the_source_is_found() -> None:
    paths = {s.path for s in sources()}

    assert {SMTP, CODEC, MAILBOX, SETTINGS, f"{STREAMING}app.py"} <= paths
    assert any(p.startswith(CORE) for p in paths)


@pytest.mark.parametrize(("package", "owners"), sorted(SEAMS.items()))
def test_a_transport_is_imported_only_at_its_seam(package: str, owners: tuple[str, ...]) -> None:
    offenders = [
        f"{s.path}:{line} imports {name}"
        for s in sources()
        if not s.under(*owners)
        for name, line in imported(s)
        if top_level(name) == package
    ]

    assert offenders == [], f"only {owners} may import {package}"


def test_each_seam_is_used_where_it_is_owned() -> None:
    """The seams name real owners: a stale entry would make the check above vacuous."""
    for package, places in SEAMS.items():
        if package == "mode":
            continue  # reserved for the streaming package, which needs none of it today
        for place in places:
            owners = [s for s in sources() if s.under(place)]
            assert any(top_level(n) == package for s in owners for n, _ in imported(s)), place


def test_the_core_imports_no_transport_and_no_io() -> None:
    offenders = [
        f"{s.path}:{line} imports {name}"
        for s in sources()
        if s.under(CORE)
        for name, line in imported(s)
        if top_level(name) in NOT_IN_CORE
    ]

    assert offenders == []


def _parents(tree: ast.AST) -> dict[ast.AST, ast.AST]:
    return {child: parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}


def _env_reads(source: Source) -> Iterator[tuple[ast.AST, int, str]]:
    """Uses of the process environment through ``os`` (under any alias) or ``from os``."""
    os_aliases = {"os"}
    env_aliases: set[str] = set()
    for node in ast.walk(source.tree):
        if isinstance(node, ast.Import):
            os_aliases |= {a.asname or a.name for a in node.names if a.name == "os"}
        elif isinstance(node, ast.ImportFrom) and node.module == "os":
            for alias in node.names:
                if alias.name in ENV_NAMES:
                    env_aliases.add(alias.asname or alias.name)
                    yield node, node.lineno, f"from os import {alias.name}"
    for node in ast.walk(source.tree):
        if (
            isinstance(node, ast.Attribute)
            and node.attr in ENV_NAMES
            and isinstance(node.value, ast.Name)
            and node.value.id in os_aliases
        ):
            yield node, node.lineno, f"os.{node.attr}"
        elif isinstance(node, ast.Name) and node.id in env_aliases:
            yield node, node.lineno, node.id


def _passed_on_whole(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    """``os.environ`` as a call argument or as ``**os.environ`` in a dict display."""
    if not (isinstance(node, ast.Attribute) and node.attr == "environ"):
        return False
    parent = parents.get(node)
    if isinstance(parent, ast.Call):
        return node in parent.args or any(k.value is node for k in parent.keywords)
    if isinstance(parent, ast.Dict):
        return any(k is None and v is node for k, v in zip(parent.keys, parent.values, strict=True))
    return False


def test_only_settings_reads_the_environment() -> None:
    offenders = []
    for s in sources():
        if s.path.startswith("producers/") or s.path == SETTINGS:
            continue
        parents = _parents(s.tree)
        for node, line, what in _env_reads(s):
            if s.path in CHILD_ENVIRONMENT and _passed_on_whole(node, parents):
                continue
            offenders.append(f"{s.path}:{line} uses {what}")

    assert offenders == [], "read HUB_* settings through Settings.from_env"


def test_the_child_environment_exceptions_are_still_needed() -> None:
    """An exception that no longer passes the environment on should be removed from the list."""
    by_path = {s.path: s for s in sources()}
    for path in CHILD_ENVIRONMENT:
        assert any(what == "os.environ" for _, _, what in _env_reads(by_path[path])), path


def test_the_producer_library_never_imports_the_hub() -> None:
    offenders = [
        f"{s.path}:{line} imports {name}"
        for s in sources()
        if s.path.startswith("producers/")
        for name, line in imported(s)
        if top_level(name) == "involvement_hub"
    ]

    assert offenders == [], "agencies install involvement_hub_producer without the hub"


def test_the_runtime_never_imports_the_development_tools() -> None:
    """The hub finds the development commands by entry point, never by name."""
    offenders = [
        f"{s.path}:{line} imports {name}"
        for s in sources()
        if s.path.startswith(("hub/", "producers/"))
        for name, line in imported(s)
        if top_level(name) == "involvement_hub_devtools"
    ]

    assert offenders == [], "the runtime wheel does not hold involvement_hub_devtools"


def _requirement_name(requirement: str) -> str:
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    assert match, requirement
    return re.sub(r"[-_.]+", "-", match.group(1)).lower()


def test_the_producer_package_depends_only_on_kafka_and_avro() -> None:
    project = tomllib.loads((REPO / "producers" / "pyproject.toml").read_text("utf-8"))["project"]
    names = {_requirement_name(r) for r in project.get("dependencies", [])}
    for extra in project.get("optional-dependencies", {}).values():
        names |= {_requirement_name(r) for r in extra}

    assert not any(n.startswith(("faust", "mode", "involvement-hub")) for n in names)
    assert names <= {"aiokafka", "fastavro"}  # what schemas/README.md promises agencies


def test_ruff_bans_the_transports_outside_their_seams() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text("utf-8"))
    banned = config["tool"]["ruff"]["lint"]["flake8-tidy-imports"]["banned-api"]

    # ``mode`` is checked only here: ruff's list need not carry it.
    assert set(SEAMS) - {"mode"} <= set(banned)


# Needed only to develop, test or demonstrate the hub: never a runtime dependency.
DEVELOPMENT_ONLY = frozenset(
    {"aiosmtpd", "pytest", "hypothesis", "testcontainers", "trustme", "ruff", "mypy", "pyyaml"}
)


def test_the_runtime_wheel_needs_no_development_only_dependency() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text("utf-8"))["project"]
    runtime = {_requirement_name(r) for r in project["dependencies"]}
    runtime |= {_requirement_name(r) for r in project["optional-dependencies"]["rocksdb"]}
    devtools = tomllib.loads((REPO / "devtools" / "pyproject.toml").read_text("utf-8"))["project"]

    assert runtime & DEVELOPMENT_ONLY == set()
    assert "involvement-hub-devtools" not in runtime
    assert "aiosmtpd" in {_requirement_name(r) for r in devtools["dependencies"]}
