"""What lem's sweepers share (hydra_plugins/lem_campaign, hydra_plugins/lem_search): Hydra's wiring, and each job
composed as the job itself will see it, with its folder and its validation findings, before anything is launched.

`LemSweeper` is abstract (it leaves `sweep` to each sweeper), so Hydra's plugin scan never lists it as a plugin.
"""

from __future__ import annotations

from pathlib import Path

from hydra.core.plugins import Plugins
from hydra.plugins.launcher import Launcher
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict

from lem.config.findings import Finding
from lem.config.machine import MachineFacts
from lem.config.rules import validate
from lem.config.schema import ExperimentConfig


class LemSweeper(Sweeper):
    """A Hydra sweeper that launches lem jobs through the configured launcher (public Hydra API only)."""

    def __init__(self) -> None:
        self.hydra_context: HydraContext | None = None
        self.config: DictConfig | None = None
        self.launcher: Launcher | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.hydra_context = hydra_context
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

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
