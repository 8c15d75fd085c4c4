"""The execute stage: where a grid's runs run -- this machine, a Ray cluster, SLURM.

[`run_grid()`][lorabar.harness.execute.grid_runner.run_grid] plans a grid and hands the runs still
to do
to an executor built from an [`ExecutorConfig`][lorabar.harness.execute.choice.ExecutorConfig]
(``--executor local|ray|slurm`` and its flags).  Executors know runs (config, identity, result
file), not tasks.
"""
