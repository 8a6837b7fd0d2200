"""Built-in models that lem can run without downloading anything."""
