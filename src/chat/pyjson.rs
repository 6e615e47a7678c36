//! JSON with Python's semantics (`json.loads` / `json.dumps(ensure_ascii=False)`).
//!
//! The v3 template serializes tools, tool calls and tool results with Python's
//! `json.dumps`, so the token ids depend on Python's exact text: `", "` and
//! `": "` separators, `1.0` for floats, `1e+16` exponents, `NaN`, duplicate
//! keys (first position, last value) and integers of any size.

use std::fmt::Write;

/// A JSON value as Python's `json.loads` builds it.
#[derive(Clone, Debug, PartialEq)]
pub enum PyValue {
    Null,
    Bool(bool),
    /// An integer literal, kept as its normalized decimal text (any size).
    Int(String),
    Float(f64),
    Str(String),
    List(Vec<PyValue>),
    /// Keys in first-insertion order; a repeated key keeps its first position
    /// and takes the last value, as a Python dict does.
    Dict(Vec<(String, PyValue)>),
}

/// Why `json.loads` would fail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PyJsonError {
    /// Python raises `json.JSONDecodeError`.
    Decode(String),
    /// Python raises another `ValueError` (an integer over 4300 digits) or a
    /// `RecursionError`.
    Limit(String),
}

/// What `json.loads` returns, with the stand-in for lone surrogates.
///
/// Python keeps a lone surrogate (`"\ud800"`) in its `str`, and fails only
/// when that text is encoded to UTF-8 for the tokenizer; a surrogate in a key
/// nobody reads, or in a value a later duplicate key replaces, costs nothing.
/// A Rust `String` cannot hold one, so each is parsed as `lone_surrogate`: a
/// character chosen per text that occurs nowhere else in it. Whoever turns
/// strings into tokens must refuse text that contains it.
#[derive(Clone, Debug, PartialEq)]
pub struct Loaded {
    pub value: PyValue,
    pub lone_surrogate: Option<char>,
}

/// Python limits `int()` of decimal text to 4300 digits.
const MAX_INT_DIGITS: usize = 4300;
/// The deepest nesting of arrays and objects accepted. Python's `json.loads`
/// stops with a `RecursionError` where the interpreter's recursion limit
/// (1000 frames by default) runs out: a request nested 992 levels deep is
/// the deepest mistral-common's own caller parses (measured with
/// `harness/corpus/oracle.py`). Deeper text is refused before it can exhaust
/// the stack; see `docs/limits.md`.
pub const MAX_DEPTH: usize = 992;

impl PyValue {
    pub fn get(&self, key: &str) -> Option<&PyValue> {
        match self {
            PyValue::Dict(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Python's truthiness.
    pub fn is_truthy(&self) -> bool {
        match self {
            PyValue::Null => false,
            PyValue::Bool(b) => *b,
            PyValue::Int(s) => s != "0",
            PyValue::Float(f) => *f != 0.0,
            PyValue::Str(s) => !s.is_empty(),
            PyValue::List(l) => !l.is_empty(),
            PyValue::Dict(d) => !d.is_empty(),
        }
    }

    /// Python's type name, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            PyValue::Null => "NoneType",
            PyValue::Bool(_) => "bool",
            PyValue::Int(_) => "int",
            PyValue::Float(_) => "float",
            PyValue::Str(_) => "str",
            PyValue::List(_) => "list",
            PyValue::Dict(_) => "dict",
        }
    }

    /// `json.dumps(self, ensure_ascii=False)`.
    pub fn dumps(&self) -> String {
        let mut out = String::new();
        self.dump_into(&mut out);
        out
    }

    fn dump_into(&self, out: &mut String) {
        match self {
            PyValue::Null => out.push_str("null"),
            PyValue::Bool(true) => out.push_str("true"),
            PyValue::Bool(false) => out.push_str("false"),
            PyValue::Int(digits) => out.push_str(digits),
            PyValue::Float(f) => out.push_str(&float_repr(*f)),
            PyValue::Str(s) => dump_str(s, out),
            PyValue::List(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    item.dump_into(out);
                }
                out.push(']');
            }
            PyValue::Dict(entries) => {
                out.push('{');
                for (i, (key, value)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    dump_str(key, out);
                    out.push_str(": ");
                    value.dump_into(out);
                }
                out.push('}');
            }
        }
    }
}

