"""Hard rules matched the way a reader reads: folding, matching and the named checks."""
