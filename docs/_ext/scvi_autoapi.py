"""Sphinx extension: the ``scvi-package`` directive that writes the API reference.

``.. scvi-package:: scvi.inference`` documents a package and each of its public
non-package submodules (one section per submodule), laid out like the scVI 0.5 reference:
the module docstring, then every public object whose home is that module, with autodoc.
Names that a module only re-exports are listed in a summary table linking to their home.
Which objects and members are public is decided by :mod:`scvi_public_api`, the same rules
``tests/test_docstrings.py`` checks.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

import scvi_public_api
from docutils import nodes
from sphinx.application import Sphinx
from sphinx.errors import PycodeError
from sphinx.ext.autodoc.mock import mock
from sphinx.pycode import ModuleAnalyzer
from sphinx.util.docutils import SphinxDirective
from sphinx.util.parsing import nested_parse_to_nodes

_INDEX: scvi_public_api.ApiIndex | None = None
_LONGEST_SHOWN_VALUE = 60
_UNDERLINE = re.compile(r"^\s*-{3,}\s*$")
# Sections whose body, when written as plain prose, is rendered as one field.
_PROSE_FIELDS = {"Returns": ":returns:", "Yields": ":Yields:"}


def _api_index(app: Sphinx) -> scvi_public_api.ApiIndex:
    global _INDEX
    if _INDEX is None:
        with mock(app.config.autodoc_mock_imports):
            _INDEX = scvi_public_api.build_index()
    return _INDEX


def _data_comments(module_name: str) -> set[tuple[str, str]]:
    """``(module, name)`` of the module-level data documented by ``#:`` comments."""
    try:
        analyzer = ModuleAnalyzer.for_module(module_name)
    except PycodeError:
        return set()
    return {
        (module_name, name) for scope, name in analyzer.find_attr_docs() if not scope
    }


def _is_scvi_instance(obj: Any) -> bool:
    """Whether a value is an instance of an scvi class (such as ``scvi.settings``)."""
    return type(obj).__module__.split(".")[0] == scvi_public_api.ROOT_PACKAGE


def _title(text: str, underline: str) -> list[str]:
    return [text, underline * len(text), ""]


def _class_lines(index: scvi_public_api.ApiIndex, target: str, cls: type) -> list[str]:
    lines = [
        f".. autoclass:: {target}",
        "   :members:",
        "   :undoc-members:",
        "   :show-inheritance:",
    ]
    own = index.member_classes(cls)
    if len(own) > 1:
        # Members of helper bases are shown as the class's own; everything brought in by
        # the other classes of the MRO is left out.
        excluded = sorted({base.__name__ for base in cls.__mro__ if base not in own})
        lines.append(f"   :inherited-members: {', '.join(excluded)}")
    return lines


def _object_lines(
    index: scvi_public_api.ApiIndex, module_name: str, name: str, obj: Any
) -> list[str]:
    target = f"{module_name}.{name}"
    if inspect.isclass(obj):
        lines = _class_lines(index, target, obj)
    elif inspect.isroutine(obj):
        lines = [f".. autofunction:: {target}"]
    elif _is_scvi_instance(obj) or (module_name, name) in _data_comments(module_name):
        # autodoc describes data by its ``#:`` comment, else by its type's docstring.
        lines = [f".. autodata:: {target}"]
        if len(repr(obj)) > _LONGEST_SHOWN_VALUE:
            lines.append("   :no-value:")
    else:
        # The docstring of a builtin type (``dict``, ``str``) would not describe the
        # value, so other data get a bare entry.
        lines = [f".. py:data:: {name}", f"   :module: {module_name}"]
        if len(repr(obj)) <= _LONGEST_SHOWN_VALUE:
            lines.append(f"   :value: {obj!r}")
    return lines + [""]


