"""The run order of a campaign: pure functions over grid points and cycles."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class PlannedJob:
    """One job: which grid point (its swept overrides), which cycle, and its place in the order (all 0-based)."""

    point_index: int
    cycle: int
    position: int
    overrides: tuple[str, ...]

    @property
    def job_id(self) -> str:
        """Stable across re-runs of the same grid: the job's sub-directory in the sweep directory."""
        return f"p{self.point_index:03d}_c{self.cycle:02d}"

    def campaign_overrides(self, constant: list[str]) -> list[str]:
        """The command line's `constant` overrides, the point's, and where the job stands in the campaign."""
        point = " ".join(self.overrides).replace("\\", "\\\\").replace("'", "\\'")
        return [
            *constant,
            *self.overrides,
            f"hydra.sweep.subdir={self.job_id}",
            f"campaign.cycle={self.cycle}",
            f"campaign.position={self.position}",
            f"campaign.point_index={self.point_index}",
            f"campaign.point='{point}'",
        ]


def plan_jobs(points: list[list[str]], cycles: int, structure: str, seed: int) -> list[PlannedJob]:
    """Order `cycles` runs of every point.

    interleaved: A B A B ...; grouped: A A B B ...; shuffled: each cycle in its own order drawn from
    random.Random(seed + cycle), so the same seed always gives the same order.
    """
    pairs: list[tuple[int, int]]
    if structure == "grouped":
        pairs = [(p, c) for p in range(len(points)) for c in range(cycles)]
    elif structure == "interleaved":
        pairs = [(p, c) for c in range(cycles) for p in range(len(points))]
    elif structure == "shuffled":
        pairs = []
        for c in range(cycles):
            order = list(range(len(points)))
            random.Random(seed + c).shuffle(order)
            pairs += [(p, c) for p in order]
    else:
        raise ValueError(f"campaign.structure={structure!r}: use interleaved, grouped or shuffled")
    return [PlannedJob(p, c, position, tuple(points[p])) for position, (p, c) in enumerate(pairs)]
