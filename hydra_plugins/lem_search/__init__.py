"""lem's search sweeper (hydra/sweeper=lem_search); Hydra requires plugins under the hydra_plugins package."""
