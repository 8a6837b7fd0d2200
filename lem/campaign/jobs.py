"""What lem's sweepers share (hydra_plugins/lem_campaign, hydra_plugins/lem_search): Hydra's wiring, and each job
composed as the job itself will see it, with its folder and its validation findings, before anything is launched;
the hardware rules are judged against the machine the launcher runs jobs on (this one, or a SLURM request).

`LemSweeper` is abstract (it leaves `sweep` to each sweeper), so Hydra's plugin scan never lists it as a plugin.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from hydra.core.plugins import Plugins
from hydra.plugins.launcher import Launcher
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict

from lem.config.findings import Finding
from lem.config.machine import MachineFacts, probe_machine, slurm_target
from lem.config.overrides import as_typed
from lem.config.rules import validate
from lem.config.schema import ExperimentConfig
from lem.engines import planned_loads, reuse_applies


class LemSweeper(Sweeper):
    """A Hydra sweeper that launches lem jobs through the configured launcher (public Hydra API only)."""

    def __init__(self, params: dict[str, str] | None = None) -> None:
        self.hydra_context: HydraContext | None = None
        self.config: DictConfig | None = None
        self.launcher: Launcher | None = None
        #: `hydra.sweeper.params`: key → the values to sweep (Hydra's sweep syntax).
        self.params = dict(params or {})

    def params_as_overrides(self) -> list[str]:
        """`hydra.sweeper.params` as override strings; escape-hatch keys written plainly become `++key`, as they do on
        the command line (lem.config.overrides.as_typed)."""
        return as_typed([f"{key}={value}" for key, value in self.params.items()])

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.hydra_context = hydra_context
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def _launcher_choice(self) -> str:
        assert self.config is not None
        return str(self.config.hydra.runtime.choices.get("hydra/launcher"))

    def machine_facts(self) -> MachineFacts:
        """What validation judges each job against: this machine, with the job target of a SLURM launcher (the one
        `python -m lem` swapped out for a dry run, or the one that will submit the jobs)."""
        assert self.config is not None
        facts = probe_machine()
        if facts.target is not None:
            return facts
        launcher = OmegaConf.to_container(self.config.hydra.launcher, resolve=False)
        assert isinstance(launcher, dict)
        return dataclasses.replace(facts, target=slurm_target(launcher, self._launcher_choice()))

    def separate_processes(self, facts: MachineFacts) -> str | None:
        """Why jobs cannot take over each other's engines (each runs in a process of its own), or None where they
        run one after another in this process (Hydra's basic launcher)."""
        if facts.target is not None:
            return f"each SLURM job of hydra/launcher={facts.target.launcher} loads its own"
        if type(self.launcher).__name__ != "BasicLauncher":
            return f"hydra/launcher={self._launcher_choice()} runs each job in a process of its own"
        return None

    def compose_job(self, overrides: list[str], facts: MachineFacts) -> tuple[ExperimentConfig, Path, list[Finding]]:
        """The sweep's config with `overrides` as the job will get it, the job's folder (`hydra.sweep.dir` /
        `hydra.sweep.subdir`, so `overrides` must resolve the subdir) and its validation findings."""
        assert self.hydra_context is not None and self.config is not None
        cfg = self.hydra_context.config_loader.load_sweep_config(self.config, overrides)
        job_dir = Path(str(cfg.hydra.sweep.dir)) / str(cfg.hydra.sweep.subdir)
        with open_dict(cfg):
            del cfg["hydra"]
        config: ExperimentConfig = OmegaConf.to_object(cfg)  # type: ignore[assignment]
        return config, job_dir, validate(config, facts)


def engine_loads_line(configs: Sequence[ExperimentConfig], separate: str | None, grouped: int | None = None) -> str:
    """The plan's engine line: how many of the jobs (`configs`, in run order) load an engine. `separate` says why
    each loads its own (see `LemSweeper.separate_processes`); `grouped` is what the grouped order would load."""
    total = len(configs)
    if separate is not None:
        return f"engine loads: {total} of {total} jobs (no reuse: {separate})"
    loads = sum(planned_loads(configs))
    reusing = sum(reuse_applies(c) for c in configs)
    reuse = "reuse on" if reusing == total else "reuse off" if reusing == 0 else f"reuse on for {reusing}"
    line = f"engine loads: {loads} of {total} jobs ({reuse}; estimated from each job's engine arguments)"
    if grouped is not None and grouped < loads:
        line += f"; campaign.structure=grouped would load {grouped}"
    return line
