"""The development commands come from the devtools package, by entry point."""

from __future__ import annotations

import pytest
from involvement_hub.cli import main as cli


def test_the_development_commands_are_registered_by_the_devtools_package() -> None:
    parser = cli.build_parser()
    for name in cli.DEVELOPMENT_COMMANDS:
        assert parser.parse_args([name, *(["status"] if name == "kafka" else [])]).command == name


def test_without_the_devtools_a_development_command_says_where_it_comes_from(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli, "entry_points", lambda group: [])

    assert cli.main(["bench"]) == cli.EXIT_CONFIG
    assert "development command" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        cli.main(["nonsense"])
    assert exit_.value.code == 2
