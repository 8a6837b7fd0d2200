"""The tensorrt backend: TensorRT-LLM's LLM API on cached engines."""

from lem.backends.spec import BackendSpec
from lem.backends.tensorrt.api import INSTALL_HINT
from lem.backends.tensorrt.config import TensorRTConfig
from lem.backends.tensorrt.rules import KEYWORD_READERS, RULES, SKIP_CONDITIONS
from lem.backends.tensorrt.translate import engine_arguments

SPEC = BackendSpec(
    config=TensorRTConfig,
    implementation="lem.backends.tensorrt.backend:TensorRTBackend",
    package="tensorrt_llm",
    install_hint=INSTALL_HINT,
    engine_arguments=engine_arguments,
    rules=RULES,
    skip_conditions=SKIP_CONDITIONS,
    keyword_readers=KEYWORD_READERS,
)
