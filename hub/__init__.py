"""GlobE Link hub: membership, signed directory and store-and-forward routing."""