def _module_lines(index: scvi_public_api.ApiIndex, module_name: str) -> list[str]:
    lines = [f".. automodule:: {module_name}", ""]
    documented, elsewhere = [], []
    for name, obj in index.objects(module_name):
        home = index.home(obj)
        if home is None or home == (module_name, name):
            documented.append((name, obj))
        else:
            elsewhere.append(".".join(home))
    if elsewhere:
        heading = (
            "Exported names"
            if scvi_public_api.is_package(index.modules[module_name])
            else "Re-exported names"
        )
        lines += [
            f".. rubric:: {heading}",
            "",
            ".. autosummary::",
            "   :nosignatures:",
            "",
        ]
        # Targets inside the current module are written relative to it, as autosummary
        # asks.
        prefix = module_name + "."
        lines += [f"   ~{target.removeprefix(prefix)}" for target in elsewhere] + [""]
    for name, obj in documented:
        lines += _object_lines(index, module_name, name, obj)
    return lines


class ScviPackageDirective(SphinxDirective):
    """Document a package and its public non-package submodules."""

    required_arguments = 1
    has_content = False

    def run(self) -> list[nodes.Node]:
        index = _api_index(self.env.app)
        package = self.arguments[0]
        if package not in index.modules:
            raise self.error(
                f"{package!r} is not a public scvi module; public modules are: "
                f"{', '.join(index.modules)}"
            )
        lines = _module_lines(index, package)
        for module_name, module in index.modules.items():
            parent, _, _ = module_name.rpartition(".")
            if parent == package and not scvi_public_api.is_package(module):
                lines += _title(module_name, "-") + _module_lines(index, module_name)
        for module in index.modules.values():
            if getattr(module, "__file__", None):
                self.env.note_dependency(module.__file__)
        return nested_parse_to_nodes(
            self.state,
            "\n".join(lines),
            source=f"<scvi-package {package}>",
            allow_section_headings=True,
        )


def _show_public_bases(
    app: Sphinx, name: str, obj: Any, options: Any, bases: list[Any]
) -> None:
    """Show public bases only: helper bases are replaced by what they derive from, and a
    public class is named by its documented home rather than its private module."""
    index = _api_index(app)
    if not inspect.isclass(obj) or index.home(obj) is None:
        return
    own = set(index.member_classes(obj))
    shown: list[Any] = []
    pending = list(bases)
    while pending:
        base = pending.pop(0)
        if inspect.isclass(base) and base in own:
            pending = [b for b in base.__bases__ if b is not object] + pending
            continue
        home = index.home(base) if inspect.isclass(base) else None
        entry = f":py:class:`{'.'.join(home)}`" if home else base
        if entry not in shown:
            shown.append(entry)
    bases[:] = shown or [object]


def _is_section_start(lines: list[str], position: int) -> bool:
    return (
        position + 1 < len(lines)
        and bool(lines[position].strip())
        and bool(_UNDERLINE.match(lines[position + 1]))
    )


def _prose_return_sections(
    app: Sphinx, what: str, name: str, obj: Any, options: Any, lines: list[str]
) -> None:
    """Render a ``Returns``/``Yields`` section written as plain prose as one field.

    The docstrings of scvi describe return values in sentences, without numpy's
    ``type`` line and indented description; napoleon would read each line as a separate
    typed entry. A section none of whose lines is indented is turned into a
    ``:returns:`` field before napoleon runs; typed sections are left to napoleon.
    """
    position = 0
    while position < len(lines):
        title = lines[position].strip()
        if title not in _PROSE_FIELDS or not _is_section_start(lines, position):
            position += 1
            continue
        start = end = position + 2
        while end < len(lines) and not _is_section_start(lines, end):
            end += 1
        body = lines[start:end]
        while body and not body[-1].strip():
            body.pop()
        if not body or any(line.startswith((" ", "\t")) for line in body):
            position = end
            continue
        # Two blank lines end a preceding napoleon section (one would not).
        field = ["", "", f"{_PROSE_FIELDS[title]} {body[0]}"]
        field += [f"   {line}" if line.strip() else "" for line in body[1:]]
        lines[position:end] = field + [""]
        position += len(field) + 1


def setup(app: Sphinx) -> dict[str, Any]:
    app.setup_extension("sphinx.ext.autodoc")
    app.setup_extension("sphinx.ext.autosummary")
    app.add_directive("scvi-package", ScviPackageDirective)
    app.connect("autodoc-process-bases", _show_public_bases)
    # Before napoleon (default priority 500) turns numpy sections into fields.
    app.connect("autodoc-process-docstring", _prose_return_sections, priority=400)
    return {"version": "1", "parallel_read_safe": True}
