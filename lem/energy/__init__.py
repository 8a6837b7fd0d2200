"""Energy: Zeus windows over the devices a run uses, idle baselines, the telemetry sampler, the estimate model."""
