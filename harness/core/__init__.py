"""Core: the two interfaces (task, back-end), datasets and losses, model specs, claims,
the registry and plugin loading, errors, the device/dtype parser.  Imports nothing else
of the harness."""
