"""The visibility query language of ``list_workflows``, parsed into a :class:`VisibilityQuery`.

Conditions joined by AND (keywords in any case), optionally followed by
``ORDER BY StartTime DESC`` (the one order listings have)::

    WorkflowType = 'Order' AND CloseStatus = 'FAILED' AND StartTime > '2026-01-01T00:00:00Z'

Fields: ``WorkflowType``, ``WorkflowID``, ``RunID`` (=, quoted); ``CloseStatus`` (=, one of
COMPLETED, FAILED, CANCELED, TERMINATED, CONTINUED_AS_NEW, TIMED_OUT, or Cadence's number of
one); ``ExecutionStatus`` (=, 'Open', 'Running', 'Closed' or a close status, any case);
``CloseTime = missing`` (open runs); ``StartTime`` and ``CloseTime`` compared with quoted ISO
times (=, <, <=, >, >=, BETWEEN a AND b); any other name is a search attribute, compared with =
to a quoted string, a number, true or false. Cadence's default attributes (CustomKeywordField,
CustomStringField, CustomIntField, CustomDoubleField, CustomBoolField, CustomDatetimeField) need
no registration and convert the value to their type. OR, NOT, parentheses, != and fields this
visibility does not keep are refused with a :class:`BadRequestError` naming the part.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..core.visibility import (
    CLOSE_STATUSES,
    CLOSED,
    OPEN,
    SearchValue,
    TimeRange,
    VisibilityQuery,
    iso_micros,
)
from ..error import BadRequestError

__all__ = ["CLOSE_STATUSES", "DEFAULT_SEARCH_ATTRIBUTES", "VisibilityQuery", "parse_query", "quote"]

#: Cadence's predefined search attributes and the type each one converts its value to.
DEFAULT_SEARCH_ATTRIBUTES: dict[str, type] = {
    "CustomKeywordField": str,
    "CustomStringField": str,
    "CustomIntField": int,
    "CustomDoubleField": float,
    "CustomBoolField": bool,
    "CustomDatetimeField": object,  # an ISO time, kept as given
}
_DEFAULTS_BY_LOWER = {name.lower(): name for name in DEFAULT_SEARCH_ATTRIBUTES}

#: Cadence system attributes this visibility does not keep: refused rather than taken for
#: search attributes no run carries.
_UNSUPPORTED_FIELDS = frozenset({
    "executiontime", "historylength", "tasklist", "iscron", "domainid", "numclusters",
    "updatetime", "shardid", "kafkakey", "memo", "attr",
})
_KEYWORDS = frozenset({"and", "or", "not", "between", "order", "by", "asc", "desc", "in",
                       "like", "is", "missing", "true", "false"})
_MAX_QUERY = 4000

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
      | (?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)(?![\w.])
      | (?P<op><=|>=|!=|<>|=|<|>)
      | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
      | (?P<paren>[()])
      | (?P<other>\S)
    )""",
    re.VERBOSE,
)
_ESCAPE = re.compile(r"\\(.)")
_STATUS_WORDS = {status.replace("_", "").lower(): status for status in CLOSE_STATUSES}
_STATUS_WORDS["cancelled"] = "CANCELED"
#: Cadence's numbers of the close statuses (its CloseStatus enum).
_STATUS_NUMBERS = dict(enumerate(CLOSE_STATUSES))


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # string, number, op, word, paren, other, end
    text: str
    position: int

    @property
    def word(self) -> str:
        """The lower-case text of a word (keywords are case-insensitive); '' otherwise."""
        return self.text.lower() if self.kind == "word" else ""

    def describe(self) -> str:
        if self.kind == "end":
            return "the end of the query"
        return f"{self.text!r} at position {self.position}"


def _refuse(message: str) -> BadRequestError:
    return BadRequestError(message, field="query")


