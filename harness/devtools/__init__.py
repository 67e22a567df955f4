"""Tools for maintaining the project (the lock file), not used by a run."""
