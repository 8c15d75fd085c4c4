"""lorabar._io: progress that reads well in a log file, and atomic writes."""

from __future__ import annotations

import io

from lorabar._io import progress_bar


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_in_a_log_file_is_whole_lines(monkeypatch, capsys):
    bar = progress_bar(40, "nbar", unit="it")
    for _ in range(40):
        bar.update(1)
    bar.set_postfix(loss=0.25)
    bar.close()
    runs = progress_bar(3, "compare, tuning", unit="run")
    for _ in range(3):
        runs.update(1)
    err = capsys.readouterr().err
    assert "\r" not in err
    lines = err.splitlines()
    assert [line.split(" (")[0] for line in lines] == [
        f"nbar: {4 * k}/40" for k in range(1, 11)
    ] + [f"compare, tuning: {k}/3 runs" for k in (1, 2, 3)]


def test_progress_on_a_terminal_is_a_tqdm_bar(monkeypatch):
    monkeypatch.setattr("sys.stderr", _Tty())
    bar = progress_bar(5, "steps")
    assert type(bar).__module__.startswith("tqdm")
    bar.close()
    assert type(progress_bar(5, "steps", enabled=False)).__name__ == "_NoBar"


def test_piped_progress_carries_the_time_left_and_the_current_postfix(capsys):
    bar = progress_bar(20, "run")
    for step in range(20):
        bar.set_postfix(loss=f"{1 / (step + 1):.3f}", refresh=False)  # as the engine does
        bar.update(1)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 10
    assert all(", ETA " in line for line in lines[:-1]) and ", ETA" not in lines[-1]
    assert lines[0].endswith("loss=0.500)") and lines[-1].endswith("loss=0.050)")


def test_lorabar_alone_lists_its_commands(capsys):
    from lorabar.cli.main import main

    assert main([]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ("finetune", "compare", "report", "inspect", "upgrade"))
