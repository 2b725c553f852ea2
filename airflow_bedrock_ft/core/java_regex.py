"""AWS's request patterns, matched the way AWS matches them.

The ``pattern`` traits in botocore's service models are checked server-side by Java's
``java.util.regex`` with default flags, against the whole value (``Matcher.matches``). Python's
``re`` reads most of them the same way, but not all: Python's ``\\s``, ``\\d`` and ``\\w`` are
Unicode-aware where Java's are ASCII, ``.`` stops only at ``\\n`` where Java's also stops at
``\\r``, U+0085, U+2028 and U+2029, ``$`` and ``\\Z`` differ, and ``re`` has no ``\\p{L}``.
:func:`translate` rewrites a Java pattern into an equivalent Python one (compiled with
``re.ASCII``, which also gives Java's ASCII-only case folding) and refuses, with
:class:`UnsupportedJavaRegexError`, the constructs it cannot render faithfully (nested
classes, class intersections, inline flags), so a pattern is never silently matched with
Python's meaning.

No dependency: the ``regex`` package has ``\\p{..}`` but still needs the same rewriting of
``.``, ``$`` and the POSIX classes, which are ASCII in Java and Unicode there.
"""

from __future__ import annotations

import re
import sys
import unicodedata
from functools import lru_cache

__all__ = ["UnsupportedJavaRegexError", "compile_java", "java_fullmatch", "translate"]

MAX_CODE_POINT = sys.maxunicode

#: Java's line terminators (no UNIX_LINES flag): what ``.`` does not match.
_LINE_TERMINATORS = "\n\r\u0085\u2028\u2029"
_DOT = "[^\\n\\r\\x85\\u2028\\u2029]"
#: Java's ``$`` and ``\Z`` without MULTILINE: the end, or before one final line terminator
#: (``\r\n`` counting as one, so never between its two characters).
_END = "(?=(?:\\r\\n|(?<!\\r)\\n|[\\r\\x85\\u2028\\u2029])?\\Z)"
_LINEBREAK = "(?:\\r\\n|[\\n\\x0b\\f\\r\\x85\\u2028\\u2029])"  # \R

Ranges = tuple[tuple[int, int], ...]

_HORIZONTAL: Ranges = (
    (0x09, 0x09),
    (0x20, 0x20),
    (0xA0, 0xA0),
    (0x1680, 0x1680),
    (0x180E, 0x180E),
    (0x2000, 0x200A),
    (0x202F, 0x202F),
    (0x205F, 0x205F),
    (0x3000, 0x3000),
)
_VERTICAL: Ranges = ((0x0A, 0x0D), (0x85, 0x85), (0x2028, 0x2029))

_PUNCT = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"


def _merge(ranges: object) -> Ranges:
    out: list[list[int]] = []
    for lo, hi in sorted(ranges):  # type: ignore[call-overload]
        if out and lo <= out[-1][1] + 1:
            out[-1][1] = max(out[-1][1], hi)
        else:
            out.append([lo, hi])
    return tuple((lo, hi) for lo, hi in out)


def _complement(ranges: Ranges) -> Ranges:
    out, start = [], 0
    for lo, hi in ranges:
        if lo > start:
            out.append((start, lo - 1))
        start = hi + 1
    if start <= MAX_CODE_POINT:
        out.append((start, MAX_CODE_POINT))
    return tuple(out)


def _chars(text: str) -> Ranges:
    return _merge((ord(c), ord(c)) for c in text)


#: Java's POSIX classes are US-ASCII only unless UNICODE_CHARACTER_CLASS is set.
_POSIX: dict[str, Ranges] = {
    "Lower": ((0x61, 0x7A),),
    "Upper": ((0x41, 0x5A),),
    "ASCII": ((0x00, 0x7F),),
    "Alpha": ((0x41, 0x5A), (0x61, 0x7A)),
    "Digit": ((0x30, 0x39),),
    "Alnum": ((0x30, 0x39), (0x41, 0x5A), (0x61, 0x7A)),
    "Punct": _chars(_PUNCT),
    "Graph": ((0x21, 0x7E),),
    "Print": ((0x20, 0x7E),),
    "Blank": ((0x09, 0x09), (0x20, 0x20)),
    "Cntrl": ((0x00, 0x1F), (0x7F, 0x7F)),
    "XDigit": ((0x30, 0x39), (0x41, 0x46), (0x61, 0x66)),
    "Space": ((0x09, 0x0D), (0x20, 0x20)),
}

