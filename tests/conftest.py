"""Shared pytest configuration: Hypothesis profiles selected via $HYPOTHESIS_PROFILE."""

import os

from hypothesis import settings

settings.register_profile("ci", deadline=None, max_examples=100, derandomize=True)
settings.register_profile("dev", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))