pub fn dump_str(s: &str, out: &mut String) {
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Python's `repr(float)`: the shortest text that round-trips, in fixed
/// notation when the decimal exponent is in [-4, 16), scientific otherwise.
pub fn float_repr(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    let (digits, decpt) = shortest_digits(f.abs());
    let sign = if f < 0.0 { "-" } else { "" };
    let exp = decpt - 1;
    if (-4 < decpt) && (decpt <= 16) {
        let n = digits.len() as i32;
        let body = if decpt <= 0 {
            format!("0.{}{}", "0".repeat((-decpt) as usize), digits)
        } else if decpt >= n {
            format!("{}{}.0", digits, "0".repeat((decpt - n) as usize))
        } else {
            format!(
                "{}.{}",
                &digits[..decpt as usize],
                &digits[decpt as usize..]
            )
        };
        format!("{sign}{body}")
    } else {
        let mantissa = if digits.len() == 1 {
            digits
        } else {
            format!("{}.{}", &digits[..1], &digits[1..])
        };
        let esign = if exp < 0 { '-' } else { '+' };
        format!("{sign}{mantissa}e{esign}{:02}", exp.abs())
    }
}

/// The shortest decimal digits that round-trip to `f` (finite, positive) and
/// the position of the decimal point: `f == 0.digits × 10^decpt`.
///
/// Of the shortest candidates Python takes the one nearest `f` and, on a tie,
/// the one with an even last digit (David Gay's `dtoa` mode 0). Ryu makes the
/// same choice; Rust's own `{:e}` rounds a tie up (`1000000000000000.25`
/// would print `.3`, Python prints `.2`).
fn shortest_digits(f: f64) -> (String, i32) {
    let mut buffer = ryu::Buffer::new();
    let text = buffer.format_finite(f);
    let (mantissa, exp) = match text.split_once('e') {
        Some((m, e)) => (m, e.parse::<i32>().expect("ryu writes an integer exponent")),
        None => (text, 0),
    };
    let point = mantissa.find('.').unwrap_or(mantissa.len()) as i32;
    let all: String = mantissa.chars().filter(|c| *c != '.').collect();
    let leading_zeros = all.len() - all.trim_start_matches('0').len();
    let digits = all.trim_matches('0').to_owned();
    (digits, point - leading_zeros as i32 + exp)
}

/// `json.loads(text)`.
pub fn loads(text: &str) -> Result<Loaded, PyJsonError> {
    // Almost no text has a lone surrogate: parse once without a stand-in, and
    // a second time, with one, only when a surrogate turns up.
    let failure = match parse(text, None) {
        Ok(value) => {
            return Ok(Loaded {
                value,
                lone_surrogate: None,
            });
        }
        Err(failure) => failure,
    };
    match failure {
        ParseFailure::Json(error) => Err(error),
        ParseFailure::NeedsStandIn => {
            let stand_in = unused_character(text).ok_or_else(|| {
                PyJsonError::Limit(
                    "the text holds a lone surrogate and spells every Unicode character, \
                     leaving none to stand in for it"
                        .into(),
                )
            })?;
            match parse(text, Some(stand_in)) {
                Ok(value) => Ok(Loaded {
                    value,
                    lone_surrogate: Some(stand_in),
                }),
                Err(ParseFailure::Json(error)) => Err(error),
                Err(ParseFailure::NeedsStandIn) => {
                    unreachable!("a parser with a stand-in never asks for one")
                }
            }
        }
    }
}

fn parse(text: &str, stand_in: Option<char>) -> Result<PyValue, ParseFailure> {
    Parser {
        bytes: text.as_bytes(),
        text,
        pos: 0,
        depth: 0,
        stand_in,
    }
    .document()
}

/// A character that `text` spells nowhere, literally or as a `\u` escape
/// pair: private-use characters first, from the top of plane 16.
fn unused_character(text: &str) -> Option<char> {
    const SCALARS: usize = 0x11_0000;
    let mut used = vec![false; SCALARS];
    for c in text.chars() {
        used[c as usize] = true;
    }
    // Every `\uXXXX` and pair of them, whether or not it is really an
    // escape: marking too many only skips a candidate.
    let hex = |at: usize| {
        text.get(at..at + 4)
            .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
            .and_then(|h| u32::from_str_radix(h, 16).ok())
    };
    for (at, _) in text.match_indices("\\u") {
        let Some(first) = hex(at + 2) else { continue };
        used[first as usize] = true;
        if (0xD800..0xDC00).contains(&first)
            && text[at + 6..].starts_with("\\u")
            && let Some(second @ 0xDC00..0xE000) = hex(at + 8)
        {
            used[(0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)) as usize] = true;
        }
    }
    let private_use = (0x10_0000..=0x10_FFFD)
        .rev()
        .chain((0xF_0000..=0xF_FFFD).rev());
    private_use
        .chain(0..SCALARS as u32)
        .filter(|&code| !used[code as usize])
        .find_map(char::from_u32)
}

