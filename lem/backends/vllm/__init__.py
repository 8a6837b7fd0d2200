"""The vllm backend."""