_CATEGORIES = frozenset(
    {
        *("Lu", "Ll", "Lt", "Lm", "Lo", "Mn", "Mc", "Me", "Nd", "Nl", "No", "Pc", "Pd", "Ps", "Pe"),
        *("Pi", "Pf", "Po", "Sm", "Sc", "Sk", "So", "Zs", "Zl", "Zp", "Cc", "Cf", "Cs", "Co", "Cn"),
    }
)


class UnsupportedJavaRegexError(ValueError):
    """A Java pattern uses a construct this translation does not render (or Java rejects)."""

    def __init__(self, pattern: str, position: int, reason: str) -> None:
        self.pattern = pattern
        self.position = position
        super().__init__(f"cannot translate Java pattern {pattern!r} at offset {position}: {reason}")


@lru_cache(maxsize=1)
def _category_table() -> dict[str, Ranges]:
    """Code-point ranges of every Unicode general category (one pass over all code points)."""
    table: dict[str, list[tuple[int, int]]] = {}
    start, current = 0, unicodedata.category(chr(0))
    for cp in range(1, MAX_CODE_POINT + 2):
        cat = unicodedata.category(chr(cp)) if cp <= MAX_CODE_POINT else ""
        if cat != current:
            table.setdefault(current, []).append((start, cp - 1))
            start, current = cp, cat
    return {k: tuple(v) for k, v in table.items()}


def _property(name: str) -> Ranges | None:
    """Ranges of ``\\p{name}``, or None when the property is not supported."""
    if name in _POSIX:
        return _POSIX[name]
    for prefix in ("general_category=", "gc=", "Is"):
        if name.startswith(prefix) and _is_category(name[len(prefix) :]):
            name = name[len(prefix) :]
            break
    if not _is_category(name):
        return None
    table = _category_table()
    if name == "LC":
        return _merge(r for cat in ("Lu", "Ll", "Lt") for r in table.get(cat, ()))
    if len(name) == 1:
        return _merge(r for cat, rs in table.items() if cat.startswith(name) for r in rs)
    return table.get(name, ())


def _is_category(name: str) -> bool:
    return name in _CATEGORIES or name == "LC" or (len(name) == 1 and name in "LMNPSZC")


def _lit(cp: int) -> str:
    """One code point as a Python pattern literal, valid inside and outside a class."""
    ch = chr(cp)
    if ch.isascii() and (ch.isalnum() or ch == "_"):
        return ch
    if 0x20 < cp < 0x7F:
        return "\\" + ch
    if cp < 0x100:
        return f"\\x{cp:02x}"
    if cp < 0x10000:
        return f"\\u{cp:04x}"
    return f"\\U{cp:08x}"


def _ranges_body(ranges: Ranges) -> str:
    return "".join(_lit(lo) if lo == hi else f"{_lit(lo)}-{_lit(hi)}" for lo, hi in ranges)


