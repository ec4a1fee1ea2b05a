"""Experiments that measure what the project's additions buy."""
