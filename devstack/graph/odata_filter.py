"""A small, pure OData `$filter` parser and evaluator covering what Graph clients send.

Supported: eq ne gt ge lt le, and/or/not, parentheses, `in (...)`, startswith/endswith/contains, lambda
`any`/`all` over collections (`resourceProvisioningOptions/Any(x:x eq 'Team')`), string/number/bool/null/GUID/
date-time literals and property paths (`from/emailAddress/address`). Strings compare case-insensitively, as the
directory and Exchange do; date-time literals compare against ISO 8601 strings in the records.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

COMPARISONS = frozenset({"eq", "ne", "gt", "ge", "lt", "le"})
FUNCTIONS = frozenset({"startswith", "endswith", "contains"})


class FilterError(ValueError):
    """Invalid or unsupported `$filter` text; the message says what and where."""


@dataclass(frozen=True, slots=True)
class Literal:
    value: Any
    kind: str  # string | number | bool | null | datetime | guid


@dataclass(frozen=True, slots=True)
class Path:
    parts: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Compare:
    op: str
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class In:
    left: Node
    values: tuple[Literal, ...]


@dataclass(frozen=True, slots=True)
class Logical:
    op: str  # and | or
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Not:
    operand: Node


@dataclass(frozen=True, slots=True)
class Call:
    name: str
    args: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Lambda:
    kind: str  # any | all
    collection: Path
    var: str
    body: Node | None


Node = Literal | Path | Compare | In | Logical | Not | Call | Lambda

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^']|'')*')
  | (?P<guid>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}(?![\w-]))
  | (?P<datetime>\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?)?(?![\w-]))
  | (?P<number>-?\d+(?:\.\d+)?(?![\w.]))
  | (?P<ident>[A-Za-z_@$][\w.@$]*)
  | (?P<punct>[(),:/])
    """,
    re.VERBOSE,
)


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: str
    text: str
    pos: int


def _tokenize(text: str) -> list[_Tok]:
    tokens: list[_Tok] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise FilterError(f"Syntax error at position {pos} in '{text}'.")
        kind = m.lastgroup or ""
        if kind != "ws":
            tokens.append(_Tok(kind, m.group(), pos))
        pos = m.end()
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = _tokenize(text)
        self.i = 0
        self.vars: list[str] = []

    def peek(self, offset: int = 0) -> _Tok | None:
        j = self.i + offset
        return self.toks[j] if j < len(self.toks) else None

    def error(self, what: str) -> FilterError:
        tok = self.peek()
        pos = tok.pos if tok else len(self.text)
        return FilterError(f"Syntax error: {what} at position {pos} in '{self.text}'.")

    def take(self, text: str | None = None, kind: str | None = None) -> _Tok:
        tok = self.peek()
        if tok is None or (text is not None and tok.text.lower() != text) or (kind is not None and tok.kind != kind):
            raise self.error(f"expected {text or kind}")
        self.i += 1
        return tok

    def at_word(self, *words: str) -> bool:
        tok = self.peek()
        return tok is not None and tok.kind == "ident" and tok.text.lower() in words

    def parse(self) -> Node:
        if not self.toks:
            raise FilterError("The $filter expression is empty.")
        node = self.expr()
        if self.peek() is not None:
            raise self.error("unexpected token")
        return node

    def expr(self) -> Node:
        node = self.and_expr()
        while self.at_word("or"):
            self.i += 1
            node = Logical("or", node, self.and_expr())
        return node

    def and_expr(self) -> Node:
        node = self.not_expr()
        while self.at_word("and"):
            self.i += 1
            node = Logical("and", node, self.not_expr())
        return node

    def not_expr(self) -> Node:
        if self.at_word("not"):
            self.i += 1
            return Not(self.not_expr())
        return self.comparison()

    def comparison(self) -> Node:
        left = self.operand()
        tok = self.peek()
        if tok is not None and tok.kind == "ident" and tok.text.lower() in COMPARISONS:
            self.i += 1
            return Compare(tok.text.lower(), left, self.operand())
        if self.at_word("in"):
            self.i += 1
            self.take("(")
            values = [self.literal_only()]
            while self.peek() is not None and self.peek().text == ",":  # type: ignore[union-attr]
                self.i += 1
                values.append(self.literal_only())
            self.take(")")
            return In(left, tuple(values))
        return left

    def literal_only(self) -> Literal:
        node = self.operand()
        if not isinstance(node, Literal):
            raise self.error("expected a literal")
        return node

    def operand(self) -> Node:
        tok = self.peek()
        if tok is None:
            raise self.error("unexpected end of expression")
        if tok.text == "(":
            self.i += 1
            node = self.expr()
            self.take(")")
            return node
        if tok.kind == "string":
            self.i += 1
            return Literal(tok.text[1:-1].replace("''", "'"), "string")
        if tok.kind == "guid":
            self.i += 1
            return Literal(tok.text.lower(), "guid")
        if tok.kind == "datetime":
            self.i += 1
            return Literal(parse_datetime(tok.text), "datetime")
        if tok.kind == "number":
            self.i += 1
            return Literal(float(tok.text) if "." in tok.text else int(tok.text), "number")
        if tok.kind == "ident":
            low = tok.text.lower()
            if low in ("true", "false"):
                self.i += 1
                return Literal(low == "true", "bool")
            if low == "null":
                self.i += 1
                return Literal(None, "null")
            nxt = self.peek(1)
            if nxt is not None and nxt.text == "(":
                return self.call()
            return self.path()
        raise self.error("unexpected token")

    def call(self) -> Node:
        name = self.take(kind="ident").text.lower()
        if name not in FUNCTIONS:
            raise FilterError(f"Unsupported or invalid function '{name}' in '{self.text}'.")
        self.take("(")
        args = [self.operand()]
        while self.peek() is not None and self.peek().text == ",":  # type: ignore[union-attr]
            self.i += 1
            args.append(self.operand())
        self.take(")")
        if len(args) != 2:
            raise FilterError(f"Function '{name}' takes 2 arguments in '{self.text}'.")
        return Call(name, tuple(args))

    def path(self) -> Node:
        parts = [self.take(kind="ident").text]
        while self.peek() is not None and self.peek().text == "/":  # type: ignore[union-attr]
            self.i += 1
            seg = self.take(kind="ident").text
            nxt = self.peek()
            if seg.lower() in ("any", "all") and nxt is not None and nxt.text == "(":
                return self.lambda_(seg.lower(), Path(tuple(parts)))
            parts.append(seg)
        return Path(tuple(parts))

    def lambda_(self, kind: str, collection: Path) -> Node:
        self.take("(")
        if self.peek() is not None and self.peek().text == ")":  # type: ignore[union-attr]
            self.i += 1
            return Lambda(kind, collection, "", None)
        var = self.take(kind="ident").text
        self.take(":")
        self.vars.append(var)
        body = self.expr()
        self.vars.pop()
        self.take(")")
        return Lambda(kind, collection, var, body)


