"""lem's campaign sweeper (hydra/sweeper=lem_campaign); Hydra requires plugins under the hydra_plugins package."""
