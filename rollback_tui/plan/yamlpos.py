"""Safe YAML loading that remembers where every key and value stands (line:col) for error messages."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.events import AliasEvent, CollectionStartEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

Path_ = tuple[Any, ...]

#: Limits of every YAML file the tool reads (plans, answers files, themes, keymaps): each is far above what a
#: real file needs and far below what exhausts memory, time or the interpreter's stack.
MAX_DOCUMENT_CHARS = 1024 * 1024
MAX_DEPTH = 64
MAX_ALIASES = 100
MAX_NODES = 100_000
MAX_INT_DIGITS = 30
MAX_INT = 2**63 - 1


class YamlLimit(yaml.MarkedYAMLError):
    """A file goes past one of the limits above; `problem_mark` is where."""


class StrictLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans (only true/false; 'on', 'off', 'no' stay strings) and dates as strings.

    Composing is bounded: nesting depth is checked before each collection is composed (so a deep file is refused
    at its 65th level, long before the recursive composer could exhaust the stack), a self-referencing alias is
    refused, and aliases and nodes are counted as expanded (a 'billion laughs' file stops at MAX_NODES)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._aliases = 0
        self._nodes = 0
        self._sizes: dict[str, int] = {}
        """anchor -> how many nodes its value expands to."""
        self._open: list[str] = []
        """anchors whose value is being composed (an alias to one of them refers to itself)."""

    def compose_node(self, parent: Node | None, index: Any) -> Node:  # type: ignore[override]
        event = self.peek_event()
        if isinstance(event, AliasEvent):
            if event.anchor in self._open:
                raise YamlLimit(None, None, f"alias *{event.anchor} refers to the value that contains it "
                                "(a self-referencing alias); remove it", event.start_mark)
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise YamlLimit(None, None, f"more than {MAX_ALIASES} aliases; write the values out", event.start_mark)
            self._count(self._sizes.get(event.anchor or "", 1), event)
            return super().compose_node(parent, index)
        self._count(1, event)
        collection = isinstance(event, CollectionStartEvent)
        if collection:
            self._depth += 1
            if self._depth > MAX_DEPTH:
                raise YamlLimit(None, None, f"nested more than {MAX_DEPTH} levels deep; flatten it", event.start_mark)
        anchor, before = event.anchor, self._nodes - 1
        if anchor is not None:
            self._open.append(anchor)
        try:
            node = super().compose_node(parent, index)
        finally:
            if anchor is not None:
                self._open.pop()
            if collection:
                self._depth -= 1
        if anchor is not None:
            self._sizes[anchor] = self._nodes - before
        return node

    def _count(self, nodes: int, event: Any) -> None:
        self._nodes += nodes
        if self._nodes > MAX_NODES:
            raise YamlLimit(None, None, f"more than {MAX_NODES:,} values (aliases expanded); "
                                      "use fewer aliases or split the file", event.start_mark)


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
        if len(text) > MAX_DOCUMENT_CHARS:
            line = text.count("\n", 0, MAX_DOCUMENT_CHARS) + 1
            col = MAX_DOCUMENT_CHARS - (text.rfind("\n", 0, MAX_DOCUMENT_CHARS) + 1) + 1
            self.problems.append(YamlProblem(line, col, f"the file is longer than {MAX_DOCUMENT_CHARS:,} characters "
                                                        f"({len(text):,}); split it or remove what is not needed"))
            return
        try:
            self._loader = StrictLoader(text)
        except yaml.reader.ReaderError as exc:
            line = text.count("\n", 0, exc.position) + 1
            col = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
            self.problems.append(YamlProblem(line, col, f"character {exc.character!r} is not allowed in YAML text"))
            return
        try:
            node = self._loader.get_single_node()
        except YamlLimit as exc:
            mark = exc.problem_mark
            line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
            self.problems.append(YamlProblem(line, col, f"YAML limit, refused: {exc.problem}"))
            return
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
        line, col = self._pos(node)
        where = _dotted(path)
        where = f"{where}: " if where else ""
        if node.tag == "tag:yaml.org,2002:int" and len(node.value) > MAX_INT_DIGITS:
            self.problems.append(YamlProblem(line, col, f"{where}an integer of {len(node.value):,} characters is out "
                                                        f"of range (at most {MAX_INT:,})"))
            return None
        try:
            value = self._loader.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            self.problems.append(YamlProblem(line, col, f"YAML value: {getattr(exc, 'problem', exc)}"))
            return None
        except (ValueError, OverflowError) as exc:  # int() and float() of odd forms (sexagesimal, long digits)
            self.problems.append(YamlProblem(line, col, f"{where}not a usable number: {exc}"))
            return None
        if isinstance(value, float) and not math.isfinite(value):
            self.problems.append(YamlProblem(line, col, f"{where}{node.value!r} is not a finite number "
                                                        "(.inf and .nan are not allowed)"))
            return None
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT:
            self.problems.append(YamlProblem(line, col, f"{where}{node.value} is out of range (at most {MAX_INT:,})"))
            return None
        return value


def _dotted(path: Path_) -> str:
    """`steps[0].retry.delay` for a path; '' for the top level or a mapping key."""
    if "<key>" in path:
        return ""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out
