"""Where log lines go: lem's warnings to the console, everything else (third parties included) to lem.log.

conf/config.yaml installs `ConsoleFilter` on Hydra's console handler (level WARNING) while the job's file handler
(`<job dir>/lem.log`) keeps every record from INFO up. `route_third_party` sends transformers' and vLLM's logs
and Python warnings through the same handlers and turns off their progress bars, before either is imported.
"""

from __future__ import annotations

import logging
import os


class ConsoleFilter(logging.Filter):
    """Passes records of lem's own logger tree (`lem`, `lem.*`) only; all others go to lem.log only."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.name == "lem" or record.name.startswith("lem.")


def route_third_party() -> None:
    """Progress bars off, and transformers', vLLM's and Python's warnings into the logging tree (so into lem.log).

    Called once validation has passed, before the harness imports transformers or vLLM; environment variables
    already set by the user win.
    """
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # read by transformers' and the hub's tqdm
    os.environ.setdefault("VLLM_CONFIGURE_LOGGING", "0")  # vLLM then logs through the root logger's handlers
    logging.captureWarnings(True)
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_default_handler()
    transformers_logging.enable_propagation()