def parse_filter(text: str) -> Node:
    return _Parser(text).parse()


def parse_datetime(text: str) -> dt.datetime:
    """ISO 8601 with up to 7 fractional digits (Outlook), date only, or no offset (taken as UTC)."""
    value = text.strip()
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    m = re.match(r"^(.*T\d{2}:\d{2}:\d{2})\.(\d+)(.*)$", value)
    if m:
        value = f"{m.group(1)}.{m.group(2)[:6].ljust(6, '0')}{m.group(3)}"
    parsed = dt.datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def root_properties(node: Node, bound: frozenset[str] = frozenset()) -> set[str]:
    """Top-level record properties the filter reads (for per-endpoint validation)."""
    if isinstance(node, Path):
        return set() if node.parts[0] in bound else {node.parts[0]}
    if isinstance(node, Literal):
        return set()
    if isinstance(node, Compare | Logical):
        return root_properties(node.left, bound) | root_properties(node.right, bound)
    if isinstance(node, In):
        return root_properties(node.left, bound)
    if isinstance(node, Not):
        return root_properties(node.operand, bound)
    if isinstance(node, Call):
        out: set[str] = set()
        for arg in node.args:
            out |= root_properties(arg, bound)
        return out
    out = root_properties(node.collection, bound)
    if node.body is not None:
        out |= root_properties(node.body, bound | {node.var})
    return out


def property_order(node: Node, bound: frozenset[str] = frozenset()) -> list[str]:
    """Top-level properties in order of first appearance, left to right (Outlook's $orderby/$filter rule)."""
    out: list[str] = []

    def visit(n: Node, bound: frozenset[str]) -> None:
        if isinstance(n, Path):
            if n.parts[0] not in bound and n.parts[0] not in out:
                out.append(n.parts[0])
        elif isinstance(n, Compare | Logical):
            visit(n.left, bound)
            visit(n.right, bound)
        elif isinstance(n, In):
            visit(n.left, bound)
        elif isinstance(n, Not):
            visit(n.operand, bound)
        elif isinstance(n, Call):
            for arg in n.args:
                visit(arg, bound)
        elif isinstance(n, Lambda):
            visit(n.collection, bound)
            if n.body is not None:
                visit(n.body, bound | {n.var})

    visit(node, bound)
    return out


