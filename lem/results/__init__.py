"""Results: the results.json schema, its atomic writer and its one reader."""
