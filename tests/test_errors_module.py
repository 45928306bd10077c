"""Every exception class of the core is defined once, in ``flambeau.errors``."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import flambeau
from flambeau import errors


def test_every_core_exception_is_defined_in_errors_and_exported():
    elsewhere = []
    for info in pkgutil.walk_packages(flambeau.__path__, "flambeau."):
        if info.name.startswith("flambeau.testing"):
            continue  # the conformance kit is for backend authors, and raises nothing
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if inspect.isclass(obj) and issubclass(obj, BaseException) and \
                    obj.__module__ == info.name and info.name != "flambeau.errors":
                elsewhere.append(f"{info.name}.{name}")
    assert not elsewhere, f"define these in flambeau/errors.py: {elsewhere}"
    defined = {name for name, obj in vars(errors).items()
               if inspect.isclass(obj) and issubclass(obj, BaseException)
               and obj.__module__ == "flambeau.errors"}
    assert defined == set(errors.__all__)
    assert all(issubclass(getattr(errors, name), errors.FlambeauError) for name in defined)


def test_old_homes_re_export_the_same_classes():
    from flambeau import autograd, nn, serialization
    from flambeau.nn import parameter

    assert autograd.AutogradError is errors.AutogradError
    assert nn.StateDictError is errors.StateDictError
    assert nn.LayerInputError is errors.LayerInputError
    assert parameter.UninitializedParameterError is errors.UninitializedParameterError
    assert serialization.SerializationError is errors.SerializationError
    assert serialization.CheckpointNotFoundError is errors.CheckpointNotFoundError
