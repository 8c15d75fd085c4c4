"""lorabar.harness.report.summary and .edges: what ``compare`` prints at the end -- n, the
verdict word, the few-seeds warning, "at ceiling" -- and choices at the edge of their grid."""

from __future__ import annotations

from conftest import as_runs, fake_record

from lorabar.harness.report import paired
from lorabar.harness.report.edges import edge_lines, edges
from lorabar.harness.report.summary import half_width, summary_lines


def _grid(seeds, lrs=(1e-3, 3e-3), test=None):
    """LoRA tuned over ``lrs`` on the first seed (the largest lr best on dev), SAM at 1e-3."""
    runs = [
        fake_record("sst2", "lora", seeds[0], 0.70 + 0.01 * i, test or 0.8, 100, setting=lr)
        for i, lr in enumerate(lrs)
    ]
    runs += [
        fake_record("sst2", "lora", s, 0.75, test or 0.80, 100, setting=lrs[-1]) for s in seeds[1:]
    ]
    runs += [fake_record("sst2", "sam", s, 0.75, test or 0.80 + 0.01 * (s % 3), 200) for s in seeds]
    return as_runs(runs)


def test_two_seeds_print_n_the_word_and_a_warning():
    runs = _grid([13, 21])
    lines = summary_lines(runs, paired(runs), "lora", "Protocol 'own-lr' ...")
    assert lines[0] == "Protocol 'own-lr' ..."
    sam = next(line for line in lines if line.startswith("sst2  LoRA-SAM"))
    assert "(n = 2)" in sam and sam.endswith("inconclusive")
    assert any(
        line.startswith("warning: n = 2 seeds: a 95% interval ±9.0 standard deviations")
        for line in lines
    )
    assert (
        "edge of the grid: sst2 / LoRA: lr = 0.003 is the largest of 0.001, 0.003 tried; "
        "next: 0.009" in lines
    )


def test_five_seeds_no_warning_and_ceiling_named():
    runs = _grid([13, 21, 42, 87, 100], test=1.0)
    lines = summary_lines(runs, paired(runs), "lora")
    assert not any(line.startswith("warning") for line in lines)
    sam = next(line for line in lines if line.startswith("sst2  LoRA-SAM"))
    assert sam.endswith("identical, at ceiling") and "(n = 5)" in sam


def test_an_interior_choice_is_not_an_edge():
    runs = as_runs(
        fake_record("sst2", "lora", 13, dev, 0.8, 100, setting=lr)
        for lr, dev in ((1e-4, 0.6), (3e-4, 0.9), (1e-3, 0.7))
    )
    assert edges(runs) == []
    one = as_runs(fake_record("sst2", "lora", s, 0.9, 0.8, 100, setting=3e-4) for s in (13, 21))
    assert edge_lines(one) == []  # one value tried: no grid, no edge


def test_the_smallest_value_suggests_the_next_below():
    runs = as_runs(
        fake_record("sst2", "lora", 13, dev, 0.8, 100, setting=lr)
        for lr, dev in ((1e-4, 0.9), (3e-4, 0.6), (5e-4, 0.7))
    )
    (edge,) = edges(runs)
    assert (edge["name"], edge["value"], edge["side"]) == ("lr", 1e-4, "smallest")
    assert abs(edge["next"] - 1e-4 / 3) < 1e-12


def test_half_width_by_hand():
    assert abs(half_width(5) - 2.7764 / 5**0.5) < 1e-3
    assert abs(half_width(2) - 12.706 / 2**0.5) < 1e-2


def test_a_bad_margin_is_one_line_before_anything_runs(tmp_path, capsys):
    from conftest import one_error_line, own_data_args, synthetic_files

    from lorabar.cli import main

    paths = synthetic_files(tmp_path / "d", n=(32, 16, 16))
    assert (
        main(
            [
                "compare",
                "--model",
                "tiny",
                *own_data_args(paths),
                "--methods",
                "lora,sam",
                "--margin",
                "0",
                "--out",
                str(tmp_path / "C"),
            ]
        )
        == 2
    )
    assert "Invalid --margin: 0.0" in one_error_line(capsys)
    assert not (tmp_path / "C").exists()


def test_widening_skips_what_the_config_refuses_and_what_was_tried():
    """oBAR at lr 0.6 and 1.2 (mu0 0.5): the next lr, 2.4, makes mu0 * lr >= 1 -- refused by
    the config, so no run is planned and the edge stays flagged; 0.1 and 0.2 give 0.4."""
    from lorabar.harness.report.widen import check_widen, widen_grid

    def runs(lrs):
        return as_runs(
            fake_record("sst2", "obar", 13, dev, 0.8, 100, setting=lr)
            for lr, dev in zip(lrs, (0.6, 0.7))
        )

    def mine(task, method):
        return True

    base = {"model": "tiny", "task": "sst2"}
    assert widen_grid(runs((0.6, 1.2)), base, 13, mine)["variant"] == []
    assert edge_lines(runs((0.6, 1.2))) != []
    (variant,) = widen_grid(runs((0.1, 0.2)), base, 13, mine)["variant"]
    assert (variant["method"], variant["lr"], variant["seed"]) == ("obar", 0.4, [13])
    assert widen_grid(runs((0.1, 0.2)), base, 13, lambda t, m: False)["variant"] == []
    import pytest

    with pytest.raises(ValueError, match=r"Invalid --widen-edges: the 'baseline-lr' protocol"):
        check_widen(1, "baseline-lr")
    assert check_widen(0, "baseline-lr") == 0