def _tokens(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while True:
        match = _TOKEN.match(text, position)
        if match is None:  # only whitespace is left
            break
        kind = match.lastgroup
        assert kind is not None
        start = match.start(kind)
        token = _Token(kind, match.group(kind), start)
        if kind == "other":
            raise _refuse(f"cannot read the query at {token.describe()}")
        tokens.append(token)
        position = match.end()
    tokens.append(_Token("end", "", len(text)))
    return tokens


def quote(value: str) -> str:
    """``value`` as a quoted string of the query language."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _unquote(token: _Token) -> str:
    return _ESCAPE.sub(r"\1", token.text[1:-1])


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.index = 0
        self.workflow_type: str | None = None
        self.workflow_id: str | None = None
        self.run_id: str | None = None
        self.statuses: frozenset[str] | None = None  # None: any
        self.start_time = TimeRange()
        self.close_time = TimeRange()
        self.attributes: list[tuple[str, SearchValue]] = []

    # --- reading tokens ------------------------------------------------------------------

    def peek(self) -> _Token:
        return self.tokens[self.index]

    def take(self) -> _Token:
        token = self.tokens[self.index]
        if token.kind == "paren":
            raise _refuse(f"parentheses are not supported (conditions are joined by AND): "
                          f"{token.describe()}")
        if token.kind != "end":
            self.index += 1
        return token

    def expect_word(self, word: str, after: str) -> None:
        token = self.take()
        if token.word != word:
            raise _refuse(f"expected {word.upper()} after {after}, found {token.describe()}")

    # --- the grammar ---------------------------------------------------------------------

    def parse(self) -> VisibilityQuery:
        if self.peek().kind != "end" and self.peek().word != "order":
            while True:
                self.condition()
                token = self.peek()
                if token.word == "and":
                    self.take()
                    continue
                if token.word == "or":
                    raise _refuse(f"OR is not supported (conditions are joined by AND): "
                                  f"{token.describe()}")
                if token.kind == "end" or token.word == "order":
                    break
                raise _refuse(f"expected AND between conditions, found {token.describe()}")
        if self.peek().word == "order":
            self.order_by()
        token = self.peek()
        if token.kind != "end":
            raise _refuse(f"unexpected {token.describe()}")
        return self.result()

    def order_by(self) -> None:
        self.take()
        self.expect_word("by", "ORDER")
        field = self.take()
        if field.word != "starttime":
            raise _refuse(f"listings are ordered by StartTime only, found {field.describe()}")
        direction = self.peek()
        if direction.word == "desc":
            self.take()
        elif direction.word == "asc":
            raise _refuse(f"listings are newest first: only ORDER BY StartTime DESC, found "
                          f"{direction.describe()}")

    def condition(self) -> None:
        field = self.take()
        if field.word == "not":
            raise _refuse(f"NOT is not supported: {field.describe()}")
        if field.kind != "word" or field.word in _KEYWORDS:
            raise _refuse(f"expected a field name, found {field.describe()}")
        if self.peek().word in {"in", "like", "is"}:
            raise _refuse(f"{self.peek().text.upper()} is not supported (use =, <, <=, >, >= "
                          f"or BETWEEN): {self.peek().describe()}")
        operator = self.take()
        if operator.kind == "op" and operator.text in {"!=", "<>"}:
            raise _refuse(f"{operator.text} is not supported (use =, <, <=, >, >= or "
                          f"BETWEEN): {operator.describe()}")
        if operator.kind != "op" and operator.word != "between":
            raise _refuse(f"expected an operator after {field.text}, found "
                          f"{operator.describe()}")
        op = operator.text if operator.kind == "op" else "between"
        name = field.word
        if name in {"workflowtype", "workflowid", "runid"}:
            self.identity(field, op)
        elif name == "closestatus":
            self.equality_only(field, op)
            self.restrict_status(field, frozenset({self.close_status(self.take())}))
        elif name == "executionstatus":
            self.equality_only(field, op)
            self.restrict_status(field, self.execution_status(self.take()))
        elif name in {"starttime", "closetime"}:
            self.time(field, op)
        elif name in _UNSUPPORTED_FIELDS:
            raise _refuse(f"field {field.text} is not supported by this visibility: "
                          f"{field.describe()}")
        else:
            self.attribute(field, op)

    # --- fields ---------------------------------------------------------------------------

    @staticmethod
    def equality_only(field: _Token, op: str) -> None:
        if op != "=":
            raise _refuse(f"{field.text} is compared with = only, found "
                          f"{op.upper() if op == 'between' else op!r}")

    def identity(self, field: _Token, op: str) -> None:
        self.equality_only(field, op)
        value = self.take()
        if value.kind != "string":
            raise _refuse(f"{field.text} takes a quoted string, found {value.describe()}")
        text = _unquote(value)
        attribute = {"workflowtype": "workflow_type", "workflowid": "workflow_id",
                     "runid": "run_id"}[field.word]
        current = getattr(self, attribute)
        if current is not None and current != text:
            raise _refuse(f"{field.text} is given twice with different values "
                          f"({current!r} and {text!r})")
        setattr(self, attribute, text)

    @staticmethod
    def close_status(token: _Token) -> str:
        if token.kind == "number" and token.text.isdigit() and int(token.text) in _STATUS_NUMBERS:
            return _STATUS_NUMBERS[int(token.text)]
        text = _unquote(token) if token.kind == "string" else token.text
        if token.kind in {"string", "word"}:
            found = _STATUS_WORDS.get(text.replace("_", "").lower())
            if found is not None:
                return found
        raise _refuse(f"CloseStatus is one of {', '.join(CLOSE_STATUSES)}, found "
                      f"{token.describe()}")

    def execution_status(self, token: _Token) -> frozenset[str]:
        text = _unquote(token) if token.kind == "string" else token.text
        if token.kind in {"string", "word"}:
            lowered = text.lower()
            if lowered in {"open", "running"}:
                return frozenset({OPEN})
            if lowered == "closed":
                return frozenset(CLOSE_STATUSES)
            found = _STATUS_WORDS.get(lowered.replace("_", ""))
            if found is not None:
                return frozenset({found})
        raise _refuse(f"ExecutionStatus is 'Open', 'Closed' or a close status, found "
                      f"{token.describe()}")

    def restrict_status(self, field: _Token, allowed: frozenset[str]) -> None:
        combined = allowed if self.statuses is None else self.statuses & allowed
        if not combined:
            raise _refuse(f"{field.text} contradicts another status condition of the query")
        self.statuses = combined

    def time(self, field: _Token, op: str) -> None:
        is_close = field.word == "closetime"
        if op == "=" and self.peek().word == "missing":
            self.take()
            if not is_close:
                raise _refuse("StartTime is never missing; CloseTime = missing lists open runs")
            self.restrict_status(field, frozenset({OPEN}))
            return
        if op == "between":
            low = self.instant(field)
            self.expect_word("and", f"BETWEEN {low[1]!r}")
            high = self.instant(field)
            bounds = TimeRange(_ceil_ms(low[0]), _floor_ms(high[0]))
        else:
            micros, _ = self.instant(field)
            bounds = {
                "=": TimeRange(_ceil_ms(micros), _floor_ms(micros)),
                ">": TimeRange(_floor_ms(micros) + 1, None),
                ">=": TimeRange(_ceil_ms(micros), None),
                "<": TimeRange(None, _ceil_ms(micros) - 1),
                "<=": TimeRange(None, _floor_ms(micros)),
            }[op]
        if is_close:
            self.restrict_status(field, frozenset(CLOSE_STATUSES))
            self.close_time = self.close_time.intersect(bounds)
        else:
            self.start_time = self.start_time.intersect(bounds)

    def instant(self, field: _Token) -> tuple[int, str]:
        token = self.take()
        micros = iso_micros(_unquote(token)) if token.kind == "string" else None
        if micros is None:
            raise _refuse(f"{field.text} is compared with a quoted ISO 8601 time (e.g. "
                          f"'2026-01-31T12:00:00Z'), found {token.describe()}")
        return micros, _unquote(token)

    def attribute(self, field: _Token, op: str) -> None:
        name = _DEFAULTS_BY_LOWER.get(field.word, field.text)
        if op != "=":
            raise _refuse(f"search attribute {name} is compared with = only, found "
                          f"{op.upper() if op == 'between' else op!r}")
        token = self.take()
        value: SearchValue
        if token.kind == "string":
            value = _unquote(token)
        elif token.kind == "number":
            number = float(token.text)
            value = int(token.text) if re.fullmatch(r"-?\d+", token.text) else number
        elif token.word in {"true", "false"}:
            value = token.word == "true"
        else:
            raise _refuse(f"search attribute {name} is compared with a quoted string, a "
                          f"number, true or false, found {token.describe()}")
        self.attributes.append((name, _convert(name, value, token)))

    def result(self) -> VisibilityQuery:
        status: str | None = None
        if self.statuses is not None:
            if self.statuses == {OPEN}:
                status = OPEN
            elif self.statuses == frozenset(CLOSE_STATUSES):
                status = CLOSED
            else:
                (status,) = self.statuses
        return VisibilityQuery(
            workflow_type=self.workflow_type,
            workflow_id=self.workflow_id,
            run_id=self.run_id,
            status=status,
            start_time=self.start_time,
            close_time=self.close_time,
            search_attributes=tuple(self.attributes),
        )


def _convert(name: str, value: SearchValue, token: _Token) -> SearchValue:
    """The value in the type of a default search attribute (others keep the literal's)."""
    kind = DEFAULT_SEARCH_ATTRIBUTES.get(name)
    problem = f"{name} needs {{}}, found {token.describe()}"
    if kind is str:
        return value if isinstance(value, str) else (
            str(value).lower() if isinstance(value, bool) else token.text)
    if kind is int:
        if isinstance(value, bool) or not re.fullmatch(r"-?\d+", str(value).strip()):
            raise _refuse(problem.format("an integer"))
        return int(str(value).strip())
    if kind is float:
        try:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        except ValueError:
            raise _refuse(problem.format("a number")) from None
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in {"true", "false"}:
            return value.lower() == "true"
        raise _refuse(problem.format("true or false"))
    if kind is object and (not isinstance(value, str) or iso_micros(value) is None):
        raise _refuse(problem.format("a quoted ISO 8601 time"))
    return value


def _floor_ms(micros: int) -> int:
    return micros // 1000


def _ceil_ms(micros: int) -> int:
    return -((-micros) // 1000)


def parse_query(text: str | None) -> VisibilityQuery:
    """The query ``text`` asks; BadRequestError (field ``query``) naming what is wrong."""
    if text is None or not text.strip():
        return VisibilityQuery()
    if len(text) > _MAX_QUERY:
        raise _refuse(f"the query is longer than {_MAX_QUERY} characters")
    return _Parser(text).parse()
