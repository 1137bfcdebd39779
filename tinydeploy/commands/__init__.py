"""One module per CLI command; each stays thin and imports heavy libraries lazily."""
