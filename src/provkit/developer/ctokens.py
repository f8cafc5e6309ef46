"""A tokenizer for the C subset of generated credentials files.

``mbed_cloud_dev_credentials.c`` and ``update_default_resources.c`` are generated C:
comments, preprocessor lines, declarations with string, integer and brace initialisers.
This module turns such a text into tokens, dropping comments and whole preprocessor lines
(``#include``, ``#ifdef`` … — their conditions are not evaluated, see
:mod:`provkit.developer.cparse`), and decoding string and character literals into bytes
with C's escapes. Unlike splitting the text on ``;``, ``,`` and `` = `` (mbl-cli 2.0.1,
``_parse_cert_header`` in ``mbl/cli/utils/cloudapi.py``), a ``,`` inside a string or a
comment is just text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from typing import Final

from provkit.errors import CredentialsParseError


class Kind(Enum):
    """Token kinds."""

    IDENT = "identifier"
    INT = "integer"
    STRING = "string"
    CHAR = "character"
    PUNCT = "punctuation"
    END = "end of file"


@dataclass(frozen=True, slots=True)
class Token:
    """One token: its kind, source text, decoded value and line.

    ``value`` is the integer of an ``INT`` or ``CHAR``, the bytes of a ``STRING`` (no
    terminating NUL), and the text otherwise.
    """

    kind: Kind
    text: str
    value: int | bytes | str
    line: int


_PUNCT: Final = frozenset("{}[]()=,;*+-")
_IDENT_RE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_INT_RE: Final = re.compile(r"(0[xX][0-9A-Fa-f]+|0[0-7]*|[1-9][0-9]*)([uUlL]*)")
_MAX_DIGITS: Final = 66
"""Longest integer literal accepted (a 64-bit value in octal with its leading 0 fits)."""
_SIMPLE_ESCAPES: Final = {
    "n": 10,
    "t": 9,
    "r": 13,
    "0": 0,
    "a": 7,
    "b": 8,
    "f": 12,
    "v": 11,
    "\\": 92,
    "'": 39,
    '"': 34,
    "?": 63,
}


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.line = 1
        self.at_line_start = True

    def error(self, message: str) -> CredentialsParseError:
        return CredentialsParseError(message, line=self.line)

    def tokens(self) -> list[Token]:
        out: list[Token] = []
        text = self.text
        while self.pos < len(text):
            char = text[self.pos]
            if char == "\n":
                self.line += 1
                self.pos += 1
                self.at_line_start = True
            elif char in " \t\r\f\v":
                self.pos += 1
            elif text.startswith("//", self.pos):
                end = text.find("\n", self.pos)
                self.pos = len(text) if end < 0 else end
            elif text.startswith("/*", self.pos):
                self._block_comment()
            elif char == "#" and self.at_line_start:
                self._directive()
            else:
                self.at_line_start = False
                out.append(self._token(char))
        out.append(Token(Kind.END, "", "", self.line))
        return out

    def _block_comment(self) -> None:
        end = self.text.find("*/", self.pos + 2)
        if end < 0:
            raise self.error("unterminated /* comment")
        self.line += self.text.count("\n", self.pos, end)
        self.pos = end + 2

    def _directive(self) -> None:
        # A preprocessor line runs to the first newline not escaped by a backslash;
        # comments inside it are skipped with it.
        text = self.text
        while self.pos < len(text) and text[self.pos] != "\n":
            if text.startswith("\\\n", self.pos):
                self.line += 1
                self.pos += 2
            elif text.startswith("/*", self.pos):
                self._block_comment()
            else:
                self.pos += 1

    def _token(self, char: str) -> Token:
        line = self.line
        if char == '"':
            return Token(Kind.STRING, "string", self._quoted('"'), line)
        if char == "'":
            data = self._quoted("'")
            if len(data) != 1:
                raise self.error(f"character literal of {len(data)} bytes")
            return Token(Kind.CHAR, repr(chr(data[0])), data[0], line)
        if char in _PUNCT:
            self.pos += 1
            return Token(Kind.PUNCT, char, char, line)
        match = _IDENT_RE.match(self.text, self.pos)
        if match:
            self.pos = match.end()
            return Token(Kind.IDENT, match.group(), match.group(), line)
        match = _INT_RE.match(self.text, self.pos)
        if match:
            if len(match.group(1)) > _MAX_DIGITS:
                raise self.error(f"number of more than {_MAX_DIGITS} digits")
            follow = self.text[match.end() : match.end() + 1]
            if follow and (follow.isalnum() or follow in "_."):
                raise self.error(f"malformed number near {self.text[self.pos : match.end() + 1]!r}")
            self.pos = match.end()
            digits = match.group(1)
            if digits[:2].lower() == "0x":
                base = 16
            elif digits.startswith("0") and len(digits) > 1:
                base = 8  # C: a leading 0 means octal
            else:
                base = 10
            return Token(Kind.INT, match.group(), int(digits, base), line)
        raise self.error(f"unexpected character {char!r}")

    def _quoted(self, quote: str) -> bytes:
        text = self.text
        self.pos += 1
        out = bytearray()
        while True:
            if self.pos >= len(text) or text[self.pos] == "\n":
                raise self.error("unterminated string or character literal")
            char = text[self.pos]
            if char == quote:
                self.pos += 1
                return bytes(out)
            if char == "\\":
                out += self._escape()
            else:
                # surrogateescape gives back the file's own bytes when it was not UTF-8
                out += char.encode("utf-8", "surrogateescape")
                self.pos += 1

    def _escape(self) -> bytes:
        text = self.text
        self.pos += 1
        if self.pos >= len(text):
            raise self.error("backslash at end of file")
        char = text[self.pos]
        if char == "\n":  # line splice inside a literal
            self.line += 1
            self.pos += 1
            return b""
        if char == "x":
            match = re.compile(r"[0-9A-Fa-f]+").match(text, self.pos + 1)
            if not match:
                raise self.error("\\x without hex digits")
            self.pos = match.end()
            return self._byte(int(match.group(), 16))
        if char in "01234567":
            match = re.compile(r"[0-7]{1,3}").match(text, self.pos)
            assert match is not None
            self.pos = match.end()
            return self._byte(int(match.group(), 8))
        if char in _SIMPLE_ESCAPES:
            self.pos += 1
            return bytes([_SIMPLE_ESCAPES[char]])
        raise self.error(f"unknown escape \\{char}")

    def _byte(self, value: int) -> bytes:
        if value > 0xFF:
            raise self.error(f"escape value {value:#x} does not fit in a byte")
        return bytes([value])


def tokenize(text: str) -> list[Token]:
    """Split C source text into tokens, ending with one ``END`` token.

    Raises:
        CredentialsParseError: an unterminated comment or literal, an unknown escape, or a
            character outside the supported subset; the error names the line.
    """
    return _Scanner(text).tokens()


def source_text(data: bytes) -> str:
    """Decode a C file's bytes for :func:`tokenize`, whatever its encoding.

    UTF-8 is read as such (a leading BOM dropped); any other byte is kept as a surrogate
    escape, so a Latin-1 ``©`` in a comment does not stop the parse and a string literal
    yields the file's own bytes.
    """
    return data.removeprefix(b"\xef\xbb\xbf").decode("utf-8", "surrogateescape")
