"""One module per example of the source documents; each registers one task."""
