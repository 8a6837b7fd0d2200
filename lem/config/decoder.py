"""The decoder settings a run uses: the preset applied to every field left null."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from lem.config.schema import DECODER_PRESETS, ExperimentConfig


def resolved_decoder(config: ExperimentConfig) -> dict[str, Any]:
    """Decoder settings with the preset applied to every field left null."""
    decoder = asdict(config.decoder)
    preset = DECODER_PRESETS.get(decoder.pop("preset") or "", {})
    resolved = {k: (v if v is not None else preset.get(k)) for k, v in decoder.items()}
    resolved["do_sample"] = bool(resolved["do_sample"])
    return resolved


def decoder_values(config: ExperimentConfig) -> tuple[bool, dict[str, Any]]:
    """(whether decoding samples, the decoder values a backend passes on): the sampling fields only when sampling,
    repetition_penalty either way, nothing left null. How greedy decoding is spelled is each backend's business."""
    decoder = resolved_decoder(config)
    sample = decoder.pop("do_sample")
    return sample, {k: v for k, v in decoder.items() if v is not None and (sample or k == "repetition_penalty")}