def operators(node: Node) -> set[str]:
    """Operators and functions used, e.g. {'ge', 'and', 'startswith', 'any'} (for per-endpoint validation)."""
    if isinstance(node, Literal | Path):
        return set()
    if isinstance(node, Compare):
        return {node.op} | operators(node.left) | operators(node.right)
    if isinstance(node, Logical):
        return {node.op} | operators(node.left) | operators(node.right)
    if isinstance(node, In):
        return {"in"}
    if isinstance(node, Not):
        return {"not"} | operators(node.operand)
    if isinstance(node, Call):
        return {node.name}
    return {node.kind} | (operators(node.body) if node.body is not None else set())


_MISSING = object()


def _resolve(path: Path, record: Mapping[str, Any], env: Mapping[str, Any]) -> Any:
    parts = path.parts
    if parts[0] in env:
        value: Any = env[parts[0]]
        parts = parts[1:]
    else:
        value = record
    for part in parts:
        if isinstance(value, Mapping):
            value = value.get(part, value.get(_case_key(value, part), None))
        else:
            return None
    return value


def _case_key(mapping: Mapping[str, Any], name: str) -> str:
    low = name.lower()
    return next((k for k in mapping if k.lower() == low), name)


def _value(node: Node, record: Mapping[str, Any], env: Mapping[str, Any]) -> Any:
    if isinstance(node, Literal):
        return node.value
    if isinstance(node, Path):
        return _resolve(node, record, env)
    return _evaluate(node, record, env)


def _coerce_pair(left: Any, right: Any) -> tuple[Any, Any]:
    if isinstance(left, dt.datetime) and isinstance(right, str):
        return left, _try_datetime(right)
    if isinstance(right, dt.datetime) and isinstance(left, str):
        return _try_datetime(left), right
    if isinstance(left, str) and isinstance(right, str):
        return left.casefold(), right.casefold()
    return left, right


def _try_datetime(text: str) -> Any:
    try:
        return parse_datetime(text)
    except ValueError:
        return _MISSING


def _compare(op: str, left: Any, right: Any) -> bool:
    left, right = _coerce_pair(left, right)
    if left is _MISSING or right is _MISSING:
        return False
    if op == "eq":
        return bool(left == right)
    if op == "ne":
        return bool(left != right)
    if left is None or right is None or isinstance(left, bool) != isinstance(right, bool):
        return False
    try:
        if op == "gt":
            return bool(left > right)
        if op == "ge":
            return bool(left >= right)
        if op == "lt":
            return bool(left < right)
        return bool(left <= right)
    except TypeError:
        return False


def _evaluate(node: Node, record: Mapping[str, Any], env: Mapping[str, Any]) -> bool:
    if isinstance(node, Logical):
        if node.op == "and":
            return _evaluate(node.left, record, env) and _evaluate(node.right, record, env)
        return _evaluate(node.left, record, env) or _evaluate(node.right, record, env)
    if isinstance(node, Not):
        return not _evaluate(node.operand, record, env)
    if isinstance(node, Compare):
        return _compare(node.op, _value(node.left, record, env), _value(node.right, record, env))
    if isinstance(node, In):
        left = _value(node.left, record, env)
        return any(_compare("eq", left, lit.value) for lit in node.values)
    if isinstance(node, Call):
        hay, needle = (_value(a, record, env) for a in node.args)
        if not isinstance(hay, str) or not isinstance(needle, str):
            return False
        hay, needle = hay.casefold(), needle.casefold()
        if node.name == "startswith":
            return hay.startswith(needle)
        if node.name == "endswith":
            return hay.endswith(needle)
        return needle in hay
    if isinstance(node, Lambda):
        items = _resolve(node.collection, record, env)
        if not isinstance(items, list):
            return False
        if node.body is None:
            return bool(items) if node.kind == "any" else True
        body = node.body
        results = (_evaluate(body, record, {**env, node.var: item}) for item in items)
        return any(results) if node.kind == "any" else all(results)
    if isinstance(node, Literal):
        return bool(node.value)
    value = _resolve(node, record, env)
    return value is True


def matches(node: Node, record: Mapping[str, Any]) -> bool:
    return _evaluate(node, record, {})
