"""Campaigns: grids run for several cycles in a fair order, with gaps, resume and a summary (a Hydra sweeper)."""
