"""PyTorch building blocks of the search spaces' networks (imported only where models exist)."""
