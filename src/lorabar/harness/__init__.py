"""The experiment harness: tasks and data, models, one run, grids and reports."""
