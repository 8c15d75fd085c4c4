"""lorabar.harness.compare: plan -> execute -> report.  (The protocols are in test_protocol.py,
own files in test_own_data.py, the executors in test_execute.py.)"""

from __future__ import annotations

from lorabar.harness.compare import duration


def test_an_estimate_is_given_in_the_unit_a_reader_plans_with():
    assert [duration(s) for s in (4.2, 119, 174.6, 7199, 7200, 41000)] == \
        ["4 s", "119 s", "3 min", "120 min", "2.00 h", "11.39 h"]
