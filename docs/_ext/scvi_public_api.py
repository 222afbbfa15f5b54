"""The public API of ``scvi``: which modules, objects and members count as public.

One definition, used both by the API reference (``scvi_autoapi``) and by
``tests/test_docstrings.py``, so that what the tests check is exactly what the reference
shows. It needs nothing but the standard library and ``scvi`` itself.

Rules
-----
- A module is public when no component of its dotted name starts with ``_``.
- A module's public names are its ``__all__`` when it defines one; otherwise the classes
  and functions defined in it (``obj.__module__`` is the module) whose names do not start
  with ``_``.
- An object listed by several modules (a package re-exporting a submodule's class) is
  documented once, at its *home*: the module that defines it if that module is public,
  else the first public module (non-package modules first) that lists it.
- A class's public members are the public names defined in the class itself or in its
  *helper bases*: private scvi classes (such as the mixins ``GeneExpressionDataset`` and
  ``Posterior`` are assembled from) that no public base class already brings in.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

ROOT_PACKAGE = "scvi"


def is_private_path(dotted: str) -> bool:
    """Whether any component of a dotted name starts with an underscore."""
    return any(part.startswith("_") for part in dotted.split("."))


def public_module_names(root: str = ROOT_PACKAGE) -> list[str]:
    """The root package and all its public submodules, in import-walk order."""
    package = importlib.import_module(root)
    names = [root]
    for info in pkgutil.walk_packages(package.__path__, prefix=root + "."):
        if not is_private_path(info.name):
            names.append(info.name)
    return names


def is_package(module: ModuleType) -> bool:
    """Whether a module is a package (has submodules)."""
    return hasattr(module, "__path__")


def is_documentable(obj: Any) -> bool:
    """Classes and functions carry docstrings; module-level data does not."""
    return inspect.isclass(obj) or inspect.isroutine(obj)


def public_names(module: ModuleType) -> list[str]:
    """A module's public names: ``__all__``, else what it defines without a leading ``_``."""
    declared = getattr(module, "__all__", None)
    if declared is not None:
        return list(declared)
    return [
        name
        for name, obj in vars(module).items()
        if not name.startswith("_")
        and is_documentable(obj)
        and getattr(obj, "__module__", None) == module.__name__
    ]


@dataclass
class ApiIndex:
    """Public modules, their public names, and the home of every public class/function."""

    modules: dict[str, ModuleType] = field(default_factory=dict)
    names: dict[str, list[str]] = field(default_factory=dict)
    homes: dict[int, tuple[str, str]] = field(default_factory=dict)

    def objects(self, module_name: str) -> list[tuple[str, Any]]:
        """``(name, object)`` pairs of a module's public names, in listed order."""
        module = self.modules[module_name]
        return [(name, getattr(module, name)) for name in self.names[module_name]]

    def home(self, obj: Any) -> tuple[str, str] | None:
        """``(module, name)`` where a public class or function is documented."""
        return self.homes.get(id(obj))

    def is_public_class(self, cls: type) -> bool:
        """Whether a class is part of the public API (it has a home)."""
        return id(cls) in self.homes

    def member_classes(self, cls: type) -> list[type]:
        """The class and its helper bases, whose members are documented as the class's own.

        Helper bases are the private ``scvi`` classes in the MRO that are not already
        brought in by a public base (a public scvi class, or any class from outside scvi).
        """
        covered: set[type] = set()
        for base in cls.__mro__[1:]:
            outside = base.__module__.split(".")[0] != ROOT_PACKAGE
            if outside or self.is_public_class(base):
                covered.update(base.__mro__)
        return [cls] + [base for base in cls.__mro__[1:] if base not in covered]

    def public_members(self, cls: type) -> list[tuple[str, type, Any]]:
        """``(name, defining class, raw attribute)`` of a class's public members.

        A member belongs to the first class of the MRO that defines it; it is public when
        that class is the class itself or one of its helper bases.
        """
        own = self.member_classes(cls)
        members = []
        seen: set[str] = set()
        for klass in cls.__mro__:
            for name, value in vars(klass).items():
                if name in seen:
                    continue
                seen.add(name)
                if klass in own and not name.startswith("_"):
                    members.append((name, klass, value))
        return members


def build_index(root: str = ROOT_PACKAGE) -> ApiIndex:
    """Import every public module and work out the home of every public object."""
    index = ApiIndex()
    for module_name in public_module_names(root):
        module = importlib.import_module(module_name)
        index.modules[module_name] = module
        index.names[module_name] = public_names(module)

    listings: dict[int, list[tuple[str, str]]] = {}
    defined_in: dict[int, str] = {}
    for module_name in index.modules:
        for name, obj in index.objects(module_name):
            if is_documentable(obj):
                listings.setdefault(id(obj), []).append((module_name, name))
                defined_in[id(obj)] = getattr(obj, "__module__", "")

    for key, places in listings.items():

        def rank(place: tuple[str, str], key: int = key) -> tuple[bool, bool]:
            module_name = place[0]
            return (
                module_name != defined_in[key],
                is_package(index.modules[module_name]),
            )

        index.homes[key] = min(places, key=rank)
    return index
