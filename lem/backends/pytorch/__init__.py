"""The pytorch backend: transformers' generate on one device."""

from lem.backends.pytorch.config import PyTorchConfig
from lem.backends.pytorch.rules import KEYWORD_READERS, RULES, SKIP_CONDITIONS
from lem.backends.pytorch.translate import engine_arguments
from lem.backends.spec import BackendSpec

SPEC = BackendSpec(
    config=PyTorchConfig,
    implementation="lem.backends.pytorch.backend:PyTorchBackend",
    package="transformers",
    install_hint="install lem with its dependencies (`make install`, or `pip install -e .` beside a torch build)",
    engine_arguments=engine_arguments,
    rules=RULES,
    skip_conditions=SKIP_CONDITIONS,
    keyword_readers=KEYWORD_READERS,
)
