"""The `lem_campaign` Hydra sweeper: Hydra's cartesian grid, run for cycles in a fair order, with gaps and resume.

It validates every job before anything runs (a grid with an error finding is rejected whole), lists the plan on
`dry_run=true`, skips finished jobs on `campaign.resume=true` (results.json ok with the same config hash), and
ends with a summary read from the jobs' results.json files, so it reports the same under any launcher.

Hydra finds this module by scanning the `hydra_plugins` namespace package (as it finds any plugin); importing it
registers `hydra/sweeper=lem_campaign`. lem itself never imports it.
"""

# No `from __future__ import annotations` here: Hydra's plugin scan (Plugins.instance(), e.g. in a submitit job on a
# SLURM node) executes this module before it is in sys.modules, where dataclasses cannot resolve string annotations.
import itertools
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from omegaconf import OmegaConf

from lem.campaign.jobs import LemSweeper, engine_loads_line
from lem.campaign.plan import PlannedJob, plan_jobs
from lem.config.identity import config_hash
from lem.config.machine import MachineFacts
from lem.config.rules import Finding, errors
from lem.config.schema import CampaignConfig, ExperimentConfig
from lem.console import print_campaign_plan, print_campaign_summary
from lem.engines import planned_loads
from lem.errors import LemError
from lem.results.reader import read_job

log = logging.getLogger("lem.campaign")  # lem's logger tree: its warnings reach the console (lem/logs.py)


@dataclass
class CampaignSweeperConf:
    """hydra/sweeper=lem_campaign; `params` is the grid, as for Hydra's basic sweeper."""

    _target_: str = "hydra_plugins.lem_campaign.sweeper.CampaignSweeper"
    params: dict[str, str] | None = None


ConfigStore.instance().store(group="hydra/sweeper", name="lem_campaign", node=CampaignSweeperConf, provider="lem")


@dataclass(frozen=True)
class _Job:
    planned: PlannedJob
    overrides: list[str]
    config: ExperimentConfig
    job_dir: Path
    findings: tuple[Finding, ...]


def expand_grid(overrides: list[Override]) -> tuple[list[str], list[list[str]]]:
    """(the overrides every job gets, the grid points): the basic sweeper's semantics, from Hydra's public types.

    Per key the last override wins (the command line over `hydra.sweeper.params`) and keeps its first key's place;
    each choice or range sweep is one axis, and the points are the axes' cartesian product in key order.
    """
    by_key: dict[str, tuple[bool, list[str]]] = {}
    for override in overrides:
        key = override.get_key_element()
        if not override.is_sweep_override():
            by_key[key] = (False, [override.input_line or f"{key}={override.get_value_element_as_str()}"])
        elif override.is_discrete_sweep():
            by_key[key] = (True, [f"{key}={value}" for value in override.sweep_string_iterator()])
        else:
            kind = override.value_type.name if override.value_type is not None else "unknown"
            raise LemError(
                f"{override.input_line}: hydra/sweeper=lem_campaign enumerates choice and range sweeps, not {kind}"
            )
    constant = [lines[0] for swept, lines in by_key.values() if not swept]
    axes = [lines for swept, lines in by_key.values() if swept]
    return constant, [list(point) for point in itertools.product(*axes)]


class CampaignSweeper(LemSweeper):
    """Hydra's grid in lem's order, with gaps, validation before launch, resume and a summary."""

    def _compose(self, planned: PlannedJob, constant: list[str], facts: Any) -> _Job:
        overrides = planned.campaign_overrides(constant)
        config, job_dir, findings = self.compose_job(overrides, facts)
        return _Job(planned, overrides, config, job_dir, tuple(findings))

    def _engine_loads(self, jobs: list[_Job], campaign: CampaignConfig, facts: MachineFacts) -> str:
        """The plan's engine line; for an order other than grouped, what grouped would load too (a point's jobs differ
        only in campaign.*, which no engine sees, so any of them stands for all of its cycles)."""
        separate = self.separate_processes(facts)
        grouped = None
        if separate is None and campaign.structure != "grouped":
            by_point = {j.planned.point_index: j.config for j in jobs}
            grouped = sum(planned_loads([by_point[p] for p in sorted(by_point) for _ in range(campaign.cycles)]))
        return engine_loads_line([j.config for j in jobs], separate, grouped)

    def sweep(self, arguments: list[str]) -> Any:
        """Plan, validate, (dry run: list and stop), launch in order with gaps, summarise."""
        assert self.config is not None and self.launcher is not None and self.hydra_context is not None
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        constant, points = expand_grid(parser.parse_overrides([*self.params_as_overrides(), *arguments]))
        campaign: CampaignConfig = OmegaConf.to_object(self.config.campaign)  # type: ignore[assignment]
        planned = plan_jobs(points, campaign.cycles, campaign.structure, campaign.seed)
        sweep_dir = Path(self.config.hydra.sweep.dir)
        facts = self.machine_facts()
        jobs = [self._compose(p, constant, facts) for p in planned]
        dry_run = bool(self.config.dry_run)
        rejected = [(j, f) for j in jobs for f in errors(j.findings)]
        loads = None if rejected else self._engine_loads(jobs, campaign, facts)
        rows = [(j.planned, j.job_dir.name, j.findings) for j in jobs]
        print_campaign_plan(campaign.name, rows, full=dry_run, engine_loads=loads)
        if rejected:
            job, finding = rejected[0]
            raise LemError(
                f"grid rejected before running: {len(rejected)} error finding(s); job #{job.planned.position}"
                f" ({' '.join(job.planned.overrides)}): {finding.param}: {finding.message}"
            )
        if dry_run:
            return []
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        # Only a job that finished ok with the same config is skipped: failed, interrupted and missing ones rerun.
        skipped = {
            j.planned.position
            for j in jobs
            if campaign.resume and read_job(j.job_dir).ok_with_hash(config_hash(j.config))
        }
        to_run = [j for j in jobs if j.planned.position not in skipped]
        gaps = campaign.config_gap_seconds > 0 or campaign.cycle_gap_seconds > 0
        batches = [[j] for j in to_run] if gaps else ([to_run] if to_run else [])
        returns = []
        previous: _Job | None = None
        for batch in batches:
            if previous is not None:
                same_cycle = batch[0].planned.cycle == previous.planned.cycle
                time.sleep(campaign.config_gap_seconds if same_cycle else campaign.cycle_gap_seconds)
            log.info("campaign %s: launching %d job(s) from #%d", campaign.name, len(batch), batch[0].planned.position)
            returns.append(
                self.launcher.launch([j.overrides for j in batch], initial_job_idx=batch[0].planned.position)
            )
            previous = batch[-1]
        statuses = [("skipped" if j.planned.position in skipped else read_job(j.job_dir).status, j) for j in jobs]
        print_campaign_summary(campaign.name, sweep_dir, [(s, j.planned, j.job_dir) for s, j in statuses])
        bad = [j for s, j in statuses if s not in ("ok", "skipped")]
        if bad:
            raise LemError(
                f"campaign {campaign.name}: {len(bad)} of {len(jobs)} job(s) did not finish ok; first: "
                f"{bad[0].job_dir} (see its results.json)",
                exit_code=1,
            )
        return returns
