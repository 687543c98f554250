"""Adapters: the only modules that import GitPython and DVC; they convert their errors."""
