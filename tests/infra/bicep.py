"""A small reader of Bicep syntax trees (tree-sitter-bicep) for asserting what templates declare.

The Bicep CLI cannot run here, so tests check the parsed declarations instead: resources (symbolic name,
type@apiVersion, condition, body as nested Python values), modules and their params, parameters with decorators,
variables and outputs. Literal values become Python values; anything computed (interpolated strings, calls, member
access, ternaries) stays an `Expr` carrying its source text and node, so a test can still look inside it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import tree_sitter_bicep
from tree_sitter import Language, Node, Parser

Value = Any  # str | int | bool | None | list[Value] | dict[str, Value] | Expr


@cache
def _parser() -> Parser:
    return Parser(Language(tree_sitter_bicep.language()))


@dataclass(frozen=True)
class Expr:
    """A computed Bicep expression, kept as source text plus its syntax node."""

    text: str
    kind: str
    node: Node = field(repr=False, compare=False)

    @property
    def function(self) -> str | None:
        """Name of the called function when this is a call (`guid`, `union`, `subscriptionResourceId`...)."""
        if self.kind != "call_expression":
            return None
        name = self.node.child_by_field_name("function")
        return _text(name) if name is not None else None

    @property
    def args(self) -> list[Value]:
        """Converted arguments of a call expression."""
        if self.kind != "call_expression":
            return []
        arguments = self.node.child_by_field_name("arguments")
        return [] if arguments is None else [to_value(c) for c in arguments.named_children if c.type != "comment"]

    def identifiers(self) -> set[str]:
        """Every identifier referenced anywhere inside the expression."""
        found: set[str] = set()

        def walk(node: Node) -> None:
            if node.type == "identifier":
                found.add(_text(node))
            for child in node.children:
                walk(child)

        walk(self.node)
        return found


@dataclass(frozen=True)
class Param:
    name: str
    type: str
    default: Value
    has_default: bool
    decorators: dict[str, list[Value]]

    @property
    def secure(self) -> bool:
        return "secure" in self.decorators


@dataclass(frozen=True)
class Resource:
    symbol: str
    type: str
    api_version: str
    existing: bool
    condition: Expr | None
    body: dict[str, Value]

    @property
    def properties(self) -> dict[str, Value]:
        props = self.body.get("properties", {})
        return props if isinstance(props, dict) else {}


@dataclass(frozen=True)
class Module:
    symbol: str
    source: str
    condition: Expr | None
    body: dict[str, Value]

    @property
    def params(self) -> dict[str, Value]:
        params = self.body.get("params", {})
        return params if isinstance(params, dict) else {}


@dataclass(frozen=True)
class Output:
    name: str
    type: str
    value: Value
    decorators: dict[str, list[Value]]


@dataclass
class BicepFile:
    path: Path
    root: Node = field(repr=False)
    target_scope: str | None = None
    params: dict[str, Param] = field(default_factory=dict)
    variables: dict[str, Value] = field(default_factory=dict)
    resources: dict[str, Resource] = field(default_factory=dict)
    modules: dict[str, Module] = field(default_factory=dict)
    outputs: dict[str, Output] = field(default_factory=dict)

    def problems(self) -> list[str]:
        """ERROR and MISSING nodes, each with its line and column, so a parse failure points at the culprit."""
        found: list[str] = []

        def walk(node: Node) -> None:
            if node.is_error or node.is_missing:
                kind = "missing" if node.is_missing else "error"
                row, col = node.start_point
                found.append(f"{self.path}:{row + 1}:{col + 1}: {kind} {node.type} {_text(node)[:40]!r}")
            for child in node.children:
                walk(child)

        walk(self.root)
        return found

    def resolve(self, value: Value) -> Value:
        """Follow a bare identifier to the variable it names (one level), e.g. a role GUID kept in a `var`."""
        if isinstance(value, Expr) and value.kind == "identifier" and value.text in self.variables:
            return self.variables[value.text]
        return value

    def of_type(self, resource_type: str) -> list[Resource]:
        return [r for r in self.resources.values() if r.type.lower() == resource_type.lower()]


def _text(node: Node) -> str:
    return (node.text or b"").decode()


def to_value(node: Node) -> Value:
    """Turn a syntax node into a Python value; computed expressions become `Expr`."""
    kind = node.type
    if kind == "object":
        result: dict[str, Value] = {}
        for prop in node.named_children:
            if prop.type != "object_property":
                continue
            named = [c for c in prop.named_children if c.type not in ("comment", "decorators")]
            key_node, value_node = named[0], named[-1]
            key = to_value(key_node) if key_node.type == "string" else _text(key_node)
            result[key if isinstance(key, str) else _text(key_node)] = to_value(value_node)
        return result
    if kind == "array":
        return [to_value(c) for c in node.named_children if c.type != "comment"]
    if kind == "string":
        parts = [c for c in node.named_children]
        if all(c.type in ("string_content", "escape_sequence") for c in parts):
            return "".join(_unescape(c) for c in parts)
        return Expr(_text(node), kind, node)
    if kind == "multiline_string":
        return _text(node)[3:-3]
    if kind == "number":
        return int(_text(node))
    if kind == "boolean":
        return _text(node) == "true"
    if kind == "null":
        return None
    if kind == "parenthesized_expression" and node.named_child_count == 1:
        inner = node.named_children[0]
        assert inner is not None
        return to_value(inner)
    if kind == "unary_expression" and _text(node).startswith("-") and node.named_child_count == 1:
        inner_value = to_value(node.named_children[0])
        if isinstance(inner_value, int):
            return -inner_value
    return Expr(_text(node), kind, node)


def _unescape(node: Node) -> str:
    text = _text(node)
    if node.type != "escape_sequence":
        return text
    return {"\\'": "'", "\\\\": "\\", "\\n": "\n", "\\r": "\r", "\\t": "\t", "\\$": "$"}.get(text, text)


def _decorators(node: Node | None) -> dict[str, list[Value]]:
    result: dict[str, list[Value]] = {}
    if node is None or node.type != "decorators":
        return result
    for decorator in node.named_children:
        call = next((c for c in decorator.named_children if c.type == "call_expression"), None)
        if call is not None:
            expr = to_value(call)
            assert isinstance(expr, Expr)
            result[expr.function or ""] = expr.args
        else:
            ident = next((c for c in decorator.named_children if c.type == "identifier"), None)
            if ident is not None:
                result[_text(ident)] = []
    return result


def _declared_body(node: Node) -> tuple[Expr | None, dict[str, Value]]:
    """Body object of a resource/module declaration, unwrapping `if (...)` and `[for ...]`."""
    value_node = node.named_children[-1]
    condition: Expr | None = None
    if value_node.type == "if_statement":
        cond_node = next(c for c in value_node.named_children if c.type == "parenthesized_expression")
        condition = Expr(_text(cond_node), cond_node.type, cond_node)
        value_node = next(c for c in value_node.named_children if c.type == "object")
    elif value_node.type == "for_statement":
        body = value_node.child_by_field_name("body")
        value_node = body if body is not None else value_node.named_children[-1]
        if value_node.type == "if_statement":
            return _declared_body_from_if(value_node)
    body_value = to_value(value_node)
    return condition, body_value if isinstance(body_value, dict) else {}


def _declared_body_from_if(node: Node) -> tuple[Expr | None, dict[str, Value]]:
    cond_node = next(c for c in node.named_children if c.type == "parenthesized_expression")
    obj = next(c for c in node.named_children if c.type == "object")
    body = to_value(obj)
    return Expr(_text(cond_node), cond_node.type, cond_node), body if isinstance(body, dict) else {}


def parse_source(source: str, path: Path | str = "<memory>") -> BicepFile:
    """Parse Bicep text into declarations (use `problems()` to see whether it parsed cleanly)."""
    tree = _parser().parse(source.encode())
    result = BicepFile(Path(path), tree.root_node)
    pending_decorators: Node | None = None
    for node in tree.root_node.named_children:
        if node.type == "decorators":
            pending_decorators = node
            continue
        decorators = _decorators(pending_decorators)
        pending_decorators = None
        named = node.named_children
        if node.type == "target_scope_assignment":
            scope = to_value(named[-1])
            result.target_scope = scope if isinstance(scope, str) else None
        elif node.type == "parameter_declaration":
            name = _text(named[0])
            type_node = next((c for c in named if c.type == "type"), None)
            has_default = any(c.type == "=" for c in node.children)
            default = to_value(named[-1]) if has_default else None
            result.params[name] = Param(name, _text(type_node) if type_node else "", default, has_default, decorators)
        elif node.type == "variable_declaration":
            result.variables[_text(named[0])] = to_value(named[-1])
        elif node.type == "resource_declaration":
            symbol = _text(named[0])
            type_ref = to_value(named[1])
            assert isinstance(type_ref, str), f"{symbol}: resource type must be a literal"
            rtype, _, api = type_ref.partition("@")
            existing = any(c.type == "existing" for c in node.children)
            condition, body = _declared_body(node)
            result.resources[symbol] = Resource(symbol, rtype, api, existing, condition, body)
        elif node.type == "module_declaration":
            symbol = _text(named[0])
            source_ref = to_value(named[1])
            assert isinstance(source_ref, str), f"{symbol}: module path must be a literal"
            condition, body = _declared_body(node)
            result.modules[symbol] = Module(symbol, source_ref, condition, body)
        elif node.type == "output_declaration":
            name = _text(named[0])
            type_node = next((c for c in named if c.type == "type"), None)
            result.outputs[name] = Output(name, _text(type_node) if type_node else "", to_value(named[-1]), decorators)
    return result


def parse_file(path: Path) -> BicepFile:
    return parse_source(path.read_text(encoding="utf-8"), path)


@dataclass(frozen=True)
class RoleAssignment:
    """One `Microsoft.Authorization/roleAssignments` declaration, with the role GUID and scope resolved."""

    file: Path
    symbol: str
    role_id: str | None
    scope_symbol: str | None
    scope_type: str | None
    principal: Value
    principal_type: Value
    name: Value
    condition: Expr | None


def role_assignments(bicep: BicepFile) -> list[RoleAssignment]:
    """Role assignments in one file, resolving `subscriptionResourceId(..., <var>)` to the role GUID and the
    `scope:` symbol to the resource type it names."""
    found: list[RoleAssignment] = []
    for res in bicep.of_type("Microsoft.Authorization/roleAssignments"):
        props = res.properties
        role_id: str | None = None
        role_def = props.get("roleDefinitionId")
        if isinstance(role_def, Expr) and role_def.function == "subscriptionResourceId":
            args = [bicep.resolve(a) for a in role_def.args]
            if len(args) == 2 and args[0] == "Microsoft.Authorization/roleDefinitions" and isinstance(args[1], str):
                role_id = args[1]
        scope = res.body.get("scope")
        scope_symbol = scope.text if isinstance(scope, Expr) and scope.kind == "identifier" else None
        scope_res = bicep.resources.get(scope_symbol) if scope_symbol else None
        found.append(
            RoleAssignment(
                file=bicep.path,
                symbol=res.symbol,
                role_id=role_id,
                scope_symbol=scope_symbol,
                scope_type=scope_res.type if scope_res else None,
                principal=props.get("principalId"),
                principal_type=props.get("principalType"),
                name=res.body.get("name"),
                condition=res.condition,
            )
        )
    return found


def object_keys(value: Value, bicep: BicepFile | None = None) -> set[str]:
    """Keys of every object literal reachable in `value`: through `union(...)`, ternaries and variables (when
    `bicep` is given), so the keys of a computed settings object can be listed."""
    keys: set[str] = set()
    if isinstance(value, dict):
        return set(value)
    if isinstance(value, Expr):
        if value.kind == "identifier" and bicep is not None and value.text in bicep.variables:
            return object_keys(bicep.variables[value.text], bicep)
        for child in value.node.named_children:
            keys |= object_keys(to_value(child), bicep)
    return keys