enum ParseFailure {
    Json(PyJsonError),
    /// A lone surrogate met with no stand-in chosen yet.
    NeedsStandIn,
}

impl From<PyJsonError> for ParseFailure {
    fn from(error: PyJsonError) -> Self {
        ParseFailure::Json(error)
    }
}

struct Parser<'a> {
    bytes: &'a [u8],
    text: &'a str,
    pos: usize,
    depth: usize,
    stand_in: Option<char>,
}

impl Parser<'_> {
    fn document(&mut self) -> Result<PyValue, ParseFailure> {
        self.skip_ws();
        let value = self.value()?;
        self.skip_ws();
        if self.pos != self.bytes.len() {
            return Err(self.error("Extra data"));
        }
        Ok(value)
    }

    fn error(&self, what: &str) -> ParseFailure {
        ParseFailure::Json(PyJsonError::Decode(format!(
            "{what} at char {}",
            self.text[..self.pos.min(self.text.len())].chars().count()
        )))
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(self.pos) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, literal: &str) -> bool {
        if self.bytes[self.pos..].starts_with(literal.as_bytes()) {
            self.pos += literal.len();
            true
        } else {
            false
        }
    }

    fn value(&mut self) -> Result<PyValue, ParseFailure> {
        match self.bytes.get(self.pos) {
            None => Err(self.error("Expecting value")),
            Some(b'"') => Ok(PyValue::Str(self.string()?)),
            Some(b'{') => self.nested(Self::dict),
            Some(b'[') => self.nested(Self::list),
            Some(b'n') if self.eat("null") => Ok(PyValue::Null),
            Some(b't') if self.eat("true") => Ok(PyValue::Bool(true)),
            Some(b'f') if self.eat("false") => Ok(PyValue::Bool(false)),
            Some(b'N') if self.eat("NaN") => Ok(PyValue::Float(f64::NAN)),
            Some(b'I') if self.eat("Infinity") => Ok(PyValue::Float(f64::INFINITY)),
            Some(b'-') if self.bytes[self.pos..].starts_with(b"-Infinity") => {
                self.pos += "-Infinity".len();
                Ok(PyValue::Float(f64::NEG_INFINITY))
            }
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.error("Expecting value")),
        }
    }

    fn nested(
        &mut self,
        parse: fn(&mut Self) -> Result<PyValue, ParseFailure>,
    ) -> Result<PyValue, ParseFailure> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(
                PyJsonError::Limit(format!("JSON nested deeper than {MAX_DEPTH} levels")).into(),
            );
        }
        let value = parse(self);
        self.depth -= 1;
        value
    }

    fn number(&mut self) -> Result<PyValue, ParseFailure> {
        let start = self.pos;
        if self.bytes[self.pos] == b'-' {
            self.pos += 1;
        }
        let int_start = self.pos;
        match self.bytes.get(self.pos) {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                while let Some(b'0'..=b'9') = self.bytes.get(self.pos) {
                    self.pos += 1;
                }
            }
            _ => {
                self.pos = start;
                return Err(self.error("Expecting value"));
            }
        }
        let int_end = self.pos;
        let mut is_float = false;
        // A fraction or exponent only counts when digits follow, as in
        // Python's NUMBER_RE; otherwise the number ends before it.
        if self.bytes.get(self.pos) == Some(&b'.')
            && matches!(self.bytes.get(self.pos + 1), Some(b'0'..=b'9'))
        {
            self.pos += 1;
            while let Some(b'0'..=b'9') = self.bytes.get(self.pos) {
                self.pos += 1;
            }
            is_float = true;
        }
        if let Some(b'e' | b'E') = self.bytes.get(self.pos) {
            let mut p = self.pos + 1;
            if let Some(b'+' | b'-') = self.bytes.get(p) {
                p += 1;
            }
            if matches!(self.bytes.get(p), Some(b'0'..=b'9')) {
                while let Some(b'0'..=b'9') = self.bytes.get(p) {
                    p += 1;
                }
                self.pos = p;
                is_float = true;
            }
        }
        let literal = &self.text[start..self.pos];
        if is_float {
            let value: f64 = literal.parse().map_err(|_| self.error("Invalid number"))?;
            Ok(PyValue::Float(value))
        } else {
            let digits = &self.text[int_start..int_end];
            if digits.len() > MAX_INT_DIGITS {
                return Err(PyJsonError::Limit(format!(
                    "Exceeds the limit ({MAX_INT_DIGITS} digits) for integer string conversion"
                ))
                .into());
            }
            let negative = start != int_start && digits != "0";
            Ok(PyValue::Int(if negative {
                format!("-{digits}")
            } else {
                digits.to_owned()
            }))
        }
    }

    fn hex4(&mut self) -> Result<u32, ParseFailure> {
        let hex = self
            .text
            .get(self.pos..self.pos + 4)
            .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| self.error("Invalid \\uXXXX escape"))?;
        self.pos += 4;
        Ok(u32::from_str_radix(hex, 16).expect("checked hex digits"))
    }

    fn string(&mut self) -> Result<String, ParseFailure> {
        self.pos += 1; // opening quote
        let mut out = String::new();
        loop {
            let run_start = self.pos;
            while let Some(&b) = self.bytes.get(self.pos) {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            out.push_str(&self.text[run_start..self.pos]);
            match self.bytes.get(self.pos) {
                None => return Err(self.error("Unterminated string starting")),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let escape = *self
                        .bytes
                        .get(self.pos)
                        .ok_or_else(|| self.error("Unterminated string starting"))?;
                    self.pos += 1;
                    match escape {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{08}'),
                        b'f' => out.push('\u{0c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let first = self.hex4()?;
                            let code = if (0xD800..0xDC00).contains(&first)
                                && self.bytes[self.pos..].starts_with(b"\\u")
                            {
                                let save = self.pos;
                                self.pos += 2;
                                let second = self.hex4()?;
                                if (0xDC00..0xE000).contains(&second) {
                                    0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
                                } else {
                                    self.pos = save;
                                    first
                                }
                            } else {
                                first
                            };
                            match (char::from_u32(code), self.stand_in) {
                                (Some(c), _) => out.push(c),
                                (None, Some(stand_in)) => out.push(stand_in),
                                (None, None) => return Err(ParseFailure::NeedsStandIn),
                            }
                        }
                        _ => {
                            self.pos -= 1;
                            return Err(self.error("Invalid \\escape"));
                        }
                    }
                }
                Some(_) => return Err(self.error("Invalid control character")),
            }
        }
    }

    fn list(&mut self) -> Result<PyValue, ParseFailure> {
        self.pos += 1;
        let mut items = Vec::new();
        self.skip_ws();
        if self.bytes.get(self.pos) == Some(&b']') {
            self.pos += 1;
            return Ok(PyValue::List(items));
        }
        loop {
            self.skip_ws();
            items.push(self.value()?);
            self.skip_ws();
            match self.bytes.get(self.pos) {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(PyValue::List(items));
                }
                _ => return Err(self.error("Expecting ',' delimiter")),
            }
        }
    }

    fn dict(&mut self) -> Result<PyValue, ParseFailure> {
        self.pos += 1;
        let mut entries: Vec<(String, PyValue)> = Vec::new();
        let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
        self.skip_ws();
        if self.bytes.get(self.pos) == Some(&b'}') {
            self.pos += 1;
            return Ok(PyValue::Dict(entries));
        }
        loop {
            self.skip_ws();
            if self.bytes.get(self.pos) != Some(&b'"') {
                return Err(self.error("Expecting property name enclosed in double quotes"));
            }
            let key = self.string()?;
            self.skip_ws();
            if self.bytes.get(self.pos) != Some(&b':') {
                return Err(self.error("Expecting ':' delimiter"));
            }
            self.pos += 1;
            self.skip_ws();
            let value = self.value()?;
            match index.get(&key) {
                Some(&i) => entries[i].1 = value,
                None => {
                    index.insert(key.clone(), entries.len());
                    entries.push((key, value));
                }
            }
            self.skip_ws();
            match self.bytes.get(self.pos) {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(PyValue::Dict(entries));
                }
                _ => return Err(self.error("Expecting ',' delimiter")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_like_python_repr() {
        let cases = [
            (1.0, "1.0"),
            (100.0, "100.0"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (123.456, "123.456"),
            (-2.5, "-2.5"),
            (-0.0, "-0.0"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
            (0.1, "0.1"),
            (1234567890123456.7, "1234567890123456.8"),
        ];
        for (value, text) in cases {
            assert_eq!(float_repr(value), text, "{value}");
        }
        // Two shortest candidates equally near: Python keeps the even digit.
        for (exact, text) in [
            ("1000000000000000.25", "1000000000000000.2"),
            ("123456789012345.625", "123456789012345.62"),
        ] {
            assert_eq!(float_repr(exact.parse().unwrap()), text, "{exact}");
        }
    }

    #[test]
    fn round_trips_like_python() {
        let cases = [
            (
                r#"{"a":1,"b":[true,null,1.50,-0,2E3]}"#,
                r#"{"a": 1, "b": [true, null, 1.5, 0, 2000.0]}"#,
            ),
            (r#"{"a":1,"a":2,"b":3}"#, r#"{"a": 2, "b": 3}"#),
            (
                r#" [NaN, Infinity, -Infinity] "#,
                "[NaN, Infinity, -Infinity]",
            ),
            (r#""\u00e9\ud83d\ude00\n\u0001\/""#, "\"é😀\\n\\u0001/\""),
            (
                "123456789012345678901234567890",
                "123456789012345678901234567890",
            ),
            ("1e400", "Infinity"),
        ];
        for (input, output) in cases {
            assert_eq!(loads(input).unwrap().value.dumps(), output, "{input}");
        }
    }

    #[test]
    fn rejects_what_python_rejects() {
        for bad in [
            "",
            "[1,]",
            "{\"a\" 1}",
            "01",
            "1.",
            "\"\t\"",
            "[1] x",
            "'a'",
            "nul",
            "-",
        ] {
            assert!(matches!(loads(bad), Err(PyJsonError::Decode(_))), "{bad:?}");
        }
        assert!(matches!(
            loads(&"1".repeat(4301)),
            Err(PyJsonError::Limit(_))
        ));
        assert!(matches!(
            loads(&"[".repeat(100_000)),
            Err(PyJsonError::Limit(_))
        ));
    }

    #[test]
    fn lone_surrogates_get_a_stand_in_the_text_does_not_use() {
        let plain = loads(r#"["\ud83d\ude00"]"#).unwrap();
        assert_eq!(plain.lone_surrogate, None);
        let loaded = loads(r#"{"a": "x\ud800y", "b": "\udc00"}"#).unwrap();
        let stand_in = loaded.lone_surrogate.expect("a stand-in");
        assert_eq!(
            loaded.value.dumps(),
            format!(r#"{{"a": "x{stand_in}y", "b": "{stand_in}"}}"#)
        );
        // The top candidate, spelled literally and as an escape pair, is skipped.
        let top = '\u{10FFFD}';
        let next = '\u{10FFFC}';
        let literal = format!(r#"["{top}", "\ud800"]"#);
        assert_eq!(loads(&literal).unwrap().lone_surrogate, Some(next));
        let escaped = r#"["\udbff\udffd", "\udbff\udffc", "\ud800"]"#;
        assert_eq!(loads(escaped).unwrap().lone_surrogate, Some('\u{10FFFB}'));
        // A high surrogate before an escape that is not a low one stays alone.
        let split = loads(r#""\ud800\u0041""#).unwrap();
        let stand_in = split.lone_surrogate.unwrap();
        assert_eq!(split.value, PyValue::Str(format!("{stand_in}A")));
    }
}
