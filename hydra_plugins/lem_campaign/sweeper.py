"""The `lem_campaign` Hydra sweeper: Hydra's cartesian grid, run for cycles in a fair order, with gaps and resume.

It validates every job before anything runs (a grid with an error finding is rejected whole), lists the plan on
`dry_run=true`, skips finished jobs on `campaign.resume=true` (results.json ok with the same config hash), and
ends with a summary read from the jobs' results.json files, so it reports the same under any launcher.
"""

# No `from __future__ import annotations` here: Hydra's plugin scan (Plugins.instance(), e.g. in a submitit job on a
# SLURM node) executes this module before it is in sys.modules, where dataclasses cannot resolve string annotations.
import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf, open_dict

from lem.campaign.plan import PlannedJob, plan_jobs
from lem.config.machine import probe_machine
from lem.config.rules import Finding, errors, validate
from lem.config.schema import CampaignConfig, ExperimentConfig
from lem.console import print_campaign_plan, print_campaign_summary
from lem.errors import LemError
from lem.results.writer import RESULTS_FILE, config_hash

log = logging.getLogger(__name__)


@dataclass
class CampaignSweeperConf:
    """hydra/sweeper=lem_campaign; `params` is the grid, as for Hydra's basic sweeper."""

    _target_: str = "hydra_plugins.lem_campaign.sweeper.CampaignSweeper"
    max_batch_size: int | None = None
    params: dict[str, str] | None = None


@dataclass(frozen=True)
class _Job:
    planned: PlannedJob
    overrides: list[str]
    config: ExperimentConfig
    job_dir: Path
    findings: tuple[Finding, ...]


def job_status(job_dir: Path) -> tuple[str, dict[str, Any] | None]:
    """('ok' | 'failed' | 'running' | 'missing' | 'unreadable', the parsed results.json or None)."""
    try:
        result = json.loads((job_dir / RESULTS_FILE).read_text())
    except FileNotFoundError:
        return "missing", None
    except (OSError, json.JSONDecodeError):
        return "unreadable", None
    return str(result.get("status", "unreadable")), result


class CampaignSweeper(BasicSweeper):
    """BasicSweeper's grid parsing, lem's ordering, gaps, validation, resume and summary."""

    def _compose(self, planned: PlannedJob, constant: list[str], sweep_dir: Path, facts: Any) -> _Job:
        assert self.hydra_context is not None and self.config is not None
        overrides = planned.campaign_overrides(constant)
        cfg = self.hydra_context.config_loader.load_sweep_config(self.config, overrides)
        subdir = str(cfg.hydra.sweep.subdir)
        with open_dict(cfg):
            del cfg["hydra"]
        config: ExperimentConfig = OmegaConf.to_object(cfg)  # type: ignore[assignment]
        return _Job(planned, overrides, config, sweep_dir / subdir, tuple(validate(config, facts)))

    def _done_before(self, job: _Job) -> bool:
        status, result = job_status(job.job_dir)
        return status == "ok" and result is not None and result.get("config_hash") == config_hash(asdict(job.config))

    def sweep(self, arguments: list[str]) -> Any:
        """Plan, validate, (dry run: list and stop), launch in order with gaps, summarise."""
        assert self.config is not None and self.launcher is not None and self.hydra_context is not None
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        parsed = parser.parse_overrides([*self._parse_config(), *arguments])
        constant = [o.input_line for o in parsed if not o.is_sweep_override() and o.input_line is not None]
        (points,) = self.split_arguments([o for o in parsed if o.is_sweep_override()], None)
        campaign: CampaignConfig = OmegaConf.to_object(self.config.campaign)  # type: ignore[assignment]
        planned = plan_jobs(points, campaign.cycles, campaign.structure, campaign.seed)
        sweep_dir = Path(self.config.hydra.sweep.dir)
        facts = probe_machine()
        jobs = [self._compose(p, constant, sweep_dir, facts) for p in planned]
        dry_run = bool(self.config.dry_run)
        print_campaign_plan(campaign.name, [(j.planned, j.job_dir.name, j.findings) for j in jobs], full=dry_run)
        rejected = [(j, f) for j in jobs for f in errors(j.findings)]
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
        skipped = {j.planned.position for j in jobs if campaign.resume and self._done_before(j)}
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
        statuses = [("skipped" if j.planned.position in skipped else job_status(j.job_dir)[0], j) for j in jobs]
        print_campaign_summary(campaign.name, sweep_dir, [(s, j.planned, j.job_dir) for s, j in statuses])
        bad = [j for s, j in statuses if s not in ("ok", "skipped")]
        if bad:
            raise LemError(
                f"campaign {campaign.name}: {len(bad)} of {len(jobs)} job(s) did not finish ok; first: "
                f"{bad[0].job_dir} (see its results.json)",
                exit_code=1,
            )
        return returns
