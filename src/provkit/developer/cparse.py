"""Parse the variable definitions of a generated C credentials file.

The grammar is the part of C that the Pelion generators (portal developer certificate,
manifest-tool 1.x and 2.x) emit, parsed properly rather than by splitting text
(mbl-cli's ``_parse_cert_header`` split it; docs/developer.md, "Parsing the C files")::

    file        := { declaration }
    declaration := specifier+ declarator { "," declarator } ";"
    declarator  := ["*"] NAME [ "[" [expr] "]" ] [ "=" initialiser ]
    initialiser := string+ | "{" [ string | expr { "," expr } [","] ] "}" | expr
    expr        := term { ("+" | "-" | "*") term }
    term        := INT | CHAR | "sizeof" "(" NAME ")" | "(" expr ")" | "-" term

A definition without a value is a *tentative definition* and, as in C (C11 6.9.2),
holds zeros: ``const uint32_t MBED_CLOUD_DEV_MEMORY_TOTAL_KB;`` is 0, an array of a
declared size is that many zero elements, an array without a size one zero element (a
``{ 0 }`` placeholder). A later definition with a value replaces it. ``extern``
declarations and pointers without a value define nothing.

Preprocessor lines are dropped without evaluating their conditions: the generators
guard groups with ``#ifdef MBED_CLOUD_DEV_UPDATE_*`` that a build always defines, so
every definition counts; a name defined twice (an ``#if``/``#else`` pair) is refused
rather than guessed.

Values follow C's object representation on the little-endian targets the client runs on:
a ``uint8_t``/``char`` array is its bytes (a declared size pads with zeros, a string
drops its NUL as ``strlen`` does), a ``uint32_t`` scalar is 4 bytes — what
``fcc_dev_flow.c`` stores for ``mbed.MemoryTotalKB``, where mbl-cli stored ASCII ``"0"``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from provkit.developer.ctokens import Kind, Token, tokenize
from provkit.errors import CredentialsParseError

_QUALIFIERS: Final = frozenset({"const", "static", "extern", "volatile", "signed", "unsigned"})
_SCALAR_SIZES: Final = {
    "char": 1,
    "int8_t": 1,
    "uint8_t": 1,
    "bool": 1,
    "short": 2,
    "int16_t": 2,
    "uint16_t": 2,
    "int": 4,
    "int32_t": 4,
    "uint32_t": 4,
    "long": 8,
    "size_t": 8,
    "int64_t": 8,
    "uint64_t": 8,
}
MAX_OBJECT_BYTES: Final = 1 << 20
"""Largest array accepted: a certificate is a few hundred bytes, a declared size beyond
this is a malformed or hostile file, not one to allocate memory for."""
MAX_NESTING: Final = 100
"""Deepest ``(`` / unary ``-`` nesting accepted (deeper input would exhaust the stack)."""
_VALUE_LIMIT: Final = 1 << 64
"""Expression values beyond 64 bits fit no supported type; refusing them early keeps
repeated ``*`` from building numbers too large to print."""


@dataclass(frozen=True, slots=True)
class CVariable:
    """One defined variable.

    Attributes:
        name: the C identifier.
        ctype: the base type name (``uint8_t``, ``char``, ``uint32_t`` …).
        data: the object's bytes (see the module docstring).
        line: where the definition starts.
        derived: the initialiser used ``sizeof``: a size bookkeeping value, not data.
        placeholder: an array initialised with a single zero (``{ 0 }``, ``{ 0x0 }``),
            which the generators write where there is no real value.
        tentative: defined without a value, so it holds zeros (see the module docstring).
    """

    name: str
    ctype: str
    data: bytes
    line: int
    derived: bool = False
    placeholder: bool = False
    tentative: bool = False


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.index = 0
        self.defined: dict[str, CVariable] = {}
        self.sizes: dict[str, int] = {}  # what ``sizeof`` answers for each defined name
        self.used_sizeof = False
        self.depth = 0

    # ------------------------------------------------------------ helpers

    @property
    def tok(self) -> Token:
        return self.tokens[self.index]

    def advance(self) -> Token:
        token = self.tokens[self.index]
        if token.kind is not Kind.END:
            self.index += 1
        return token

    def error(self, message: str, token: Token | None = None) -> CredentialsParseError:
        return CredentialsParseError(message, line=(token or self.tok).line)

    def is_punct(self, char: str) -> bool:
        return self.tok.kind is Kind.PUNCT and self.tok.value == char

    def expect(self, char: str) -> Token:
        if not self.is_punct(char):
            found = self.tok.text or self.tok.kind.value
            raise self.error(f"expected {char!r}, found {found!r}")
        return self.advance()

    # ------------------------------------------------------------ grammar

    def parse(self) -> list[CVariable]:
        while self.tok.kind is not Kind.END:
            if self.is_punct(";"):  # a stray semicolon is legal at file scope
                self.advance()
                continue
            self.declaration()
        return list(self.defined.values())

    def declaration(self) -> None:
        ctype = None
        external = False
        while self.tok.kind is Kind.IDENT and (self.tok.value in _QUALIFIERS or ctype is None):
            word = str(self.advance().value)
            external = external or word == "extern"
            if word not in _QUALIFIERS:
                ctype = word
        if ctype is None:
            raise self.error(f"expected a declaration, found {self.tok.text or self.tok.kind.value!r}")
        if ctype not in _SCALAR_SIZES:
            raise self.error(f"unsupported type {ctype!r}")
        while True:
            self.declarator(ctype, external)
            if self.is_punct(","):
                self.advance()
                continue
            self.expect(";")
            return

    def declarator(self, ctype: str, external: bool) -> None:
        pointer = False
        if self.is_punct("*"):
            self.advance()
            pointer = True
            while self.tok.kind is Kind.IDENT and self.tok.value == "const":
                self.advance()
        start = self.tok
        if start.kind is not Kind.IDENT:
            raise self.error(f"expected a variable name, found {start.text or start.kind.value!r}")
        self.advance()
        name = str(start.value)
        array = False
        size: int | None = None
        if self.is_punct("["):
            self.advance()
            array = True
            if not self.is_punct("]"):
                size_token = self.tok
                size = self.expr()
                if not 0 <= size * _SCALAR_SIZES[ctype] <= MAX_OBJECT_BYTES:
                    raise self.error(
                        f"{name}: array size {size} is outside 0..{MAX_OBJECT_BYTES} bytes", size_token
                    )
            self.expect("]")
        if not self.is_punct("="):
            if not external and not pointer:
                self.tentative(name, ctype, size if array else None, array, start)
            return  # ``extern`` declares only; a pointer without a value points at nothing
        self.advance()
        self.used_sizeof = False
        if pointer:
            if ctype != "char" or self.tok.kind is not Kind.STRING:
                raise self.error(f"{name}: only a char pointer to a string literal is supported", start)
            data, placeholder, c_size = self.strings(), False, 8
        elif array:
            data, placeholder, c_size = self.array_value(name, ctype, size, start)
        else:
            data, placeholder = self.scalar_value(name, ctype, start), False
            c_size = len(data)
        known = self.defined.get(name)
        if known is not None and not known.tentative:
            raise self.error(f"{name} is defined twice (preprocessor conditions are not evaluated)", start)
        self.defined.pop(name, None)  # a value replaces a tentative definition, in source order
        self.defined[name] = CVariable(name, ctype, data, start.line, self.used_sizeof, placeholder)
        self.sizes[name] = c_size

    def tentative(self, name: str, ctype: str, size: int | None, array: bool, start: Token) -> None:
        """Record a definition without a value: zeros, as C gives it (C11 6.9.2)."""
        if name in self.defined:
            return  # repeating a tentative definition, or following a real one, changes nothing
        width = _SCALAR_SIZES[ctype]
        count = (1 if size is None else size) if array else 1
        zeros = bytes(count * width)
        if array and ctype == "char":
            data, placeholder = b"", False  # a zeroed char array is the empty string (strlen 0)
        else:
            data, placeholder = zeros, array and count == 1  # ``x[];`` is ``x[] = { 0 };``
        self.defined[name] = CVariable(name, ctype, data, start.line, False, placeholder, tentative=True)
        self.sizes[name] = len(zeros)

    def strings(self) -> bytes:
        data = b""
        while self.tok.kind is Kind.STRING:  # adjacent literals concatenate
            value = self.advance().value
            assert isinstance(value, bytes)
            data += value
        return data

    def array_value(self, name: str, ctype: str, size: int | None, start: Token) -> tuple[bytes, bool, int]:
        """Return the array's data, whether it is a ``{ 0 }`` placeholder, and its sizeof."""
        width = _SCALAR_SIZES[ctype]
        placeholder = False
        if self.tok.kind is Kind.STRING or (self.is_punct("{") and self.peek_string_in_braces()):
            if width != 1:
                raise self.error(f"{name}: a string initialises only a char array", start)
            braced = self.is_punct("{")
            if braced:
                self.advance()
            data = self.strings()
            if braced:
                self.expect("}")
            if size is not None and len(data) > size:
                raise self.error(f"{name}: string longer than the declared size {size}", start)
            # The value is the strlen bytes (what KCM stores); sizeof counts the NUL or the
            # declared size.
            return data, False, size if size is not None else len(data) + 1
        self.expect("{")
        values: list[int] = []
        while not self.is_punct("}"):
            if len(values) * width >= MAX_OBJECT_BYTES:
                raise self.error(f"{name}: more than {MAX_OBJECT_BYTES} bytes of initialisers", start)
            values.append(self.expr())
            if not self.is_punct(","):
                break
            self.advance()
        self.expect("}")
        if size is not None and len(values) > size:
            raise self.error(f"{name}: {len(values)} initialisers for {size} elements", start)
        placeholder = len(values) == 1 and values[0] == 0
        data = b"".join(self.pack(v, width, name, start) for v in values)
        if size is not None:
            data += bytes((size - len(values)) * width)  # C zero-fills the rest
        return data, placeholder, len(data)

    def peek_string_in_braces(self) -> bool:
        return self.tokens[self.index + 1].kind is Kind.STRING

    def scalar_value(self, name: str, ctype: str, start: Token) -> bytes:
        if self.is_punct("{"):  # ``int x = { 5 };`` is legal C
            self.advance()
            value = self.expr()
            if self.is_punct(","):
                self.advance()
            self.expect("}")
        else:
            value = self.expr()
        return self.pack(value, _SCALAR_SIZES[ctype], name, start)

    def pack(self, value: int, width: int, name: str, start: Token) -> bytes:
        if not -(1 << (8 * width - 1)) <= value < (1 << (8 * width)):
            raise self.error(f"{name}: value {value} does not fit in {width} byte(s)", start)
        return (value % (1 << (8 * width))).to_bytes(width, "little")

    def expr(self) -> int:
        value = self.term()
        while self.tok.kind is Kind.PUNCT and self.tok.value in ("+", "-", "*"):
            op_token = self.advance()
            right = self.term()
            op = op_token.value
            value = value + right if op == "+" else value - right if op == "-" else value * right
            if abs(value) >= _VALUE_LIMIT:
                raise self.error("a value does not fit in 64 bits", op_token)
        return value

    def term(self) -> int:
        self.depth += 1
        try:
            if self.depth > MAX_NESTING:
                raise self.error(f"expression nested deeper than {MAX_NESTING} levels")
            return self._term()
        finally:
            self.depth -= 1

    def _term(self) -> int:
        token = self.tok
        if token.kind in (Kind.INT, Kind.CHAR):
            self.advance()
            assert isinstance(token.value, int)
            return token.value
        if self.is_punct("-"):
            self.advance()
            return -self.term()
        if self.is_punct("("):
            self.advance()
            value = self.expr()
            self.expect(")")
            return value
        if token.kind is Kind.IDENT and token.value == "sizeof":
            self.advance()
            self.expect("(")
            target = self.advance()
            self.expect(")")
            known = self.sizes.get(str(target.value))
            if target.kind is not Kind.IDENT or known is None:
                raise self.error(f"sizeof of an unknown variable {target.text!r}", target)
            self.used_sizeof = True
            return known
        raise self.error(f"expected a value, found {token.text or token.kind.value!r}")


def parse_c_variables(text: str) -> list[CVariable]:
    """Return every variable defined with a value in ``text``, in source order.

    Raises:
        CredentialsParseError: the text is not in the supported C subset, or a value does
            not fit its type; the error names the line.
    """
    return _Parser(tokenize(text)).parse()
