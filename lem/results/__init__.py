"""Results: the results.json schema and its atomic writer."""
