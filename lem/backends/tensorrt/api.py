"""The TensorRT-LLM API lem uses: where each name is imported from, and the guarded import of all of them.

Written against TensorRT-LLM 1.2.1, recorded in tests/contracts/tensorrt_llm_api.json; scripts/check_trtllm_contract.py
compares that record with an installed tensorrt_llm.
"""

from __future__ import annotations

import importlib
from typing import Any

from lem.backends.escape_hatches import accepted_keywords, accepts_any_keyword
from lem.errors import LemError

INSTALL_HINT = (
    "TensorRT-LLM runs on a Linux host with an NVIDIA GPU: install it there with "
    "pip install -e .[tensorrt] --extra-index-url https://pypi.nvidia.com (see docs/backends.md)"
)
#: The module TensorRT-LLM 1.2.1 exports each name lem uses from (the contract's "imports"). `LLM` there is the
#: TensorRT-engine flow; `tensorrt_llm.LLM` would be the PyTorch flow.
API_MODULES = {
    "LLM": "tensorrt_llm._tensorrt_engine",
    "BuildConfig": "tensorrt_llm.llmapi",
    "KvCacheConfig": "tensorrt_llm.llmapi",
    "SchedulerConfig": "tensorrt_llm.llmapi",
    "QuantConfig": "tensorrt_llm.llmapi",
    "CalibConfig": "tensorrt_llm.llmapi",
    "SamplingParams": "tensorrt_llm.llmapi",
    "QuantAlgo": "tensorrt_llm.llmapi",
    "CapacitySchedulerPolicy": "tensorrt_llm.llmapi",
    "BatchingType": "tensorrt_llm.llmapi",
    "PluginConfig": "tensorrt_llm.plugin",
    "KVCacheType": "tensorrt_llm.llmapi.kv_cache_type",
}
#: (module, class) declaring the keywords `LLM(**kwargs)` accepts beyond its named parameters (the contract's
#: "llm_constructor"): the pydantic arguments of the TensorRT-engine flow.
LLM_ARGS = ("tensorrt_llm.llmapi.llm_args", "TrtLlmArgs")
_MAX_CHARS = 300


def _fail(why: str) -> LemError:
    return LemError(f"backend=tensorrt: {why}; {INSTALL_HINT}", phase="load")


def import_api() -> tuple[dict[str, Any], str]:
    """The API names lem uses and tensorrt_llm's version; a one-line LemError where any of them cannot be imported."""
    try:
        import tensorrt_llm

        modules = {module: importlib.import_module(module) for module in sorted(set(API_MODULES.values()))}
    except ModuleNotFoundError as ex:
        if ex.name == "tensorrt_llm":
            raise _fail("the tensorrt_llm package is not installed here") from ex
        raise _fail(f"tensorrt_llm is installed but cannot import {ex.name}") from ex
    except Exception as ex:  # importing TensorRT-LLM loads CUDA, TensorRT and MPI libraries: anything can fail
        summary = " ".join(f"{type(ex).__name__}: {ex}".split())[:_MAX_CHARS]
        raise _fail(f"tensorrt_llm is installed but failed to import ({summary})") from ex
    version = str(getattr(tensorrt_llm, "__version__", "unknown"))
    missing = [f"{module}.{name}" for name, module in API_MODULES.items() if not hasattr(modules[module], name)]
    if missing:
        raise _fail(
            f"tensorrt_llm {version} has no {', '.join(missing)}: it differs from the 1.2.1 API lem was written "
            f"against (scripts/check_trtllm_contract.py lists every difference)"
        )
    return {name: getattr(modules[module], name) for name, module in API_MODULES.items()}, version


def llm_keywords(llm_class: Any) -> frozenset[str]:
    """The keywords `LLM(...)` accepts: its named parameters, and where it takes **kwargs, the fields of LLM_ARGS."""
    names = accepted_keywords(llm_class)
    if not accepts_any_keyword(llm_class):
        return names
    module, name = LLM_ARGS
    return names | accepted_keywords(getattr(importlib.import_module(module), name))
