import pytest

from lorabar.cli import main
from lorabar.apps.demo import DemoConfig


def test_demo_prints_every_method(capsys, monkeypatch):
    monkeypatch.delenv("LORABAR_DATA_DIR", raising=False)
    assert main(["demo", "--steps", "12", "--synthetic"]) == 0
    out = capsys.readouterr().out
    lines = [line.split() for line in out.splitlines()[2:]]
    assert [row[0] for row in lines] == ["lora", "nbar", "obar", "sam"]
    for row in lines:
        values = [float(v) for v in row[1:]]
        assert len(values) == 5 and all(v == v for v in values)  # finite numbers, no NaN
    start = {row[0]: float(row[3]) for row in lines}
    end = {row[0]: float(row[4]) for row in lines}
    assert len(set(start.values())) == 1  # same initialization for every method
    assert end["obar"] < end["lora"]


def test_demo_config_validation():
    with pytest.raises(ValueError, match=r"Invalid steps: 0"):
        DemoConfig(steps=0)
    with pytest.raises(ValueError, match=r"Invalid mu0: -1"):
        DemoConfig(mu0=-1)


def test_demo_without_data_explains(capsys, monkeypatch):
    monkeypatch.delenv("LORABAR_DATA_DIR", raising=False)
    assert main(["demo", "--steps", "3"]) == 0
    out = capsys.readouterr().out
    assert "pass --data-dir DIR or set LORABAR_DATA_DIR=DIR" in out and "lora " in out


def test_cli_error_is_clean(capsys):
    assert main(["demo", "--steps", "0", "--synthetic"]) == 2
    assert "lorabar: error: Invalid steps: 0" in capsys.readouterr().err
