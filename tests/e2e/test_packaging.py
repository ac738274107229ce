"""What ``pip install`` puts into site-packages, as a new user or an agency would get it."""

from __future__ import annotations

import email.parser
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import REPO

# Its module fixtures are costly: under xdist the module runs in one process.
pytestmark = pytest.mark.xdist_group("packaging")


def build_wheel(source: Path, out: Path) -> zipfile.ZipFile:
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--wheel-dir",
            str(out),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    # pip says why in its own output: show it (a bare exit status told nothing, once).
    assert built.returncode == 0, f"pip wheel {source} failed:\n{built.stdout}\n{built.stderr}"
    (wheel,) = out.glob("*.whl")
    return zipfile.ZipFile(wheel)


def top_level_names(wheel: zipfile.ZipFile) -> set[str]:
    return {name.split("/")[0] for name in wheel.namelist() if ".dist-info/" not in name}


def requirements(wheel: zipfile.ZipFile) -> list[str]:
    (metadata,) = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
    parsed = email.parser.Parser().parsestr(wheel.read(metadata).decode())
    return [
        r.split(";")[0].strip()
        for r in parsed.get_all("Requires-Dist") or []
        if "extra ==" not in r
    ]


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, zipfile.ZipFile]]:
    base = tmp_path_factory.mktemp("wheels")
    hub = build_wheel(REPO, base / "hub")
    producer = build_wheel(REPO / "producers", base / "producer")
    devtools = build_wheel(REPO / "devtools", base / "devtools")
    try:
        yield {"hub": hub, "producer": producer, "devtools": devtools}
    finally:
        hub.close()
        producer.close()
        devtools.close()


def _names(wheel: zipfile.ZipFile) -> set[str]:
    return {
        r.split(">")[0].split("<")[0].split("=")[0].split("[")[0].strip().lower()
        for r in requirements(wheel)
    }


def test_the_hub_installs_only_its_own_packages(wheels: dict[str, zipfile.ZipFile]) -> None:
    wheel = wheels["hub"]
    assert top_level_names(wheel) == {"involvement_hub", "involvement_hub_producer"}
    names = wheel.namelist()
    assert "involvement_hub_producer/schemas/involvement.v1.avsc" in names
    assert "involvement_hub/delivery/message.py" in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "hub = involvement_hub.cli.main:main" in wheel.read(entry_points).decode()


def test_the_runtime_wheel_holds_no_development_tool(wheels: dict[str, zipfile.ZipFile]) -> None:
    hub = wheels["hub"]
    for tool in ("localkafka", "mailbox", "demo", "population", "bench", "chaos", "simulate"):
        assert not [n for n in hub.namelist() if tool in n.split("/")[-1]], tool
    assert "aiosmtpd" not in _names(hub)
    assert "faust-streaming" in _names(hub)


def test_the_devtools_wheel_adds_the_development_commands(
    wheels: dict[str, zipfile.ZipFile],
) -> None:
    devtools = wheels["devtools"]
    assert top_level_names(devtools) == {"involvement_hub_devtools"}
    assert {"involvement-hub", "aiosmtpd"} <= _names(devtools)
    entry_points = next(n for n in devtools.namelist() if n.endswith("entry_points.txt"))
    declared = devtools.read(entry_points).decode()
    assert "[involvement_hub.commands]" in declared
    assert "involvement_hub_devtools.commands:register" in declared


def test_the_agency_package_needs_neither_faust_nor_the_hub(
    wheels: dict[str, zipfile.ZipFile],
) -> None:
    wheel = wheels["producer"]
    assert top_level_names(wheel) == {"involvement_hub_producer"}
    needs = {
        r.split(">")[0].split("<")[0].split("=")[0].strip().lower() for r in requirements(wheel)
    }
    assert needs == {"aiokafka", "fastavro"}
    schemas = sorted(n for n in wheel.namelist() if n.endswith(".avsc"))
    assert schemas == sorted(
        f"involvement_hub_producer/schemas/{p.name}" for p in (REPO / "schemas").glob("*.avsc")
    )


def test_importing_the_agency_package_loads_no_hub_machinery() -> None:
    probe = (
        "import sys, involvement_hub_producer as p; "
        "p.SchemaRegistry.packaged(); "
        "hub = ('faust', 'mode', 'aiosmtplib', 'involvement_hub'); "
        "print(sorted(m for m in hub if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd="/"
    )
    assert result.stdout.strip() == "[]"
