"""Execution: measuring one cell, timing, the memory probe, the worker process, the
environment (threads, provenance) and the engines that run cells."""
