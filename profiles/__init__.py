"""Layers, profiles and their pure composition.

This package knows nothing about chat platforms, storage or inference: it models
layers and profiles, loads them from TOML files and composes a stack of layers
into one plan with provenance.
"""

from profiles.compose import ComposedPlan, Sourced, compose
from profiles.errors import CabotError, CompositionError, LayerFileError, ProfileError
from profiles.library import Library, load_builtin_library
from profiles.models import Layer, Profile, RedactRule, RefuseRule, Rules, Sampling

__all__ = [
    "CabotError",
    "ComposedPlan",
    "CompositionError",
    "Layer",
    "LayerFileError",
    "Library",
    "Profile",
    "ProfileError",
    "RedactRule",
    "RefuseRule",
    "Rules",
    "Sampling",
    "Sourced",
    "compose",
    "load_builtin_library",
]
