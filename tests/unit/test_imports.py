"""What importing a part of the hub loads, seen in a fresh interpreter's ``sys.modules``.

``test_seams.py`` reads import statements file by file; an import one module makes on behalf
of another (a package's ``__init__``, a re-export) is invisible there, and these tests see it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

# Every module of a package, imported in a fresh interpreter; prints what that loaded (less
# what the interpreter had loaded at start-up: ``site``, the editable installs' finders).
_PROBE = """
import importlib, json, pkgutil, sys
before = set(sys.modules)
package = importlib.import_module(sys.argv[1])
for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
    if not info.name.endswith(".__main__"):  # running it would run the command line
        importlib.import_module(info.name)
print(json.dumps(sorted(set(sys.modules) - before)))
"""


def _loaded_after_importing(package: str) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-I", "-c", _PROBE, package],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    loaded: list[str] = json.loads(result.stdout)
    return loaded


def test_the_core_loads_nothing_but_the_standard_library() -> None:
    loaded = _loaded_after_importing("involvement_hub.core")
    top = {name.split(".")[0] for name in loaded}
    # ``_sysconfigdata_*`` is the standard library's own build data (named per platform).
    standard = {n for n in top if n in sys.stdlib_module_names or n.startswith("_sysconfigdata")}
    not_standard = sorted(top - standard)
    first_party = [n for n in loaded if n.split(".")[0] in not_standard]

    # The hub's own core, and the root of the error tree (a standard-library-only module
    # of the producer package, whose codec and publisher are imported lazily).
    assert not_standard == ["involvement_hub", "involvement_hub_producer"], not_standard
    assert {n for n in first_party if not n.startswith("involvement_hub.core")} == {
        "involvement_hub",
        "involvement_hub_producer",
        "involvement_hub_producer.errors",
    }
    assert len([n for n in first_party if n.startswith("involvement_hub.core.")]) >= 20


def test_the_runtime_loads_no_development_tool() -> None:
    loaded = _loaded_after_importing("involvement_hub")

    assert "involvement_hub.streaming.app" in loaded  # the probe did import the runtime
    assert [n for n in loaded if n.split(".")[0] in {"involvement_hub_devtools", "aiosmtpd"}] == []


# Every unit test module, imported as pytest imports it; prints whether Faust was loaded.
_UNIT_PROBE = """
import importlib, json, pathlib, sys
unit = pathlib.Path(sys.argv[1])
sys.path[:0] = [str(unit), str(unit.parent)]
for path in sorted(unit.glob("test_*.py")):
    importlib.import_module(path.stem)
print(json.dumps(sorted(name for name in ("faust", "mode") if name in sys.modules)))
"""


def test_no_unit_test_loads_faust() -> None:
    # The unit tier is pure and fast: a test that needs Faust belongs in tests/integration.
    result = subprocess.run(
        [sys.executable, "-c", _UNIT_PROBE, str(Path(__file__).parent)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []
