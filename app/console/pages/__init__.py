"""Console pages: each module has its layout function and its callbacks (registered at import)."""
