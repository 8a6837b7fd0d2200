"""Searches: a multi-objective Optuna study over a search space declared with Hydra's sweep syntax.

`space` turns the declared overrides into Optuna distributions and each trial's parameters back into overrides;
`objectives` reads a trial's objective values from its results.json (through lem.results' reader); `study` keeps the
study in SQLite in the sweep directory and repairs what a killed search left behind; `summary` prints progress and the
Pareto front. The `lem_search` Hydra sweeper (hydra_plugins/lem_search) drives them; lem never imports the plugin.
"""