class _Translator:
    def __init__(self, pattern: str) -> None:
        self.p = pattern
        self.i = 0
        self.out: list[str] = []

    def fail(self, reason: str, at: int | None = None) -> UnsupportedJavaRegexError:
        return UnsupportedJavaRegexError(self.p, self.i if at is None else at, reason)

    def peek(self, k: int = 0) -> str:
        j = self.i + k
        return self.p[j] if j < len(self.p) else ""

    def run(self) -> str:
        p = self.p
        while self.i < len(p):
            c = p[self.i]
            if c == "\\":
                self.out.append(self.escape_outside())
            elif c == "[":
                self.i += 1
                self.out.append(self.char_class())
            elif c == "(":
                self.out.append(self.group_open())
            elif c == ".":
                self.i += 1
                self.out.append(_DOT)
            elif c == "$":
                self.i += 1
                self.out.append(_END)
            elif c in "^|)":
                self.i += 1
                self.out.append(c)
            elif c in "*+?":
                self.i += 1
                self.out.append(c + self.quantifier_suffix())
            elif c == "{":
                self.out.append(self.braces())
            else:
                self.i += 1
                self.out.append(_lit(ord(c)))
        return "".join(self.out)

    def quantifier_suffix(self) -> str:
        # Lazy "?" and possessive "+" (Python >= 3.11 has possessive quantifiers too).
        if self.peek() in ("?", "+"):
            self.i += 1
            return self.p[self.i - 1]
        return ""

    def braces(self) -> str:
        match = re.compile(r"\{([0-9]+)(,([0-9]*))?\}").match(self.p, self.i)
        if match is None:
            raise self.fail("'{' must start a quantifier {n}, {n,} or {n,m} in Java")
        lo, comma, hi = match.group(1), match.group(2), match.group(3)
        if hi and int(hi) < int(lo):
            raise self.fail("quantifier {n,m} with m < n")
        self.i = match.end()
        text = "{" + lo + ("," + hi if comma else "") + "}"
        return text + self.quantifier_suffix()

    def group_open(self) -> str:
        p, i = self.p, self.i
        if p.startswith("(?", i):
            for java, python in (
                ("(?:", "(?:"),
                ("(?=", "(?="),
                ("(?!", "(?!"),
                ("(?<=", "(?<="),
                ("(?<!", "(?<!"),
                ("(?>", "(?>"),
            ):
                if p.startswith(java, i):
                    self.i += len(java)
                    return python
            named = re.compile(r"\(\?<([a-zA-Z][a-zA-Z0-9]*)>").match(p, i)
            if named:
                self.i = named.end()
                return f"(?P<{named.group(1)}>"
            raise self.fail("inline flags and other (?...) groups are not supported")
        self.i += 1
        return "("

    def _hex(self, digits: int) -> int:
        text = self.p[self.i : self.i + digits]
        if len(text) != digits or not re.fullmatch(r"[0-9a-fA-F]+", text):
            raise self.fail(f"expected {digits} hex digits")
        self.i += digits
        return int(text, 16)

    def _char_escape(self, c: str) -> int | None:
        """Code point of a character escape (after the backslash and ``c``), else None."""
        simple = {"t": 0x09, "n": 0x0A, "r": 0x0D, "f": 0x0C, "a": 0x07, "e": 0x1B}
        if c in simple:
            return simple[c]
        if c == "x":
            if self.peek() == "{":
                end = self.p.find("}", self.i)
                if end < 0:
                    raise self.fail("unterminated \\x{...}")
                text = self.p[self.i + 1 : end]
                if not re.fullmatch(r"[0-9a-fA-F]{1,6}", text) or int(text, 16) > MAX_CODE_POINT:
                    raise self.fail("bad \\x{...} escape")
                self.i = end + 1
                return int(text, 16)
            return self._hex(2)
        if c == "u":
            return self._hex(4)
        if c == "0":
            match = re.compile(r"[0-3][0-7]{2}|[0-7]{1,2}").match(self.p, self.i)
            if match is None:
                raise self.fail("\\0 must be followed by octal digits")
            self.i = match.end()
            return int(match.group(), 8)
        if c == "c":
            if not self.peek():
                raise self.fail("\\c needs a control letter")
            self.i += 1
            return ord(self.p[self.i - 1]) ^ 64
        if not c.isascii() or not c.isalnum():
            return ord(c)  # an escaped symbol is itself
        return None

    def _property_ranges(self, c: str) -> Ranges:
        if self.peek() == "{":
            end = self.p.find("}", self.i)
            if end < 0:
                raise self.fail("unterminated \\p{...}")
            name = self.p[self.i + 1 : end]
            self.i = end + 1
        else:
            name = self.peek()
            self.i += 1
        ranges = _property(name)
        if ranges is None:
            raise self.fail(f"property \\{c}{{{name}}} is not supported")
        return _complement(ranges) if c == "P" else ranges

    def escape_outside(self) -> str:
        start = self.i
        self.i += 1
        c = self.peek()
        if not c:
            raise self.fail("trailing backslash", start)
        self.i += 1
        if c in "dDsSwWbB":
            return "\\" + c  # ASCII, because the whole pattern is compiled with re.ASCII
        if c == "A":
            return "\\A"
        if c == "z":
            return "\\Z"
        if c == "Z":
            return _END
        if c == "R":
            return _LINEBREAK
        if c in "hH":
            return "[" + ("^" if c == "H" else "") + _ranges_body(_HORIZONTAL) + "]"
        if c in "vV":
            return "[" + ("^" if c == "V" else "") + _ranges_body(_VERTICAL) + "]"
        if c in "pP":
            return "[" + _ranges_body(self._property_ranges(c)) + "]"
        if c == "Q":
            end = self.p.find("\\E", self.i)
            text = self.p[self.i :] if end < 0 else self.p[self.i : end]
            self.i = len(self.p) if end < 0 else end + 2
            return "".join(_lit(ord(ch)) for ch in text)
        if c.isdigit() and c != "0":
            return f"(?:\\{c})"  # one-digit back-reference, isolated from following digits
        if c == "k":
            named = re.compile(r"<([a-zA-Z][a-zA-Z0-9]*)>").match(self.p, self.i)
            if named is None:
                raise self.fail("\\k must name a group: \\k<name>", start)
            self.i = named.end()
            return f"(?P={named.group(1)})"
        cp = self._char_escape(c)
        if cp is None:
            raise self.fail(f"\\{c} is not a Java escape", start)
        return _lit(cp)

    def _class_atom(self) -> tuple[int | None, str]:
        """Next class member: (code point, "") for a single character, (None, body) for a set."""
        c = self.peek()
        start = self.i
        if c == "\\":
            self.i += 1
            e = self.peek()
            if not e:
                raise self.fail("trailing backslash", start)
            self.i += 1
            if e in "dDsSwW":
                return None, "\\" + e
            if e in "hHvV":
                ranges = _HORIZONTAL if e in "hH" else _VERTICAL
                return None, _ranges_body(_complement(ranges) if e.isupper() else ranges)
            if e in "pP":
                return None, _ranges_body(self._property_ranges(e))
            if e in "QbBAzZGRk" or (e.isdigit() and e != "0"):
                raise self.fail(f"\\{e} inside a character class is not supported", start)
            cp = self._char_escape(e)
            if cp is None:
                raise self.fail(f"\\{e} is not a Java escape", start)
            return cp, ""
        if c == "[":
            raise self.fail("nested character classes (Java's class union) are not supported")
        if c == "&" and self.peek(1) == "&":
            raise self.fail("class intersection '&&' is not supported")
        self.i += 1
        return ord(c), ""

    def char_class(self) -> str:
        start = self.i - 1
        negate = self.peek() == "^"
        if negate:
            self.i += 1
        parts: list[str] = []
        first = True
        while True:
            c = self.peek()
            if not c:
                raise self.fail("unterminated character class", start)
            if c == "]" and not first:
                self.i += 1
                break
            first = False
            cp, body = self._class_atom()
            if cp is None:
                parts.append(body)
                continue
            # A range: "a-z"; a "-" before "]" is a literal hyphen.
            if self.peek() == "-" and self.peek(1) not in ("]", ""):
                self.i += 1
                if self.peek() == "[":
                    raise self.fail("nested character classes (Java's class union) are not supported")
                hi, _ = self._class_atom()
                if hi is None:
                    raise self.fail("a range must end in a single character")
                if hi < cp:
                    raise self.fail(f"illegal character range {chr(cp)!r}-{chr(hi)!r}")
                parts.append(_ranges_body(((cp, hi),)))
            else:
                parts.append(_lit(cp))
        body = "".join(parts)
        return "[" + ("^" if negate else "") + body + "]"


@lru_cache(maxsize=1024)
def translate(pattern: str) -> str:
    """The Python ``re`` pattern (for use with ``re.ASCII``) equivalent to Java ``pattern``.

    :raises UnsupportedJavaRegexError: naming the offset and the construct.
    """
    return _Translator(pattern).run()


@lru_cache(maxsize=1024)
def compile_java(pattern: str) -> re.Pattern[str]:
    """``pattern`` (Java syntax) compiled for :meth:`re.Pattern.fullmatch`, Java's ``matches``."""
    try:
        return re.compile(translate(pattern), re.ASCII)
    except re.error as exc:
        raise UnsupportedJavaRegexError(pattern, exc.pos or 0, f"not a valid pattern ({exc.msg})") from exc


def java_fullmatch(pattern: str, value: str) -> bool:
    """True when the whole of ``value`` matches Java ``pattern``, as AWS checks it."""
    return compile_java(pattern).fullmatch(value) is not None
