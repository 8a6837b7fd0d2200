"""The tensorrt backend."""
