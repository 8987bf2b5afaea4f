"""GlobE Link node: an authority's endpoint that encrypts, signs, sends and receives messages."""
