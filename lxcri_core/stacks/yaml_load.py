"""YAML for stack files, loaded safely.

SafeLoader (no Python objects), and as an attacker would try it: YAML aliases
are counted as what they expand to, values and characters of strings both (a
"billion laughs" file, or one long string used by many aliases, is refused
before anything walks it); recursive aliases and nesting too deep for the
parser are refused; duplicate keys are errors (the YAML library keeps the last
one silently). YAML 1.1's surprises are turned off as compose (YAML 1.2) has
them off: ``80:80`` stays a string (not the base-60 number 4880) and
``no``/``yes``/``on``/``off`` stay strings (``restart: no`` means "no").
"""

from __future__ import annotations

from typing import Any

import yaml

from lxcri_core.errors import SpecError

#: a stack file larger than this is refused (real ones are a few KiB)
MAX_FILE = 1 << 20
#: YAML nodes after alias expansion; far above any real stack file
MAX_NODES = 100_000
#: characters of strings after alias expansion (one long string used many times)
MAX_EXPANDED = 8 << 20


def _err(path: str, why: str) -> SpecError:
    return SpecError(f"{path}: {why}" if path else why)


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2's scalars where compose relies on them."""

    def construct_yaml_int(self, node: yaml.ScalarNode) -> Any:
        if ":" in node.value:  # base 60 in YAML 1.1: "80:80" would become 4880
            return node.value
        return super().construct_yaml_int(node)

    def construct_yaml_float(self, node: yaml.ScalarNode) -> Any:
        if ":" in node.value:
            return node.value
        return super().construct_yaml_float(node)

    def construct_yaml_bool(self, node: yaml.ScalarNode) -> Any:
        if node.value.lower() not in ("true", "false"):  # yes/no/on/off are strings in 1.2
            return node.value
        return super().construct_yaml_bool(node)

    # timestamps stay strings: nothing in a stack is a date
    def construct_yaml_timestamp(self, node: yaml.ScalarNode) -> Any:
        return node.value


_Loader.add_constructor("tag:yaml.org,2002:int", _Loader.construct_yaml_int)
_Loader.add_constructor("tag:yaml.org,2002:float", _Loader.construct_yaml_float)
_Loader.add_constructor("tag:yaml.org,2002:bool", _Loader.construct_yaml_bool)
_Loader.add_constructor("tag:yaml.org,2002:timestamp", _Loader.construct_yaml_timestamp)


def _check_nodes(root: yaml.Node, where: str) -> None:
    """Refuse expansion bombs, recursive aliases and duplicate keys, in linear time.

    An alias is the same node object as its anchor: the expanded size of each
    node (its values and the characters of its strings) is computed once (memo by
    identity) and summed wherever it is used.
    """
    sizes: dict[int, tuple[int, int]] = {}
    active: set[int] = set()

    def check(nodes: int, chars: int) -> None:
        if nodes > MAX_NODES:
            raise _err(where, f"more than {MAX_NODES} values after expanding YAML aliases")
        if chars > MAX_EXPANDED:
            raise _err(where, f"more than {MAX_EXPANDED} characters after expanding YAML aliases")

    def size(node: yaml.Node) -> tuple[int, int]:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise _err(where, "a YAML alias refers to itself (a recursive structure)")
        active.add(key)
        nodes, chars = 1, 0
        children: list[yaml.Node] = []
        if isinstance(node, yaml.ScalarNode):
            chars = len(node.value)
        elif isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for k, v in node.value:
                if isinstance(k, yaml.ScalarNode) and k.value != "<<":
                    if k.value in seen:
                        line = k.start_mark.line + 1
                        raise _err(where, f"line {line}: key {k.value!r} is given twice")
                    seen.add(k.value)
                children += [k, v]
        for child in children:
            n, c = size(child)
            nodes, chars = nodes + n, chars + c
            check(nodes, chars)
        active.discard(key)
        sizes[key] = (nodes, chars)
        return nodes, chars

    size(root)


def load_yaml(text: str, where: str) -> Any:
    """The document in ``text`` (``where`` names it in errors), checked as the module says."""
    if len(text) > MAX_FILE:
        raise _err(where, f"larger than {MAX_FILE} bytes")
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_nodes(node, where)
        return loader.construct_document(node)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise _err(where, f"{at}not valid YAML: {problem}") from None
    except RecursionError:
        raise _err(where, "nested too deeply") from None
    finally:
        loader.dispose()
