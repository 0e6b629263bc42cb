"""Safe YAML loading that remembers where every key and value stands (line:col) for error messages."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

Path_ = tuple[Any, ...]


class StrictLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans (only true/false; 'on', 'off', 'no' stay strings) and dates as strings."""


_DROPPED = {"tag:yaml.org,2002:bool", "tag:yaml.org,2002:timestamp"}


StrictLoader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag not in _DROPPED]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)

_STANDARD_TAGS = {
    "tag:yaml.org,2002:str", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float", "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null", "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq",
}


@dataclass
class Positions:
    """Where each path of the document stands: `values[path]` and, for mapping entries, `keys[path]`."""

    values: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path_, tuple[int, int]] = field(default_factory=dict)

    def value(self, path: Path_) -> tuple[int, int]:
        """The position of the value at path, or of its nearest ancestor."""
        while path not in self.values and path:
            path = path[:-1]
        return self.values.get(path, (1, 1))

    def key(self, path: Path_) -> tuple[int, int]:
        return self.keys.get(path) or self.value(path)


@dataclass
class YamlProblem:
    line: int
    col: int
    message: str


class YamlDocument:
    """A YAML file turned into plain data plus positions, or a list of positioned problems."""

    def __init__(self, text: str) -> None:
        self.positions = Positions()
        self.problems: list[YamlProblem] = []
        self.data: Any = None
        try:
            self._loader = StrictLoader(text)
        except yaml.reader.ReaderError as exc:
            line = text.count("\n", 0, exc.position) + 1
            col = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
            self.problems.append(YamlProblem(line, col, f"character {exc.character!r} is not allowed in YAML text"))
            return
        try:
            node = self._loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
            problem = exc.problem or "invalid YAML"
            context = f" ({exc.context}"if exc.context else ""
            if exc.context and exc.context_mark and exc.context_mark is not mark:
                context += f" started at line {exc.context_mark.line + 1}, column {exc.context_mark.column + 1}"
            context += ")" if exc.context else ""
            self.problems.append(YamlProblem(line, col, f"YAML syntax: {problem}{context}"))
            return
        except yaml.YAMLError as exc:
            self.problems.append(YamlProblem(1, 1, f"YAML: {exc}"))
            return
        finally:
            self._loader.dispose()
        if node is None:
            self.problems.append(YamlProblem(1, 1, "the file is empty"))
            return
        self.data = self._build(node, ())

    @staticmethod
    def _pos(node: Node) -> tuple[int, int]:
        return node.start_mark.line + 1, node.start_mark.column + 1

    def _build(self, node: Node, path: Path_) -> Any:
        self.positions.values[path] = self._pos(node)
        if node.tag not in _STANDARD_TAGS:
            line, col = self._pos(node)
            self.problems.append(YamlProblem(line, col, f"unsupported YAML tag {node.tag.replace('tag:yaml.org,2002:', '!!')!r}: a plan is plain data"))
            return None
        if isinstance(node, MappingNode):
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = self._build(key_node, path + ("<key>",))
                if not isinstance(key, (str, int, float, bool)) or key is None:
                    line, col = self._pos(key_node)
                    self.problems.append(YamlProblem(line, col, "a mapping key must be a plain scalar"))
                    continue
                if key in out:
                    line, col = self._pos(key_node)
                    self.problems.append(YamlProblem(line, col, f"duplicate key {key!r}"))
                    continue
                self.positions.keys[path + (key,)] = self._pos(key_node)
                out[key] = self._build(value_node, path + (key,))
            self.positions.values.pop(path + ("<key>",), None)
            return out
        if isinstance(node, SequenceNode):
            return [self._build(item, path + (index,)) for index, item in enumerate(node.value)]
        assert isinstance(node, ScalarNode)
        try:
            return self._loader.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            line, col = self._pos(node)
            self.problems.append(YamlProblem(line, col, f"YAML value: {getattr(exc, 'problem', exc)}"))
            return None
