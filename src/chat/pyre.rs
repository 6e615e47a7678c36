//! Decides whether Python 3.11's `re.compile` accepts a regular expression.
//!
//! mistral-common 1.13.1 validates tool JSON schemas with jsonschema's
//! `Draft7Validator.check_schema`, whose `regex` format check runs
//! `re.compile` on every `pattern` value and every `patternProperties` key.
//! A pattern Python cannot compile gets the request rejected and one it can
//! compile must be accepted, so this module answers exactly that question
//! without embedding Python: it is a port of CPython 3.11.7's
//! `Lib/re/_parser.py` (sre_parse) plus the checks `Lib/re/_compiler.py`
//! adds (look-behind width, repeats under the template flag). It keeps no
//! syntax tree, only what those checks need: the width range of every
//! subpattern, which groups exist and which are still open.
//!
//! sre parses recursively; this port keeps the open constructs on an explicit
//! stack, so no input can overflow the Rust stack, and runs in time linear in
//! the pattern length.
//!
//! Exceptions other than `re.error` (`OverflowError` for huge repeat counts,
//! `ValueError` for `int()` limits and clashing `a`/`u` flags, `RecursionError`)
//! escape jsonschema's format check and still fail the request, so they are
//! reported as errors too. Messages are Python's `str(exception)`, except that
//! `repr` escapes fewer unusual non-ASCII characters here.
//!
//! Look-behind widths follow 3.11.7, which caps widths at 2**64 and raises
//! "looks too much behind" past 2**32 - 1; earlier 3.11 releases (3.11.2 for
//! one) capped at `MAXREPEAT` instead, which only differs for look-behinds
//! about 2**32 characters wide.
//!
//! Two things cannot be reproduced exactly:
//! - `\N{name}` needs the Unicode name database. Names of up to
//!   `EXACT_NAME_MAX_LEN` characters are checked against an embedded list of
//!   every such name and alias; a longer name is accepted whenever it only
//!   uses characters that occur in names and is no longer than the longest
//!   one. Its code point stays unknown, so a class range with a `\N{...}` end
//!   is not checked for reversed bounds.
//! - Deep nesting makes sre raise `RecursionError`, at a depth that depends on
//!   how many Python frames sit below `re.compile`. `MAX_PARSE_DEPTH` is the
//!   deepest nesting Python accepts at all (called from module level, default
//!   recursion limit); anything deeper is rejected, anything up to it
//!   accepted, although under jsonschema Python gives up somewhat earlier.
//!
//! The Unicode tables (identifier characters, decimal digits, short character
//! names) were generated from Python 3.11's own `str.isidentifier`,
//! `unicodedata.decimal` and `unicodedata.lookup` (Unicode 14.0.0).

use std::collections::HashMap;
use std::fmt::Write as _;

/// Why Python's `re.compile` rejects a pattern (a short message like Python's, e.g. "nothing to repeat at position 0").
pub fn check_python_regex(pattern: &str) -> Result<(), String> {
    Parser::new(pattern)?.parse()
}

/// `_sre.MAXREPEAT`: repeat counts must stay below it; as a maximum it means unbounded.
const MAXREPEAT: u64 = 4_294_967_295;
/// `_sre.MAXGROUPS` on 64-bit builds.
const MAXGROUPS: u64 = 1_073_741_823;
/// `MAXWIDTH`: the cap on subpattern widths, standing for unbounded.
const MAXWIDTH: u128 = 1 << 64;
/// `MAXCODE` for sre's 4-byte code words: the widest look-behind.
const MAXCODE: u128 = (1 << 32) - 1;
/// Default `sys.get_int_max_str_digits()`: `int()` refuses longer decimal strings.
const INT_MAX_STR_DIGITS: usize = 4300;
/// Deepest nesting Python 3.11.7 parses, counted in the Python frames sre's
/// recursive parser spends (see [`Construct::parse_frames`]). Measured with
/// `re.compile` called from module level under the default recursion limit
/// of 1000: 495 nested groups (990 frames) and 991 nested conditionals
/// compile, 496 groups and 992 conditionals raise `RecursionError`.
const MAX_PARSE_DEPTH: usize = 991;

const SRE_FLAG_TEMPLATE: u32 = 1;
const SRE_FLAG_IGNORECASE: u32 = 2;
const SRE_FLAG_LOCALE: u32 = 4;
const SRE_FLAG_MULTILINE: u32 = 8;
const SRE_FLAG_DOTALL: u32 = 16;
const SRE_FLAG_UNICODE: u32 = 32;
const SRE_FLAG_VERBOSE: u32 = 64;
const SRE_FLAG_ASCII: u32 = 256;
const TYPE_FLAGS: u32 = SRE_FLAG_ASCII | SRE_FLAG_LOCALE | SRE_FLAG_UNICODE;
/// Flags that may only be set for the whole pattern (`DEBUG` has no inline letter).
const GLOBAL_FLAGS: u32 = SRE_FLAG_TEMPLATE;

/// The inline flag letters sre knows (`FLAGS` in `_parser.py`).
fn flag_value(letter: char) -> Option<u32> {
    match letter {
        'i' => Some(SRE_FLAG_IGNORECASE),
        'L' => Some(SRE_FLAG_LOCALE),
        'm' => Some(SRE_FLAG_MULTILINE),
        's' => Some(SRE_FLAG_DOTALL),
        'x' => Some(SRE_FLAG_VERBOSE),
        'a' => Some(SRE_FLAG_ASCII),
        't' => Some(SRE_FLAG_TEMPLATE),
        'u' => Some(SRE_FLAG_UNICODE),
        _ => None,
    }
}

fn token_flag(token: Token) -> Option<u32> {
    match token {
        Token::Char(c) => flag_value(c),
        Token::Escape(_) => None,
    }
}

/// `char.isalpha()` on a token, which only picks between two error messages.
fn token_is_alphabetic(token: Token) -> bool {
    matches!(token, Token::Char(c) if c.is_alphabetic())
}

/// One unit of sre's tokenizer: a character, or a backslash with the character after it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Token {
    Char(char),
    Escape(char),
}

impl Token {
    fn len(self) -> usize {
        match self {
            Token::Char(_) => 1,
            Token::Escape(_) => 2,
        }
    }

    fn text(self) -> String {
        match self {
            Token::Char(c) => c.to_string(),
            Token::Escape(c) => format!("\\{c}"),
        }
    }
}

/// Port of sre's `Tokenizer`: `next` is the lookahead token, positions count characters.
struct Tokenizer {
    chars: Vec<char>,
    has_newline: bool,
    /// Position just after `next`.
    index: usize,
    next: Option<Token>,
}

impl Tokenizer {
    fn new(pattern: &str) -> Result<Self, String> {
        let chars: Vec<char> = pattern.chars().collect();
        let has_newline = chars.contains(&'\n');
        let mut tokenizer = Tokenizer {
            chars,
            has_newline,
            index: 0,
            next: None,
        };
        tokenizer.advance()?;
        Ok(tokenizer)
    }

    /// Loads the token at `index` into `next`; a lone trailing backslash is an error
    /// as soon as the tokenizer reaches it.
    fn advance(&mut self) -> Result<(), String> {
        let Some(&c) = self.chars.get(self.index) else {
            self.next = None;
            return Ok(());
        };
        if c != '\\' {
            self.next = Some(Token::Char(c));
            self.index += 1;
            return Ok(());
        }
        match self.chars.get(self.index + 1) {
            Some(&escaped) => {
                self.next = Some(Token::Escape(escaped));
                self.index += 2;
                Ok(())
            }
            None => Err(self.error_at("bad escape (end of pattern)", self.chars.len() - 1)),
        }
    }

    fn get(&mut self) -> Result<Option<Token>, String> {
        let this = self.next;
        self.advance()?;
        Ok(this)
    }

    fn match_char(&mut self, c: char) -> Result<bool, String> {
        if self.next == Some(Token::Char(c)) {
            self.advance()?;
            return Ok(true);
        }
        Ok(false)
    }

    /// The next token's character if it is a plain character satisfying `accept`.
    fn next_char_if(&self, accept: fn(char) -> bool) -> Option<char> {
        match self.next {
            Some(Token::Char(c)) if accept(c) => Some(c),
            _ => None,
        }
    }

    /// Consumes up to `limit` plain characters satisfying `accept`.
    fn get_while(&mut self, limit: usize, accept: fn(char) -> bool) -> Result<String, String> {
        let mut result = String::new();
        for _ in 0..limit {
            let Some(c) = self.next_char_if(accept) else {
                break;
            };
            result.push(c);
            self.advance()?;
        }
        Ok(result)
    }

    /// Consumes tokens up to `terminator`, returning their text (escapes keep their backslash).
    fn get_until(&mut self, terminator: char, name: &str) -> Result<String, String> {
        let mut result = String::new();
        let mut result_len = 0;
        loop {
            match self.get()? {
                None if result_len == 0 => return Err(self.error(&format!("missing {name}"), 0)),
                None => {
                    let message = format!("missing {terminator}, unterminated name");
                    return Err(self.error(&message, result_len));
                }
                Some(Token::Char(c)) if c == terminator => {
                    if result_len == 0 {
                        return Err(self.error(&format!("missing {name}"), 1));
                    }
                    return Ok(result);
                }
                Some(token) => {
                    result.push_str(&token.text());
                    result_len += token.len();
                }
            }
        }
    }

    /// Position of `next`, or the pattern length at the end.
    fn tell(&self) -> usize {
        self.index.saturating_sub(self.next.map_or(0, Token::len))
    }

    fn seek(&mut self, index: usize) -> Result<(), String> {
        self.index = index;
        self.advance()
    }

    /// `source.error(msg, offset)`: an error located `offset` characters before `next`.
    fn error(&self, message: &str, offset: usize) -> String {
        self.error_at(message, self.tell().saturating_sub(offset))
    }

    /// `str(re.error(msg, pattern, position))`.
    fn error_at(&self, message: &str, position: usize) -> String {
        let mut text = format!("{message} at position {position}");
        if self.has_newline {
            let before = &self.chars[..position.min(self.chars.len())];
            let line = before.iter().filter(|&&c| c == '\n').count() + 1;
            let column = match before.iter().rposition(|&c| c == '\n') {
                Some(newline) => position - newline,
                None => position + 1,
            };
            let _ = write!(text, " (line {line}, column {column})");
        }
        text
    }
}

/// The (minimum, maximum) number of characters a subpattern matches, as
/// `SubPattern.getwidth` computes it. sre caps both at `MAXWIDTH` at every
/// nesting level; saturating arithmetic capped once at the end gives the same
/// result because every operation involved is monotonic.
#[derive(Clone, Copy)]
struct Width {
    min: u128,
    max: u128,
}

impl Width {
    const ZERO: Width = Width { min: 0, max: 0 };
    const ONE: Width = Width { min: 1, max: 1 };

    fn then(self, next: Width) -> Width {
        Width {
            min: self.min.saturating_add(next.min),
            max: self.max.saturating_add(next.max),
        }
    }

    fn or(self, other: Width) -> Width {
        Width {
            min: self.min.min(other.min),
            max: self.max.max(other.max),
        }
    }

    fn repeated(self, min: u64, max: u64) -> Width {
        // An unbounded repeat of anything non-empty is unbounded.
        let max = if max == MAXREPEAT && self.max != 0 {
            MAXWIDTH
        } else {
            self.max.saturating_mul(u128::from(max))
        };
        Width {
            min: self.min.saturating_mul(u128::from(min)),
            max,
        }
    }

    /// What the compiler demands of a look-behind body, on sre's capped values.
    fn lookbehind_error(self) -> Option<&'static str> {
        let (min, max) = (self.min.min(MAXWIDTH), self.max.min(MAXWIDTH));
        if min > MAXCODE {
            Some("looks too much behind")
        } else if min != max {
            Some("look-behind requires fixed-width pattern")
        } else {
            None
        }
    }
}

/// The only distinctions between items that sre's repeat checks make.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ItemKind {
    /// `^`, `$`, `\A`, `\Z`, `\b`, `\B`: "nothing to repeat".
    Anchor,
    /// An item already quantified: "multiple repeat".
    Repeat,
    Other,
}

#[derive(Clone, Copy)]
struct Item {
    kind: ItemKind,
    width: Width,
    /// Where the item starts, which orders the compiler's errors.
    start: usize,
}

impl Item {
    fn other(width: Width, start: usize) -> Item {
        Item {
            kind: ItemKind::Other,
            width,
            start,
        }
    }
}

/// What an escape denotes, as far as validity depends on it.
#[derive(Clone, Copy)]
enum Code {
    /// A single character; its code point is unknown for `\N{...}`.
    Literal(Option<u32>),
    /// `\d`, `\w`, `\s` and their negations.
    Category,
    Anchor,
    /// `\1`..`\99`, carrying the group's width.
    GroupReference(Width),
}

impl Code {
    fn into_item(self, start: usize) -> Item {
        match self {
            Code::Literal(_) | Code::Category => Item::other(Width::ONE, start),
            Code::Anchor => Item {
                kind: ItemKind::Anchor,
                width: Width::ZERO,
                start,
            },
            Code::GroupReference(width) => Item::other(width, start),
        }
    }
}

/// One `_parse` call: a concatenation of items.
struct Sequence {
    verbose: bool,
    /// sre's `first`: only the pattern's first alternative may hold global flags.
    global_flags_allowed: bool,
    width_before_last: Width,
    /// The item a following quantifier applies to.
    last: Option<Item>,
}

impl Sequence {
    fn new(verbose: bool, global_flags_allowed: bool) -> Self {
        Sequence {
            verbose,
            global_flags_allowed,
            width_before_last: Width::ZERO,
            last: None,
        }
    }

    fn push(&mut self, item: Item) {
        if let Some(previous) = self.last.replace(item) {
            self.width_before_last = self.width_before_last.then(previous.width);
        }
    }

    fn width(&self) -> Width {
        match self.last {
            Some(last) => self.width_before_last.then(last.width),
            None => self.width_before_last,
        }
    }
}

/// A construct whose body is being parsed.
#[derive(Clone, Copy)]
enum Construct {
    /// `(...)`, `(?P<name>...)`, `(?:...)`, `(?flags:...)`, with the number of a capturing group.
    Group(Option<usize>),
    Atomic,
    Lookahead,
    /// `(?<=...)` or `(?<!...)`; `outermost` when no other look-behind encloses it.
    Lookbehind {
        outermost: bool,
    },
    Conditional,
}

impl Construct {
    /// Python frames sre spends on the construct's body: `_parse_sub` and
    /// `_parse`, or just `_parse` for a conditional's branch.
    fn parse_frames(self) -> usize {
        match self {
            Construct::Conditional => 1,
            _ => 2,
        }
    }
}

/// The body of the pattern or of a construct: `|`-separated branches (`_parse_sub`),
/// or a conditional's yes and no branches.
struct Frame {
    is_conditional: bool,
    /// `verbose` as handed to each branch.
    verbose: bool,
    /// Combined width of the branches already finished.
    finished: Option<Width>,
    /// The branch being parsed.
    sequence: Sequence,
}

impl Frame {
    fn new(is_conditional: bool, verbose: bool) -> Self {
        Frame {
            is_conditional,
            verbose,
            finished: None,
            sequence: Sequence::new(verbose, false),
        }
    }

    /// Width of the whole body once its last branch, of width `last`, is done.
    fn width(&self, last: Width) -> Width {
        match (self.is_conditional, self.finished) {
            (true, Some(yes)) => yes.or(last),
            // A conditional without a no branch may match nothing.
            (true, None) => Width {
                min: 0,
                max: last.max,
            },
            (false, Some(earlier)) => earlier.or(last),
            (false, None) => last,
        }
    }
}

/// A construct waiting for its `)`, with the body it interrupted.
struct OpenConstruct {
    construct: Construct,
    position: usize,
    enclosing: Frame,
}

/// A construct just opened by [`Parser::parse_group`].
struct Opening {
    construct: Construct,
    position: usize,
    body: Frame,
}

/// sre's parser `State`, plus what `_compiler.compile` would check afterwards.
struct Parser {
    tokens: Tokenizer,
    /// Flags set by global inline flags such as `(?x)`.
    global_flags: u32,
    group_names: HashMap<String, usize>,
    /// Width of each closed group, `None` while it is open; index 0 stands for the
    /// whole pattern as in sre, so the length is sre's `state.groups`.
    group_widths: Vec<Option<Width>>,
    /// sre's `lookbehindgroups`: the group count when the outermost enclosing look-behind opened.
    lookbehind_groups: Option<usize>,
    /// Numbered conditional references with their positions; they may name later groups.
    conditional_references: Vec<(u64, usize)>,
    /// The error the compiler raises first, with the position of its node.
    compile_error: Option<(usize, String)>,
    /// Python frames the recursive parser would be using.
    depth: usize,
}

impl Parser {
    fn new(pattern: &str) -> Result<Self, String> {
        Ok(Parser {
            tokens: Tokenizer::new(pattern)?,
            global_flags: 0,
            group_names: HashMap::new(),
            group_widths: vec![None],
            lookbehind_groups: None,
            conditional_references: Vec::new(),
            compile_error: None,
            depth: 0,
        })
    }

    fn parse(mut self) -> Result<(), String> {
        let mut open: Vec<OpenConstruct> = Vec::new();
        let mut frame = Frame::new(false, false);
        frame.sequence.global_flags_allowed = true;
        loop {
            let this = match self.tokens.next {
                Some(Token::Char('|' | ')')) | None => None,
                token => token,
            };
            let Some(this) = this else {
                // The current branch ends at `|`, `)` or the end of the pattern.
                let ended = frame.sequence.width();
                let at_bar = self.tokens.next == Some(Token::Char('|'));
                if at_bar && frame.is_conditional && frame.finished.is_some() {
                    let message = "conditional backref with more than two branches";
                    return Err(self.tokens.error(message, 0));
                }
                if self.tokens.match_char('|')? {
                    // The pattern's own alternatives pick up a global `(?x)`.
                    let verbose = if open.is_empty() {
                        self.global_flags & SRE_FLAG_VERBOSE != 0
                    } else {
                        frame.verbose
                    };
                    frame.finished =
                        Some(frame.finished.map_or(ended, |earlier| earlier.or(ended)));
                    frame.sequence = Sequence::new(verbose, false);
                    continue;
                }
                let width = frame.width(ended);
                let Some(closing) = open.pop() else {
                    return self.finish();
                };
                if !self.tokens.match_char(')')? {
                    let message = "missing ), unterminated subpattern";
                    return Err(self.tokens.error_at(message, closing.position));
                }
                self.depth = self.depth.saturating_sub(closing.construct.parse_frames());
                let item = self.close(closing.construct, closing.position, width);
                frame = closing.enclosing;
                frame.sequence.push(item);
                continue;
            };
            self.tokens.advance()?;
            if let Some(opening) = self.parse_item(&mut frame, this)? {
                let enclosing = std::mem::replace(&mut frame, opening.body);
                open.push(OpenConstruct {
                    construct: opening.construct,
                    position: opening.position,
                    enclosing,
                });
            }
        }
    }

    /// What `parse()` checks after the parser returns, then the compiler's verdict.
    fn finish(self) -> Result<(), String> {
        if self.global_flags & SRE_FLAG_ASCII != 0 && self.global_flags & SRE_FLAG_UNICODE != 0 {
            return Err("ASCII and UNICODE flags are incompatible".to_owned());
        }
        if self.tokens.next.is_some() {
            return Err(self.tokens.error("unbalanced parenthesis", 0));
        }
        let groups = self.group_widths.len() as u64;
        let dangling = self
            .conditional_references
            .iter()
            .find(|&&(group, _)| group >= groups);
        if let Some(&(group, position)) = dangling {
            return Err(self
                .tokens
                .error_at(&format!("invalid group reference {group}"), position));
        }
        match self.compile_error {
            Some((_, message)) => Err(message),
            None => Ok(()),
        }
    }

    /// The item a construct becomes in its enclosing sequence.
    fn close(&mut self, construct: Construct, position: usize, width: Width) -> Item {
        match construct {
            Construct::Group(index) => {
                if let Some(slot) = index.and_then(|index| self.group_widths.get_mut(index)) {
                    *slot = Some(width);
                }
                Item::other(width, position)
            }
            Construct::Atomic | Construct::Conditional => Item::other(width, position),
            Construct::Lookahead => Item::other(Width::ZERO, position),
            Construct::Lookbehind { outermost } => {
                if outermost {
                    self.lookbehind_groups = None;
                }
                if let Some(message) = width.lookbehind_error() {
                    self.note_compile_error(position, message.to_owned());
                }
                Item::other(Width::ZERO, position)
            }
        }
    }

    /// Keeps the compiler error it would meet first: the compiler walks nodes in
    /// pattern order, and a node recorded later at the same start encloses the
    /// earlier one, so it comes first.
    fn note_compile_error(&mut self, position: usize, message: String) {
        if self
            .compile_error
            .as_ref()
            .is_none_or(|(earlier, _)| position <= *earlier)
        {
            self.compile_error = Some((position, message));
        }
    }

    /// One step of `_parse`'s loop for the token `this`, already consumed.
    fn parse_item(&mut self, frame: &mut Frame, this: Token) -> Result<Option<Opening>, String> {
        let position = self.tokens.tell().saturating_sub(this.len());
        if frame.sequence.verbose {
            match this {
                Token::Char(' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c') => return Ok(None),
                Token::Char('#') => {
                    while !matches!(self.tokens.get()?, None | Some(Token::Char('\n'))) {}
                    return Ok(None);
                }
                _ => {}
            }
        }
        match this {
            Token::Escape(c) => {
                let item = self.escape(c, false)?.into_item(position);
                frame.sequence.push(item);
            }
            Token::Char('[') => {
                self.parse_class(position)?;
                frame.sequence.push(Item::other(Width::ONE, position));
            }
            Token::Char(c @ ('*' | '+' | '?' | '{')) => {
                self.parse_repeat(&mut frame.sequence, c, position)?;
            }
            Token::Char('(') => return self.parse_group(frame, position),
            Token::Char('^' | '$') => {
                frame.sequence.push(Code::Anchor.into_item(position));
            }
            // `.` and ordinary characters; `|` and `)` end the branch before
            // reaching here and a backslash always starts an escape.
            Token::Char(_) => frame.sequence.push(Item::other(Width::ONE, position)),
        }
        Ok(None)
    }

    /// `_escape` (outside classes) and `_class_escape` (inside), after the backslash and `c`.
    fn escape(&mut self, c: char, in_class: bool) -> Result<Code, String> {
        match c {
            'd' | 'D' | 's' | 'S' | 'w' | 'W' => Ok(Code::Category),
            'A' | 'b' | 'B' | 'Z' if !in_class => Ok(Code::Anchor),
            'b' => Ok(Code::Literal(Some(0x08))),
            'a' => Ok(Code::Literal(Some(0x07))),
            'f' => Ok(Code::Literal(Some(0x0c))),
            'n' => Ok(Code::Literal(Some(0x0a))),
            'r' => Ok(Code::Literal(Some(0x0d))),
            't' => Ok(Code::Literal(Some(0x09))),
            'v' => Ok(Code::Literal(Some(0x0b))),
            'x' => Ok(Code::Literal(Some(self.hex_escape('x', 2)?))),
            'u' => Ok(Code::Literal(Some(self.hex_escape('u', 4)?))),
            'U' => Ok(Code::Literal(Some(self.hex_escape('U', 8)?))),
            'N' => self.named_escape(),
            '0'..='7' if in_class => {
                let digits = format!("{c}{}", self.tokens.get_while(2, is_octal_digit)?);
                let value = octal_value(&digits);
                if value > 0o377 {
                    return Err(self.octal_range_error(&digits));
                }
                Ok(Code::Literal(Some(value)))
            }
            '0' => {
                let digits = format!("0{}", self.tokens.get_while(2, is_octal_digit)?);
                Ok(Code::Literal(Some(octal_value(&digits))))
            }
            '1'..='9' if !in_class => self.group_reference_or_octal(c),
            // ASCII letters without a meaning, and `\8`, `\9` inside a class.
            _ if c.is_ascii_alphanumeric() => {
                Err(self.tokens.error(&format!("bad escape \\{c}"), 2))
            }
            _ => Ok(Code::Literal(Some(u32::from(c)))),
        }
    }

    /// `\xhh`, `\uhhhh`, `\Uhhhhhhhh`: exactly `count` hex digits, and a valid code point.
    fn hex_escape(&mut self, letter: char, count: usize) -> Result<u32, String> {
        let digits = self.tokens.get_while(count, |c| c.is_ascii_hexdigit())?;
        let text = format!("\\{letter}{digits}");
        if digits.len() != count {
            return Err(self
                .tokens
                .error(&format!("incomplete escape {text}"), text.len()));
        }
        let value = digits
            .chars()
            .filter_map(|d| d.to_digit(16))
            .fold(0, |value, d| value * 16 + d);
        if value > 0x10ffff {
            return Err(self.tokens.error(&format!("bad escape {text}"), text.len()));
        }
        Ok(value)
    }

    fn named_escape(&mut self) -> Result<Code, String> {
        if !self.tokens.match_char('{')? {
            return Err(self.tokens.error("missing {", 0));
        }
        let name = self.tokens.get_until('}', "character name")?;
        if !is_character_name(&name) {
            let message = format!("undefined character name {}", python_repr(&name));
            return Err(self.tokens.error(&message, name.chars().count() + 4));
        }
        Ok(Code::Literal(None))
    }

    /// `\1`..`\99` refer to groups, unless three octal digits make an octal escape.
    fn group_reference_or_octal(&mut self, first: char) -> Result<Code, String> {
        let mut digits = first.to_string();
        if let Some(second) = self.tokens.next_char_if(|c| c.is_ascii_digit()) {
            self.tokens.advance()?;
            digits.push(second);
            if is_octal_digit(first)
                && is_octal_digit(second)
                && let Some(third) = self.tokens.next_char_if(is_octal_digit)
            {
                self.tokens.advance()?;
                digits.push(third);
                let value = octal_value(&digits);
                if value > 0o377 {
                    return Err(self.octal_range_error(&digits));
                }
                return Ok(Code::Literal(Some(value)));
            }
        }
        let group = digits
            .chars()
            .filter_map(|d| d.to_digit(10))
            .fold(0, |value, d| value * 10 + d);
        if (group as usize) < self.group_widths.len() {
            let Some(width) = self.closed_group_width(u64::from(group)) else {
                let message = "cannot refer to an open group";
                return Err(self.tokens.error(message, digits.len() + 1));
            };
            self.check_lookbehind_group(u64::from(group))?;
            return Ok(Code::GroupReference(width));
        }
        let message = format!("invalid group reference {group}");
        Err(self.tokens.error(&message, digits.len()))
    }

    fn octal_range_error(&self, digits: &str) -> String {
        let message = format!("octal escape value \\{digits} outside of range 0-0o377");
        self.tokens.error(&message, digits.len() + 1)
    }

    /// A character class after its `[`; its validity never depends on negation.
    fn parse_class(&mut self, position: usize) -> Result<(), String> {
        self.tokens.match_char('^')?;
        let mut has_members = false;
        loop {
            let Some(this) = self.tokens.get()? else {
                return Err(self.tokens.error_at("unterminated character set", position));
            };
            // A `]` right at the start is a member.
            if this == Token::Char(']') && has_members {
                return Ok(());
            }
            let low = self.class_member(this)?;
            has_members = true;
            if !self.tokens.match_char('-')? {
                continue;
            }
            let Some(that) = self.tokens.get()? else {
                return Err(self.tokens.error_at("unterminated character set", position));
            };
            // `x-]` ends the class with `x` and `-` as members.
            if that == Token::Char(']') {
                return Ok(());
            }
            let high = self.class_member(that)?;
            let reversed = match (low, high) {
                (Code::Literal(Some(low)), Code::Literal(Some(high))) => high < low,
                // A `\N{...}` end has an unknown code point (see the module docs).
                (Code::Literal(_), Code::Literal(_)) => false,
                _ => true,
            };
            if reversed {
                let message = format!("bad character range {}-{}", this.text(), that.text());
                return Err(self.tokens.error(&message, this.len() + 1 + that.len()));
            }
        }
    }

    fn class_member(&mut self, token: Token) -> Result<Code, String> {
        match token {
            Token::Escape(c) => self.escape(c, true),
            Token::Char(c) => Ok(Code::Literal(Some(u32::from(c)))),
        }
    }

    /// A quantifier `this` (`*`, `+`, `?` or `{`) applied to the sequence's last item.
    fn parse_repeat(
        &mut self,
        sequence: &mut Sequence,
        this: char,
        position: usize,
    ) -> Result<(), String> {
        let here = self.tokens.tell();
        let (min, max) = match this {
            '?' => (0, 1),
            '*' => (0, MAXREPEAT),
            '+' => (1, MAXREPEAT),
            _ => {
                // `{` only quantifies in the forms {m}, {m,}, {,n}, {m,n} and {,};
                // otherwise it is a literal and parsing resumes right after it.
                if self.tokens.next == Some(Token::Char('}')) {
                    sequence.push(Item::other(Width::ONE, position));
                    return Ok(());
                }
                let low = self.tokens.get_while(usize::MAX, |c| c.is_ascii_digit())?;
                let high = if self.tokens.match_char(',')? {
                    self.tokens.get_while(usize::MAX, |c| c.is_ascii_digit())?
                } else {
                    low.clone()
                };
                if !self.tokens.match_char('}')? {
                    sequence.push(Item::other(Width::ONE, position));
                    self.tokens.seek(here)?;
                    return Ok(());
                }
                let min = if low.is_empty() {
                    0
                } else {
                    repeat_count(&low)?
                };
                let max = if high.is_empty() {
                    MAXREPEAT
                } else {
                    repeat_count(&high)?
                };
                if max < min {
                    let message = "min repeat greater than max repeat";
                    return Err(self.tokens.error(message, self.tokens.tell() - here));
                }
                (min, max)
            }
        };
        let offset = self.tokens.tell() - here + 1;
        let item = match sequence.last {
            Some(item) if item.kind != ItemKind::Anchor => item,
            _ => return Err(self.tokens.error("nothing to repeat", offset)),
        };
        if item.kind == ItemKind::Repeat {
            return Err(self.tokens.error("multiple repeat", offset));
        }
        let operator = if self.tokens.match_char('?')? {
            "MIN_REPEAT"
        } else if self.tokens.match_char('+')? {
            "POSSESSIVE_REPEAT"
        } else {
            "MAX_REPEAT"
        };
        if self.global_flags & SRE_FLAG_TEMPLATE != 0 {
            let message = format!("internal: unsupported template operator {operator}");
            self.note_compile_error(item.start, message);
        }
        sequence.last = Some(Item {
            kind: ItemKind::Repeat,
            width: item.width.repeated(min, max),
            start: item.start,
        });
        Ok(())
    }

    /// Everything starting with `(`, whose position is `position`. Returns the
    /// construct to parse the body of, if any.
    fn parse_group(
        &mut self,
        frame: &mut Frame,
        position: usize,
    ) -> Result<Option<Opening>, String> {
        let verbose = frame.sequence.verbose;
        let mut name = None;
        let mut capture = true;
        let mut add_flags = 0;
        let mut del_flags = 0;
        if self.tokens.match_char('?')? {
            let Some(kind) = self.tokens.get()? else {
                return Err(self.tokens.error("unexpected end of pattern", 0));
            };
            match kind {
                Token::Char('P') => {
                    if self.tokens.match_char('<')? {
                        let group_name = self.tokens.get_until('>', "group name")?;
                        self.check_group_name(&group_name)?;
                        name = Some(group_name);
                    } else if self.tokens.match_char('=')? {
                        let item = self.named_reference(position)?;
                        frame.sequence.push(item);
                        return Ok(None);
                    } else {
                        let Some(next) = self.tokens.get()? else {
                            return Err(self.tokens.error("unexpected end of pattern", 0));
                        };
                        let message = format!("unknown extension ?P{}", next.text());
                        return Err(self.tokens.error(&message, next.len() + 2));
                    }
                }
                Token::Char(':') => capture = false,
                Token::Char('#') => loop {
                    if self.tokens.next.is_none() {
                        let message = "missing ), unterminated comment";
                        return Err(self.tokens.error_at(message, position));
                    }
                    if self.tokens.get()? == Some(Token::Char(')')) {
                        return Ok(None);
                    }
                },
                Token::Char('=' | '!') => {
                    return self.open(Construct::Lookahead, position, verbose);
                }
                Token::Char('<') => {
                    let Some(next) = self.tokens.get()? else {
                        return Err(self.tokens.error("unexpected end of pattern", 0));
                    };
                    if !matches!(next, Token::Char('=' | '!')) {
                        let message = format!("unknown extension ?<{}", next.text());
                        return Err(self.tokens.error(&message, next.len() + 2));
                    }
                    let outermost = self.lookbehind_groups.is_none();
                    if outermost {
                        self.lookbehind_groups = Some(self.group_widths.len());
                    }
                    return self.open(Construct::Lookbehind { outermost }, position, verbose);
                }
                Token::Char('(') => return self.parse_conditional(position, verbose),
                Token::Char('>') => return self.open(Construct::Atomic, position, verbose),
                Token::Char(c) if c == '-' || flag_value(c).is_some() => {
                    match self.parse_flags(c)? {
                        Some((add, del)) => {
                            add_flags = add;
                            del_flags = del;
                            capture = false;
                        }
                        None => {
                            let sequence = &mut frame.sequence;
                            if !sequence.global_flags_allowed || sequence.last.is_some() {
                                let message = "global flags not at the start of the expression";
                                return Err(self.tokens.error_at(message, position));
                            }
                            sequence.verbose = self.global_flags & SRE_FLAG_VERBOSE != 0;
                            return Ok(None);
                        }
                    }
                }
                other => {
                    let message = format!("unknown extension ?{}", other.text());
                    return Err(self.tokens.error(&message, other.len() + 1));
                }
            }
        }
        let index = if capture {
            Some(self.open_group(name.as_deref())?)
        } else {
            None
        };
        let body_verbose =
            (verbose || add_flags & SRE_FLAG_VERBOSE != 0) && del_flags & SRE_FLAG_VERBOSE == 0;
        self.open(Construct::Group(index), position, body_verbose)
    }

    fn open(
        &mut self,
        construct: Construct,
        position: usize,
        verbose: bool,
    ) -> Result<Option<Opening>, String> {
        self.depth += construct.parse_frames();
        if self.depth > MAX_PARSE_DEPTH {
            return Err("maximum recursion depth exceeded".to_owned());
        }
        let body = Frame::new(matches!(construct, Construct::Conditional), verbose);
        Ok(Some(Opening {
            construct,
            position,
            body,
        }))
    }

    /// `(?P=name)`, after the `=`.
    fn named_reference(&mut self, position: usize) -> Result<Item, String> {
        let name = self.tokens.get_until(')', "group name")?;
        self.check_group_name(&name)?;
        let offset = name.chars().count() + 1;
        let Some(&index) = self.group_names.get(&name) else {
            let message = format!("unknown group name {}", python_repr(&name));
            return Err(self.tokens.error(&message, offset));
        };
        let Some(width) = self.closed_group_width(index as u64) else {
            return Err(self.tokens.error("cannot refer to an open group", offset));
        };
        self.check_lookbehind_group(index as u64)?;
        Ok(Item::other(width, position))
    }

    /// `(?(name)yes|no)` or `(?(number)yes|no)`, after the second `(`.
    fn parse_conditional(
        &mut self,
        position: usize,
        verbose: bool,
    ) -> Result<Option<Opening>, String> {
        let name = self.tokens.get_until(')', "group name")?;
        let offset = name.chars().count() + 1;
        let group = if is_identifier(&name) {
            match self.group_names.get(&name) {
                Some(&index) => index as u64,
                None => {
                    let message = format!("unknown group name {}", python_repr(&name));
                    return Err(self.tokens.error(&message, offset));
                }
            }
        } else {
            // sre falls back to `int()`, with all its leniency (signs, spaces,
            // underscores, non-ASCII digits).
            let number =
                python_int(&name).filter(|number| !number.negative || number.digits.is_empty());
            let Some(number) = number else {
                let message = format!("bad character in group name {}", python_repr(&name));
                return Err(self.tokens.error(&message, offset));
            };
            if number.digits.is_empty() {
                return Err(self.tokens.error("bad group number", offset));
            }
            let group = number.value();
            if group >= MAXGROUPS {
                let message = format!("invalid group reference {}", number.digits);
                return Err(self.tokens.error(&message, offset));
            }
            self.conditional_references
                .push((group, self.tokens.tell().saturating_sub(offset)));
            group
        };
        self.check_lookbehind_group(group)?;
        self.open(Construct::Conditional, position, verbose)
    }

    /// `_parse_flags`, from the first flag letter or `-`. Returns the flags a scoped
    /// group `(?flags-flags:...)` turns on and off, or `None` for global flags `(?flags)`.
    fn parse_flags(&mut self, first: char) -> Result<Option<(u32, u32)>, String> {
        let mut add_flags = 0;
        let mut del_flags = 0;
        let mut token = Token::Char(first);
        if let Some(mut flag) = flag_value(first) {
            loop {
                if flag == SRE_FLAG_LOCALE {
                    let message = "bad inline flags: cannot use 'L' flag with a str pattern";
                    return Err(self.tokens.error(message, 0));
                }
                add_flags |= flag;
                if flag & TYPE_FLAGS != 0 && add_flags & TYPE_FLAGS != flag {
                    let message = "bad inline flags: flags 'a', 'u' and 'L' are incompatible";
                    return Err(self.tokens.error(message, 0));
                }
                let Some(next) = self.tokens.get()? else {
                    return Err(self.tokens.error("missing -, : or )", 0));
                };
                token = next;
                if matches!(token, Token::Char(')' | '-' | ':')) {
                    break;
                }
                flag = match token_flag(token) {
                    Some(flag) => flag,
                    None => {
                        let message = if token_is_alphabetic(token) {
                            "unknown flag"
                        } else {
                            "missing -, : or )"
                        };
                        return Err(self.tokens.error(message, token.len()));
                    }
                };
            }
        }
        if token == Token::Char(')') {
            self.global_flags |= add_flags;
            return Ok(None);
        }
        if add_flags & GLOBAL_FLAGS != 0 {
            return Err(self
                .tokens
                .error("bad inline flags: cannot turn on global flag", 1));
        }
        if token == Token::Char('-') {
            let Some(next) = self.tokens.get()? else {
                return Err(self.tokens.error("missing flag", 0));
            };
            let Some(mut flag) = token_flag(next) else {
                let message = if token_is_alphabetic(next) {
                    "unknown flag"
                } else {
                    "missing flag"
                };
                return Err(self.tokens.error(message, next.len()));
            };
            loop {
                if flag & TYPE_FLAGS != 0 {
                    let message = "bad inline flags: cannot turn off flags 'a', 'u' and 'L'";
                    return Err(self.tokens.error(message, 0));
                }
                del_flags |= flag;
                let Some(next) = self.tokens.get()? else {
                    return Err(self.tokens.error("missing :", 0));
                };
                if next == Token::Char(':') {
                    break;
                }
                flag = match token_flag(next) {
                    Some(flag) => flag,
                    None => {
                        let message = if token_is_alphabetic(next) {
                            "unknown flag"
                        } else {
                            "missing :"
                        };
                        return Err(self.tokens.error(message, next.len()));
                    }
                };
            }
        }
        if del_flags & GLOBAL_FLAGS != 0 {
            return Err(self
                .tokens
                .error("bad inline flags: cannot turn off global flag", 1));
        }
        if add_flags & del_flags != 0 {
            return Err(self
                .tokens
                .error("bad inline flags: flag turned on and off", 1));
        }
        Ok(Some((add_flags, del_flags)))
    }

    /// `state.opengroup`: numbers a new capturing group, which stays open until its `)`.
    fn open_group(&mut self, name: Option<&str>) -> Result<usize, String> {
        let index = self.group_widths.len();
        self.group_widths.push(None);
        let name_offset = name.map_or(0, |name| name.chars().count() + 1);
        if self.group_widths.len() as u64 > MAXGROUPS {
            return Err(self.tokens.error("too many groups", name_offset));
        }
        if let Some(name) = name {
            if let Some(&previous) = self.group_names.get(name) {
                let message = format!(
                    "redefinition of group name {} as group {index}; was group {previous}",
                    python_repr(name)
                );
                return Err(self.tokens.error(&message, name_offset));
            }
            self.group_names.insert(name.to_owned(), index);
        }
        Ok(index)
    }

    /// `source.checkgroupname`: group names must be Python identifiers.
    fn check_group_name(&self, name: &str) -> Result<(), String> {
        if is_identifier(name) {
            return Ok(());
        }
        let message = format!("bad character in group name {}", python_repr(name));
        Err(self.tokens.error(&message, name.chars().count() + 1))
    }

    fn closed_group_width(&self, group: u64) -> Option<Width> {
        let index = usize::try_from(group).ok()?;
        self.group_widths.get(index).copied().flatten()
    }

    /// `state.checklookbehindgroup`: inside a look-behind, references must be to
    /// groups closed before it began.
    fn check_lookbehind_group(&self, group: u64) -> Result<(), String> {
        let Some(limit) = self.lookbehind_groups else {
            return Ok(());
        };
        if self.closed_group_width(group).is_none() {
            return Err(self.tokens.error("cannot refer to an open group", 0));
        }
        if group >= limit as u64 {
            let message = "cannot refer to group defined in the same lookbehind subpattern";
            return Err(self.tokens.error(message, 0));
        }
        Ok(())
    }
}

fn is_octal_digit(c: char) -> bool {
    matches!(c, '0'..='7')
}

fn octal_value(digits: &str) -> u32 {
    digits
        .chars()
        .filter_map(|d| d.to_digit(8))
        .fold(0, |value, d| value * 8 + d)
}

/// `int(digits)` for a repeat bound, which must stay below `MAXREPEAT`.
fn repeat_count(digits: &str) -> Result<u64, String> {
    if digits.len() > INT_MAX_STR_DIGITS {
        return Err(format!(
            "Exceeds the limit ({INT_MAX_STR_DIGITS} digits) for integer string conversion: value has {} digits; \
             use sys.set_int_max_str_digits() to increase the limit",
            digits.len()
        ));
    }
    let value = digits.bytes().fold(0u64, |value, digit| {
        value
            .saturating_mul(10)
            .saturating_add(u64::from(digit - b'0'))
    });
    if value >= MAXREPEAT {
        return Err("the repetition number is too large".to_owned());
    }
    Ok(value)
}

/// The value of a successful Python `int(text)`.
struct DecimalInt {
    negative: bool,
    /// ASCII digits without underscores and leading zeros; empty for zero.
    digits: String,
}

impl DecimalInt {
    fn value(&self) -> u64 {
        self.digits.bytes().fold(0u64, |value, digit| {
            value
                .saturating_mul(10)
                .saturating_add(u64::from(digit - b'0'))
        })
    }
}

/// Python's `int(text)` (base 10), or `None` where it raises `ValueError`.
fn python_int(text: &str) -> Option<DecimalInt> {
    // `_PyUnicode_TransformDecimalAndSpaceToASCII`: non-ASCII whitespace becomes
    // a space and non-ASCII decimal digits ASCII ones; anything else non-ASCII
    // fails. Python's non-ASCII whitespace is exactly Unicode `White_Space`.
    let bytes: Vec<u8> = text
        .chars()
        .map(|c| {
            if c.is_ascii() {
                u8::try_from(c).ok()
            } else if c.is_whitespace() {
                Some(b' ')
            } else {
                decimal_digit_value(c).map(|digit| b'0' + digit)
            }
        })
        .collect::<Option<_>>()?;
    // `PyLong_FromString`: spaces, a sign, digits with single underscores between them, spaces.
    let is_space = |byte: u8| matches!(byte, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r');
    let mut rest = bytes.as_slice();
    while let [first, tail @ ..] = rest
        && is_space(*first)
    {
        rest = tail;
    }
    let negative = match rest {
        [b'-', tail @ ..] => {
            rest = tail;
            true
        }
        [b'+', tail @ ..] => {
            rest = tail;
            false
        }
        _ => false,
    };
    if rest.first() == Some(&b'_') {
        return None;
    }
    let mut digits = String::new();
    let mut digit_count = 0;
    let mut previous = None;
    while let [byte, tail @ ..] = rest {
        match byte {
            b'_' if previous == Some(b'_') => return None,
            b'_' => {}
            b'0'..=b'9' => {
                digit_count += 1;
                if !(digits.is_empty() && *byte == b'0') {
                    digits.push(char::from(*byte));
                }
            }
            _ => break,
        }
        previous = Some(*byte);
        rest = tail;
    }
    if previous == Some(b'_') || digit_count == 0 || digit_count > INT_MAX_STR_DIGITS {
        return None;
    }
    if !rest.iter().all(|&byte| is_space(byte)) {
        return None;
    }
    Some(DecimalInt { negative, digits })
}

fn decimal_digit_value(c: char) -> Option<u8> {
    let code = u32::from(c);
    let zero = DECIMAL_ZEROS.get(
        DECIMAL_ZEROS
            .partition_point(|&zero| zero <= code)
            .checked_sub(1)?,
    )?;
    u8::try_from(code - zero).ok().filter(|&digit| digit < 10)
}

/// Python's `str.isidentifier()`.
fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|first| first == '_' || is_identifier_start(first))
        && chars.all(is_identifier_continue)
}

fn is_identifier_start(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_alphabetic()
    } else {
        in_ranges(XID_START_RANGES, c)
    }
}

fn is_identifier_continue(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_alphanumeric() || c == '_'
    } else {
        in_ranges(XID_START_RANGES, c) || in_ranges(XID_CONTINUE_ONLY_RANGES, c)
    }
}

fn in_ranges(ranges: &[(u32, u32)], c: char) -> bool {
    let code = u32::from(c);
    ranges
        .binary_search_by(|&(low, high)| {
            if high < code {
                std::cmp::Ordering::Less
            } else if low > code {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

/// Names up to this length are checked exactly by [`is_character_name`].
const EXACT_NAME_MAX_LEN: usize = 8;
/// Length of the longest character name or alias.
const LONGEST_CHARACTER_NAME: usize = 88;

/// Whether `unicodedata.lookup(name)` finds a single character (exactly for
/// short names, approximately for longer ones; see the module docs). Lookup
/// ignores ASCII case; names consist of ASCII letters, digits, spaces and hyphens.
fn is_character_name(name: &str) -> bool {
    if name.len() > LONGEST_CHARACTER_NAME
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == ' ' || c == '-')
    {
        return false;
    }
    let name = name.to_ascii_uppercase();
    if name.len() > EXACT_NAME_MAX_LEN {
        return true;
    }
    SHORT_CHARACTER_NAMES.binary_search(&name.as_str()).is_ok()
        || is_variation_selector_alias(&name)
}

/// The aliases `VS1` to `VS256` of the variation selectors.
fn is_variation_selector_alias(name: &str) -> bool {
    name.strip_prefix("VS").is_some_and(|number| {
        !number.starts_with('0')
            && number.bytes().all(|byte| byte.is_ascii_digit())
            && number
                .parse::<u16>()
                .is_ok_and(|number| (1..=256).contains(&number))
    })
}

/// Python's `repr(text)`, for error messages; non-ASCII characters count as
/// printable unless they are controls or whitespace.
fn python_repr(text: &str) -> String {
    let quote = if text.contains('\'') && !text.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut repr = String::with_capacity(text.len() + 2);
    repr.push(quote);
    for c in text.chars() {
        match c {
            '\\' => repr.push_str("\\\\"),
            '\n' => repr.push_str("\\n"),
            '\r' => repr.push_str("\\r"),
            '\t' => repr.push_str("\\t"),
            _ if c == quote => {
                repr.push('\\');
                repr.push(c);
            }
            ' ' => repr.push(c),
            _ if !(c.is_control() || c.is_whitespace()) => repr.push(c),
            _ if u32::from(c) < 0x100 => {
                let _ = write!(repr, "\\x{:02x}", u32::from(c));
            }
            _ if u32::from(c) < 0x10000 => {
                let _ = write!(repr, "\\u{:04x}", u32::from(c));
            }
            _ => {
                let _ = write!(repr, "\\U{:08x}", u32::from(c));
            }
        }
    }
    repr.push(quote);
    repr
}

/// Non-ASCII characters that can start a Python 3.11 identifier (`XID_Start`),
/// as inclusive code point ranges.
#[rustfmt::skip]
const XID_START_RANGES: &[(u32, u32)] = &[
    (0xAA, 0xAA), (0xB5, 0xB5), (0xBA, 0xBA), (0xC0, 0xD6), (0xD8, 0xF6), (0xF8, 0x2C1),
    (0x2C6, 0x2D1), (0x2E0, 0x2E4), (0x2EC, 0x2EC), (0x2EE, 0x2EE), (0x370, 0x374), (0x376, 0x377),
    (0x37B, 0x37D), (0x37F, 0x37F), (0x386, 0x386), (0x388, 0x38A), (0x38C, 0x38C), (0x38E, 0x3A1),
    (0x3A3, 0x3F5), (0x3F7, 0x481), (0x48A, 0x52F), (0x531, 0x556), (0x559, 0x559), (0x560, 0x588),
    (0x5D0, 0x5EA), (0x5EF, 0x5F2), (0x620, 0x64A), (0x66E, 0x66F), (0x671, 0x6D3), (0x6D5, 0x6D5),
    (0x6E5, 0x6E6), (0x6EE, 0x6EF), (0x6FA, 0x6FC), (0x6FF, 0x6FF), (0x710, 0x710), (0x712, 0x72F),
    (0x74D, 0x7A5), (0x7B1, 0x7B1), (0x7CA, 0x7EA), (0x7F4, 0x7F5), (0x7FA, 0x7FA), (0x800, 0x815),
    (0x81A, 0x81A), (0x824, 0x824), (0x828, 0x828), (0x840, 0x858), (0x860, 0x86A), (0x870, 0x887),
    (0x889, 0x88E), (0x8A0, 0x8C9), (0x904, 0x939), (0x93D, 0x93D), (0x950, 0x950), (0x958, 0x961),
    (0x971, 0x980), (0x985, 0x98C), (0x98F, 0x990), (0x993, 0x9A8), (0x9AA, 0x9B0), (0x9B2, 0x9B2),
    (0x9B6, 0x9B9), (0x9BD, 0x9BD), (0x9CE, 0x9CE), (0x9DC, 0x9DD), (0x9DF, 0x9E1), (0x9F0, 0x9F1),
    (0x9FC, 0x9FC), (0xA05, 0xA0A), (0xA0F, 0xA10), (0xA13, 0xA28), (0xA2A, 0xA30), (0xA32, 0xA33),
    (0xA35, 0xA36), (0xA38, 0xA39), (0xA59, 0xA5C), (0xA5E, 0xA5E), (0xA72, 0xA74), (0xA85, 0xA8D),
    (0xA8F, 0xA91), (0xA93, 0xAA8), (0xAAA, 0xAB0), (0xAB2, 0xAB3), (0xAB5, 0xAB9), (0xABD, 0xABD),
    (0xAD0, 0xAD0), (0xAE0, 0xAE1), (0xAF9, 0xAF9), (0xB05, 0xB0C), (0xB0F, 0xB10), (0xB13, 0xB28),
    (0xB2A, 0xB30), (0xB32, 0xB33), (0xB35, 0xB39), (0xB3D, 0xB3D), (0xB5C, 0xB5D), (0xB5F, 0xB61),
    (0xB71, 0xB71), (0xB83, 0xB83), (0xB85, 0xB8A), (0xB8E, 0xB90), (0xB92, 0xB95), (0xB99, 0xB9A),
    (0xB9C, 0xB9C), (0xB9E, 0xB9F), (0xBA3, 0xBA4), (0xBA8, 0xBAA), (0xBAE, 0xBB9), (0xBD0, 0xBD0),
    (0xC05, 0xC0C), (0xC0E, 0xC10), (0xC12, 0xC28), (0xC2A, 0xC39), (0xC3D, 0xC3D), (0xC58, 0xC5A),
    (0xC5D, 0xC5D), (0xC60, 0xC61), (0xC80, 0xC80), (0xC85, 0xC8C), (0xC8E, 0xC90), (0xC92, 0xCA8),
    (0xCAA, 0xCB3), (0xCB5, 0xCB9), (0xCBD, 0xCBD), (0xCDD, 0xCDE), (0xCE0, 0xCE1), (0xCF1, 0xCF2),
    (0xD04, 0xD0C), (0xD0E, 0xD10), (0xD12, 0xD3A), (0xD3D, 0xD3D), (0xD4E, 0xD4E), (0xD54, 0xD56),
    (0xD5F, 0xD61), (0xD7A, 0xD7F), (0xD85, 0xD96), (0xD9A, 0xDB1), (0xDB3, 0xDBB), (0xDBD, 0xDBD),
    (0xDC0, 0xDC6), (0xE01, 0xE30), (0xE32, 0xE32), (0xE40, 0xE46), (0xE81, 0xE82), (0xE84, 0xE84),
    (0xE86, 0xE8A), (0xE8C, 0xEA3), (0xEA5, 0xEA5), (0xEA7, 0xEB0), (0xEB2, 0xEB2), (0xEBD, 0xEBD),
    (0xEC0, 0xEC4), (0xEC6, 0xEC6), (0xEDC, 0xEDF), (0xF00, 0xF00), (0xF40, 0xF47), (0xF49, 0xF6C),
    (0xF88, 0xF8C), (0x1000, 0x102A), (0x103F, 0x103F), (0x1050, 0x1055), (0x105A, 0x105D),
    (0x1061, 0x1061), (0x1065, 0x1066), (0x106E, 0x1070), (0x1075, 0x1081), (0x108E, 0x108E),
    (0x10A0, 0x10C5), (0x10C7, 0x10C7), (0x10CD, 0x10CD), (0x10D0, 0x10FA), (0x10FC, 0x1248),
    (0x124A, 0x124D), (0x1250, 0x1256), (0x1258, 0x1258), (0x125A, 0x125D), (0x1260, 0x1288),
    (0x128A, 0x128D), (0x1290, 0x12B0), (0x12B2, 0x12B5), (0x12B8, 0x12BE), (0x12C0, 0x12C0),
    (0x12C2, 0x12C5), (0x12C8, 0x12D6), (0x12D8, 0x1310), (0x1312, 0x1315), (0x1318, 0x135A),
    (0x1380, 0x138F), (0x13A0, 0x13F5), (0x13F8, 0x13FD), (0x1401, 0x166C), (0x166F, 0x167F),
    (0x1681, 0x169A), (0x16A0, 0x16EA), (0x16EE, 0x16F8), (0x1700, 0x1711), (0x171F, 0x1731),
    (0x1740, 0x1751), (0x1760, 0x176C), (0x176E, 0x1770), (0x1780, 0x17B3), (0x17D7, 0x17D7),
    (0x17DC, 0x17DC), (0x1820, 0x1878), (0x1880, 0x18A8), (0x18AA, 0x18AA), (0x18B0, 0x18F5),
    (0x1900, 0x191E), (0x1950, 0x196D), (0x1970, 0x1974), (0x1980, 0x19AB), (0x19B0, 0x19C9),
    (0x1A00, 0x1A16), (0x1A20, 0x1A54), (0x1AA7, 0x1AA7), (0x1B05, 0x1B33), (0x1B45, 0x1B4C),
    (0x1B83, 0x1BA0), (0x1BAE, 0x1BAF), (0x1BBA, 0x1BE5), (0x1C00, 0x1C23), (0x1C4D, 0x1C4F),
    (0x1C5A, 0x1C7D), (0x1C80, 0x1C88), (0x1C90, 0x1CBA), (0x1CBD, 0x1CBF), (0x1CE9, 0x1CEC),
    (0x1CEE, 0x1CF3), (0x1CF5, 0x1CF6), (0x1CFA, 0x1CFA), (0x1D00, 0x1DBF), (0x1E00, 0x1F15),
    (0x1F18, 0x1F1D), (0x1F20, 0x1F45), (0x1F48, 0x1F4D), (0x1F50, 0x1F57), (0x1F59, 0x1F59),
    (0x1F5B, 0x1F5B), (0x1F5D, 0x1F5D), (0x1F5F, 0x1F7D), (0x1F80, 0x1FB4), (0x1FB6, 0x1FBC),
    (0x1FBE, 0x1FBE), (0x1FC2, 0x1FC4), (0x1FC6, 0x1FCC), (0x1FD0, 0x1FD3), (0x1FD6, 0x1FDB),
    (0x1FE0, 0x1FEC), (0x1FF2, 0x1FF4), (0x1FF6, 0x1FFC), (0x2071, 0x2071), (0x207F, 0x207F),
    (0x2090, 0x209C), (0x2102, 0x2102), (0x2107, 0x2107), (0x210A, 0x2113), (0x2115, 0x2115),
    (0x2118, 0x211D), (0x2124, 0x2124), (0x2126, 0x2126), (0x2128, 0x2128), (0x212A, 0x2139),
    (0x213C, 0x213F), (0x2145, 0x2149), (0x214E, 0x214E), (0x2160, 0x2188), (0x2C00, 0x2CE4),
    (0x2CEB, 0x2CEE), (0x2CF2, 0x2CF3), (0x2D00, 0x2D25), (0x2D27, 0x2D27), (0x2D2D, 0x2D2D),
    (0x2D30, 0x2D67), (0x2D6F, 0x2D6F), (0x2D80, 0x2D96), (0x2DA0, 0x2DA6), (0x2DA8, 0x2DAE),
    (0x2DB0, 0x2DB6), (0x2DB8, 0x2DBE), (0x2DC0, 0x2DC6), (0x2DC8, 0x2DCE), (0x2DD0, 0x2DD6),
    (0x2DD8, 0x2DDE), (0x3005, 0x3007), (0x3021, 0x3029), (0x3031, 0x3035), (0x3038, 0x303C),
    (0x3041, 0x3096), (0x309D, 0x309F), (0x30A1, 0x30FA), (0x30FC, 0x30FF), (0x3105, 0x312F),
    (0x3131, 0x318E), (0x31A0, 0x31BF), (0x31F0, 0x31FF), (0x3400, 0x4DBF), (0x4E00, 0xA48C),
    (0xA4D0, 0xA4FD), (0xA500, 0xA60C), (0xA610, 0xA61F), (0xA62A, 0xA62B), (0xA640, 0xA66E),
    (0xA67F, 0xA69D), (0xA6A0, 0xA6EF), (0xA717, 0xA71F), (0xA722, 0xA788), (0xA78B, 0xA7CA),
    (0xA7D0, 0xA7D1), (0xA7D3, 0xA7D3), (0xA7D5, 0xA7D9), (0xA7F2, 0xA801), (0xA803, 0xA805),
    (0xA807, 0xA80A), (0xA80C, 0xA822), (0xA840, 0xA873), (0xA882, 0xA8B3), (0xA8F2, 0xA8F7),
    (0xA8FB, 0xA8FB), (0xA8FD, 0xA8FE), (0xA90A, 0xA925), (0xA930, 0xA946), (0xA960, 0xA97C),
    (0xA984, 0xA9B2), (0xA9CF, 0xA9CF), (0xA9E0, 0xA9E4), (0xA9E6, 0xA9EF), (0xA9FA, 0xA9FE),
    (0xAA00, 0xAA28), (0xAA40, 0xAA42), (0xAA44, 0xAA4B), (0xAA60, 0xAA76), (0xAA7A, 0xAA7A),
    (0xAA7E, 0xAAAF), (0xAAB1, 0xAAB1), (0xAAB5, 0xAAB6), (0xAAB9, 0xAABD), (0xAAC0, 0xAAC0),
    (0xAAC2, 0xAAC2), (0xAADB, 0xAADD), (0xAAE0, 0xAAEA), (0xAAF2, 0xAAF4), (0xAB01, 0xAB06),
    (0xAB09, 0xAB0E), (0xAB11, 0xAB16), (0xAB20, 0xAB26), (0xAB28, 0xAB2E), (0xAB30, 0xAB5A),
    (0xAB5C, 0xAB69), (0xAB70, 0xABE2), (0xAC00, 0xD7A3), (0xD7B0, 0xD7C6), (0xD7CB, 0xD7FB),
    (0xF900, 0xFA6D), (0xFA70, 0xFAD9), (0xFB00, 0xFB06), (0xFB13, 0xFB17), (0xFB1D, 0xFB1D),
    (0xFB1F, 0xFB28), (0xFB2A, 0xFB36), (0xFB38, 0xFB3C), (0xFB3E, 0xFB3E), (0xFB40, 0xFB41),
    (0xFB43, 0xFB44), (0xFB46, 0xFBB1), (0xFBD3, 0xFC5D), (0xFC64, 0xFD3D), (0xFD50, 0xFD8F),
    (0xFD92, 0xFDC7), (0xFDF0, 0xFDF9), (0xFE71, 0xFE71), (0xFE73, 0xFE73), (0xFE77, 0xFE77),
    (0xFE79, 0xFE79), (0xFE7B, 0xFE7B), (0xFE7D, 0xFE7D), (0xFE7F, 0xFEFC), (0xFF21, 0xFF3A),
    (0xFF41, 0xFF5A), (0xFF66, 0xFF9D), (0xFFA0, 0xFFBE), (0xFFC2, 0xFFC7), (0xFFCA, 0xFFCF),
    (0xFFD2, 0xFFD7), (0xFFDA, 0xFFDC), (0x10000, 0x1000B), (0x1000D, 0x10026), (0x10028, 0x1003A),
    (0x1003C, 0x1003D), (0x1003F, 0x1004D), (0x10050, 0x1005D), (0x10080, 0x100FA),
    (0x10140, 0x10174), (0x10280, 0x1029C), (0x102A0, 0x102D0), (0x10300, 0x1031F),
    (0x1032D, 0x1034A), (0x10350, 0x10375), (0x10380, 0x1039D), (0x103A0, 0x103C3),
    (0x103C8, 0x103CF), (0x103D1, 0x103D5), (0x10400, 0x1049D), (0x104B0, 0x104D3),
    (0x104D8, 0x104FB), (0x10500, 0x10527), (0x10530, 0x10563), (0x10570, 0x1057A),
    (0x1057C, 0x1058A), (0x1058C, 0x10592), (0x10594, 0x10595), (0x10597, 0x105A1),
    (0x105A3, 0x105B1), (0x105B3, 0x105B9), (0x105BB, 0x105BC), (0x10600, 0x10736),
    (0x10740, 0x10755), (0x10760, 0x10767), (0x10780, 0x10785), (0x10787, 0x107B0),
    (0x107B2, 0x107BA), (0x10800, 0x10805), (0x10808, 0x10808), (0x1080A, 0x10835),
    (0x10837, 0x10838), (0x1083C, 0x1083C), (0x1083F, 0x10855), (0x10860, 0x10876),
    (0x10880, 0x1089E), (0x108E0, 0x108F2), (0x108F4, 0x108F5), (0x10900, 0x10915),
    (0x10920, 0x10939), (0x10980, 0x109B7), (0x109BE, 0x109BF), (0x10A00, 0x10A00),
    (0x10A10, 0x10A13), (0x10A15, 0x10A17), (0x10A19, 0x10A35), (0x10A60, 0x10A7C),
    (0x10A80, 0x10A9C), (0x10AC0, 0x10AC7), (0x10AC9, 0x10AE4), (0x10B00, 0x10B35),
    (0x10B40, 0x10B55), (0x10B60, 0x10B72), (0x10B80, 0x10B91), (0x10C00, 0x10C48),
    (0x10C80, 0x10CB2), (0x10CC0, 0x10CF2), (0x10D00, 0x10D23), (0x10E80, 0x10EA9),
    (0x10EB0, 0x10EB1), (0x10F00, 0x10F1C), (0x10F27, 0x10F27), (0x10F30, 0x10F45),
    (0x10F70, 0x10F81), (0x10FB0, 0x10FC4), (0x10FE0, 0x10FF6), (0x11003, 0x11037),
    (0x11071, 0x11072), (0x11075, 0x11075), (0x11083, 0x110AF), (0x110D0, 0x110E8),
    (0x11103, 0x11126), (0x11144, 0x11144), (0x11147, 0x11147), (0x11150, 0x11172),
    (0x11176, 0x11176), (0x11183, 0x111B2), (0x111C1, 0x111C4), (0x111DA, 0x111DA),
    (0x111DC, 0x111DC), (0x11200, 0x11211), (0x11213, 0x1122B), (0x11280, 0x11286),
    (0x11288, 0x11288), (0x1128A, 0x1128D), (0x1128F, 0x1129D), (0x1129F, 0x112A8),
    (0x112B0, 0x112DE), (0x11305, 0x1130C), (0x1130F, 0x11310), (0x11313, 0x11328),
    (0x1132A, 0x11330), (0x11332, 0x11333), (0x11335, 0x11339), (0x1133D, 0x1133D),
    (0x11350, 0x11350), (0x1135D, 0x11361), (0x11400, 0x11434), (0x11447, 0x1144A),
    (0x1145F, 0x11461), (0x11480, 0x114AF), (0x114C4, 0x114C5), (0x114C7, 0x114C7),
    (0x11580, 0x115AE), (0x115D8, 0x115DB), (0x11600, 0x1162F), (0x11644, 0x11644),
    (0x11680, 0x116AA), (0x116B8, 0x116B8), (0x11700, 0x1171A), (0x11740, 0x11746),
    (0x11800, 0x1182B), (0x118A0, 0x118DF), (0x118FF, 0x11906), (0x11909, 0x11909),
    (0x1190C, 0x11913), (0x11915, 0x11916), (0x11918, 0x1192F), (0x1193F, 0x1193F),
    (0x11941, 0x11941), (0x119A0, 0x119A7), (0x119AA, 0x119D0), (0x119E1, 0x119E1),
    (0x119E3, 0x119E3), (0x11A00, 0x11A00), (0x11A0B, 0x11A32), (0x11A3A, 0x11A3A),
    (0x11A50, 0x11A50), (0x11A5C, 0x11A89), (0x11A9D, 0x11A9D), (0x11AB0, 0x11AF8),
    (0x11C00, 0x11C08), (0x11C0A, 0x11C2E), (0x11C40, 0x11C40), (0x11C72, 0x11C8F),
    (0x11D00, 0x11D06), (0x11D08, 0x11D09), (0x11D0B, 0x11D30), (0x11D46, 0x11D46),
    (0x11D60, 0x11D65), (0x11D67, 0x11D68), (0x11D6A, 0x11D89), (0x11D98, 0x11D98),
    (0x11EE0, 0x11EF2), (0x11FB0, 0x11FB0), (0x12000, 0x12399), (0x12400, 0x1246E),
    (0x12480, 0x12543), (0x12F90, 0x12FF0), (0x13000, 0x1342E), (0x14400, 0x14646),
    (0x16800, 0x16A38), (0x16A40, 0x16A5E), (0x16A70, 0x16ABE), (0x16AD0, 0x16AED),
    (0x16B00, 0x16B2F), (0x16B40, 0x16B43), (0x16B63, 0x16B77), (0x16B7D, 0x16B8F),
    (0x16E40, 0x16E7F), (0x16F00, 0x16F4A), (0x16F50, 0x16F50), (0x16F93, 0x16F9F),
    (0x16FE0, 0x16FE1), (0x16FE3, 0x16FE3), (0x17000, 0x187F7), (0x18800, 0x18CD5),
    (0x18D00, 0x18D08), (0x1AFF0, 0x1AFF3), (0x1AFF5, 0x1AFFB), (0x1AFFD, 0x1AFFE),
    (0x1B000, 0x1B122), (0x1B150, 0x1B152), (0x1B164, 0x1B167), (0x1B170, 0x1B2FB),
    (0x1BC00, 0x1BC6A), (0x1BC70, 0x1BC7C), (0x1BC80, 0x1BC88), (0x1BC90, 0x1BC99),
    (0x1D400, 0x1D454), (0x1D456, 0x1D49C), (0x1D49E, 0x1D49F), (0x1D4A2, 0x1D4A2),
    (0x1D4A5, 0x1D4A6), (0x1D4A9, 0x1D4AC), (0x1D4AE, 0x1D4B9), (0x1D4BB, 0x1D4BB),
    (0x1D4BD, 0x1D4C3), (0x1D4C5, 0x1D505), (0x1D507, 0x1D50A), (0x1D50D, 0x1D514),
    (0x1D516, 0x1D51C), (0x1D51E, 0x1D539), (0x1D53B, 0x1D53E), (0x1D540, 0x1D544),
    (0x1D546, 0x1D546), (0x1D54A, 0x1D550), (0x1D552, 0x1D6A5), (0x1D6A8, 0x1D6C0),
    (0x1D6C2, 0x1D6DA), (0x1D6DC, 0x1D6FA), (0x1D6FC, 0x1D714), (0x1D716, 0x1D734),
    (0x1D736, 0x1D74E), (0x1D750, 0x1D76E), (0x1D770, 0x1D788), (0x1D78A, 0x1D7A8),
    (0x1D7AA, 0x1D7C2), (0x1D7C4, 0x1D7CB), (0x1DF00, 0x1DF1E), (0x1E100, 0x1E12C),
    (0x1E137, 0x1E13D), (0x1E14E, 0x1E14E), (0x1E290, 0x1E2AD), (0x1E2C0, 0x1E2EB),
    (0x1E7E0, 0x1E7E6), (0x1E7E8, 0x1E7EB), (0x1E7ED, 0x1E7EE), (0x1E7F0, 0x1E7FE),
    (0x1E800, 0x1E8C4), (0x1E900, 0x1E943), (0x1E94B, 0x1E94B), (0x1EE00, 0x1EE03),
    (0x1EE05, 0x1EE1F), (0x1EE21, 0x1EE22), (0x1EE24, 0x1EE24), (0x1EE27, 0x1EE27),
    (0x1EE29, 0x1EE32), (0x1EE34, 0x1EE37), (0x1EE39, 0x1EE39), (0x1EE3B, 0x1EE3B),
    (0x1EE42, 0x1EE42), (0x1EE47, 0x1EE47), (0x1EE49, 0x1EE49), (0x1EE4B, 0x1EE4B),
    (0x1EE4D, 0x1EE4F), (0x1EE51, 0x1EE52), (0x1EE54, 0x1EE54), (0x1EE57, 0x1EE57),
    (0x1EE59, 0x1EE59), (0x1EE5B, 0x1EE5B), (0x1EE5D, 0x1EE5D), (0x1EE5F, 0x1EE5F),
    (0x1EE61, 0x1EE62), (0x1EE64, 0x1EE64), (0x1EE67, 0x1EE6A), (0x1EE6C, 0x1EE72),
    (0x1EE74, 0x1EE77), (0x1EE79, 0x1EE7C), (0x1EE7E, 0x1EE7E), (0x1EE80, 0x1EE89),
    (0x1EE8B, 0x1EE9B), (0x1EEA1, 0x1EEA3), (0x1EEA5, 0x1EEA9), (0x1EEAB, 0x1EEBB),
    (0x20000, 0x2A6DF), (0x2A700, 0x2B738), (0x2B740, 0x2B81D), (0x2B820, 0x2CEA1),
    (0x2CEB0, 0x2EBE0), (0x2F800, 0x2FA1D), (0x30000, 0x3134A),
];

/// Non-ASCII characters that can continue but not start a Python 3.11
/// identifier (`XID_Continue` minus `XID_Start`), as inclusive code point ranges.
#[rustfmt::skip]
const XID_CONTINUE_ONLY_RANGES: &[(u32, u32)] = &[
    (0xB7, 0xB7), (0x300, 0x36F), (0x387, 0x387), (0x483, 0x487), (0x591, 0x5BD), (0x5BF, 0x5BF),
    (0x5C1, 0x5C2), (0x5C4, 0x5C5), (0x5C7, 0x5C7), (0x610, 0x61A), (0x64B, 0x669), (0x670, 0x670),
    (0x6D6, 0x6DC), (0x6DF, 0x6E4), (0x6E7, 0x6E8), (0x6EA, 0x6ED), (0x6F0, 0x6F9), (0x711, 0x711),
    (0x730, 0x74A), (0x7A6, 0x7B0), (0x7C0, 0x7C9), (0x7EB, 0x7F3), (0x7FD, 0x7FD), (0x816, 0x819),
    (0x81B, 0x823), (0x825, 0x827), (0x829, 0x82D), (0x859, 0x85B), (0x898, 0x89F), (0x8CA, 0x8E1),
    (0x8E3, 0x903), (0x93A, 0x93C), (0x93E, 0x94F), (0x951, 0x957), (0x962, 0x963), (0x966, 0x96F),
    (0x981, 0x983), (0x9BC, 0x9BC), (0x9BE, 0x9C4), (0x9C7, 0x9C8), (0x9CB, 0x9CD), (0x9D7, 0x9D7),
    (0x9E2, 0x9E3), (0x9E6, 0x9EF), (0x9FE, 0x9FE), (0xA01, 0xA03), (0xA3C, 0xA3C), (0xA3E, 0xA42),
    (0xA47, 0xA48), (0xA4B, 0xA4D), (0xA51, 0xA51), (0xA66, 0xA71), (0xA75, 0xA75), (0xA81, 0xA83),
    (0xABC, 0xABC), (0xABE, 0xAC5), (0xAC7, 0xAC9), (0xACB, 0xACD), (0xAE2, 0xAE3), (0xAE6, 0xAEF),
    (0xAFA, 0xAFF), (0xB01, 0xB03), (0xB3C, 0xB3C), (0xB3E, 0xB44), (0xB47, 0xB48), (0xB4B, 0xB4D),
    (0xB55, 0xB57), (0xB62, 0xB63), (0xB66, 0xB6F), (0xB82, 0xB82), (0xBBE, 0xBC2), (0xBC6, 0xBC8),
    (0xBCA, 0xBCD), (0xBD7, 0xBD7), (0xBE6, 0xBEF), (0xC00, 0xC04), (0xC3C, 0xC3C), (0xC3E, 0xC44),
    (0xC46, 0xC48), (0xC4A, 0xC4D), (0xC55, 0xC56), (0xC62, 0xC63), (0xC66, 0xC6F), (0xC81, 0xC83),
    (0xCBC, 0xCBC), (0xCBE, 0xCC4), (0xCC6, 0xCC8), (0xCCA, 0xCCD), (0xCD5, 0xCD6), (0xCE2, 0xCE3),
    (0xCE6, 0xCEF), (0xD00, 0xD03), (0xD3B, 0xD3C), (0xD3E, 0xD44), (0xD46, 0xD48), (0xD4A, 0xD4D),
    (0xD57, 0xD57), (0xD62, 0xD63), (0xD66, 0xD6F), (0xD81, 0xD83), (0xDCA, 0xDCA), (0xDCF, 0xDD4),
    (0xDD6, 0xDD6), (0xDD8, 0xDDF), (0xDE6, 0xDEF), (0xDF2, 0xDF3), (0xE31, 0xE31), (0xE33, 0xE3A),
    (0xE47, 0xE4E), (0xE50, 0xE59), (0xEB1, 0xEB1), (0xEB3, 0xEBC), (0xEC8, 0xECD), (0xED0, 0xED9),
    (0xF18, 0xF19), (0xF20, 0xF29), (0xF35, 0xF35), (0xF37, 0xF37), (0xF39, 0xF39), (0xF3E, 0xF3F),
    (0xF71, 0xF84), (0xF86, 0xF87), (0xF8D, 0xF97), (0xF99, 0xFBC), (0xFC6, 0xFC6),
    (0x102B, 0x103E), (0x1040, 0x1049), (0x1056, 0x1059), (0x105E, 0x1060), (0x1062, 0x1064),
    (0x1067, 0x106D), (0x1071, 0x1074), (0x1082, 0x108D), (0x108F, 0x109D), (0x135D, 0x135F),
    (0x1369, 0x1371), (0x1712, 0x1715), (0x1732, 0x1734), (0x1752, 0x1753), (0x1772, 0x1773),
    (0x17B4, 0x17D3), (0x17DD, 0x17DD), (0x17E0, 0x17E9), (0x180B, 0x180D), (0x180F, 0x1819),
    (0x18A9, 0x18A9), (0x1920, 0x192B), (0x1930, 0x193B), (0x1946, 0x194F), (0x19D0, 0x19DA),
    (0x1A17, 0x1A1B), (0x1A55, 0x1A5E), (0x1A60, 0x1A7C), (0x1A7F, 0x1A89), (0x1A90, 0x1A99),
    (0x1AB0, 0x1ABD), (0x1ABF, 0x1ACE), (0x1B00, 0x1B04), (0x1B34, 0x1B44), (0x1B50, 0x1B59),
    (0x1B6B, 0x1B73), (0x1B80, 0x1B82), (0x1BA1, 0x1BAD), (0x1BB0, 0x1BB9), (0x1BE6, 0x1BF3),
    (0x1C24, 0x1C37), (0x1C40, 0x1C49), (0x1C50, 0x1C59), (0x1CD0, 0x1CD2), (0x1CD4, 0x1CE8),
    (0x1CED, 0x1CED), (0x1CF4, 0x1CF4), (0x1CF7, 0x1CF9), (0x1DC0, 0x1DFF), (0x203F, 0x2040),
    (0x2054, 0x2054), (0x20D0, 0x20DC), (0x20E1, 0x20E1), (0x20E5, 0x20F0), (0x2CEF, 0x2CF1),
    (0x2D7F, 0x2D7F), (0x2DE0, 0x2DFF), (0x302A, 0x302F), (0x3099, 0x309A), (0xA620, 0xA629),
    (0xA66F, 0xA66F), (0xA674, 0xA67D), (0xA69E, 0xA69F), (0xA6F0, 0xA6F1), (0xA802, 0xA802),
    (0xA806, 0xA806), (0xA80B, 0xA80B), (0xA823, 0xA827), (0xA82C, 0xA82C), (0xA880, 0xA881),
    (0xA8B4, 0xA8C5), (0xA8D0, 0xA8D9), (0xA8E0, 0xA8F1), (0xA8FF, 0xA909), (0xA926, 0xA92D),
    (0xA947, 0xA953), (0xA980, 0xA983), (0xA9B3, 0xA9C0), (0xA9D0, 0xA9D9), (0xA9E5, 0xA9E5),
    (0xA9F0, 0xA9F9), (0xAA29, 0xAA36), (0xAA43, 0xAA43), (0xAA4C, 0xAA4D), (0xAA50, 0xAA59),
    (0xAA7B, 0xAA7D), (0xAAB0, 0xAAB0), (0xAAB2, 0xAAB4), (0xAAB7, 0xAAB8), (0xAABE, 0xAABF),
    (0xAAC1, 0xAAC1), (0xAAEB, 0xAAEF), (0xAAF5, 0xAAF6), (0xABE3, 0xABEA), (0xABEC, 0xABED),
    (0xABF0, 0xABF9), (0xFB1E, 0xFB1E), (0xFE00, 0xFE0F), (0xFE20, 0xFE2F), (0xFE33, 0xFE34),
    (0xFE4D, 0xFE4F), (0xFF10, 0xFF19), (0xFF3F, 0xFF3F), (0xFF9E, 0xFF9F), (0x101FD, 0x101FD),
    (0x102E0, 0x102E0), (0x10376, 0x1037A), (0x104A0, 0x104A9), (0x10A01, 0x10A03),
    (0x10A05, 0x10A06), (0x10A0C, 0x10A0F), (0x10A38, 0x10A3A), (0x10A3F, 0x10A3F),
    (0x10AE5, 0x10AE6), (0x10D24, 0x10D27), (0x10D30, 0x10D39), (0x10EAB, 0x10EAC),
    (0x10F46, 0x10F50), (0x10F82, 0x10F85), (0x11000, 0x11002), (0x11038, 0x11046),
    (0x11066, 0x11070), (0x11073, 0x11074), (0x1107F, 0x11082), (0x110B0, 0x110BA),
    (0x110C2, 0x110C2), (0x110F0, 0x110F9), (0x11100, 0x11102), (0x11127, 0x11134),
    (0x11136, 0x1113F), (0x11145, 0x11146), (0x11173, 0x11173), (0x11180, 0x11182),
    (0x111B3, 0x111C0), (0x111C9, 0x111CC), (0x111CE, 0x111D9), (0x1122C, 0x11237),
    (0x1123E, 0x1123E), (0x112DF, 0x112EA), (0x112F0, 0x112F9), (0x11300, 0x11303),
    (0x1133B, 0x1133C), (0x1133E, 0x11344), (0x11347, 0x11348), (0x1134B, 0x1134D),
    (0x11357, 0x11357), (0x11362, 0x11363), (0x11366, 0x1136C), (0x11370, 0x11374),
    (0x11435, 0x11446), (0x11450, 0x11459), (0x1145E, 0x1145E), (0x114B0, 0x114C3),
    (0x114D0, 0x114D9), (0x115AF, 0x115B5), (0x115B8, 0x115C0), (0x115DC, 0x115DD),
    (0x11630, 0x11640), (0x11650, 0x11659), (0x116AB, 0x116B7), (0x116C0, 0x116C9),
    (0x1171D, 0x1172B), (0x11730, 0x11739), (0x1182C, 0x1183A), (0x118E0, 0x118E9),
    (0x11930, 0x11935), (0x11937, 0x11938), (0x1193B, 0x1193E), (0x11940, 0x11940),
    (0x11942, 0x11943), (0x11950, 0x11959), (0x119D1, 0x119D7), (0x119DA, 0x119E0),
    (0x119E4, 0x119E4), (0x11A01, 0x11A0A), (0x11A33, 0x11A39), (0x11A3B, 0x11A3E),
    (0x11A47, 0x11A47), (0x11A51, 0x11A5B), (0x11A8A, 0x11A99), (0x11C2F, 0x11C36),
    (0x11C38, 0x11C3F), (0x11C50, 0x11C59), (0x11C92, 0x11CA7), (0x11CA9, 0x11CB6),
    (0x11D31, 0x11D36), (0x11D3A, 0x11D3A), (0x11D3C, 0x11D3D), (0x11D3F, 0x11D45),
    (0x11D47, 0x11D47), (0x11D50, 0x11D59), (0x11D8A, 0x11D8E), (0x11D90, 0x11D91),
    (0x11D93, 0x11D97), (0x11DA0, 0x11DA9), (0x11EF3, 0x11EF6), (0x16A60, 0x16A69),
    (0x16AC0, 0x16AC9), (0x16AF0, 0x16AF4), (0x16B30, 0x16B36), (0x16B50, 0x16B59),
    (0x16F4F, 0x16F4F), (0x16F51, 0x16F87), (0x16F8F, 0x16F92), (0x16FE4, 0x16FE4),
    (0x16FF0, 0x16FF1), (0x1BC9D, 0x1BC9E), (0x1CF00, 0x1CF2D), (0x1CF30, 0x1CF46),
    (0x1D165, 0x1D169), (0x1D16D, 0x1D172), (0x1D17B, 0x1D182), (0x1D185, 0x1D18B),
    (0x1D1AA, 0x1D1AD), (0x1D242, 0x1D244), (0x1D7CE, 0x1D7FF), (0x1DA00, 0x1DA36),
    (0x1DA3B, 0x1DA6C), (0x1DA75, 0x1DA75), (0x1DA84, 0x1DA84), (0x1DA9B, 0x1DA9F),
    (0x1DAA1, 0x1DAAF), (0x1E000, 0x1E006), (0x1E008, 0x1E018), (0x1E01B, 0x1E021),
    (0x1E023, 0x1E024), (0x1E026, 0x1E02A), (0x1E130, 0x1E136), (0x1E140, 0x1E149),
    (0x1E2AE, 0x1E2AE), (0x1E2EC, 0x1E2F9), (0x1E8D0, 0x1E8D6), (0x1E944, 0x1E94A),
    (0x1E950, 0x1E959), (0x1FBF0, 0x1FBF9), (0xE0100, 0xE01EF),
];

/// The non-ASCII code points with decimal digit value 0; each starts a run of
/// ten consecutive digits 0..=9.
#[rustfmt::skip]
const DECIMAL_ZEROS: &[u32] = &[
    0x660, 0x6F0, 0x7C0, 0x966, 0x9E6, 0xA66, 0xAE6, 0xB66, 0xBE6, 0xC66, 0xCE6, 0xD66, 0xDE6,
    0xE50, 0xED0, 0xF20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0x19D0, 0x1A80, 0x1A90, 0x1B50,
    0x1BB0, 0x1C40, 0x1C50, 0xA620, 0xA8D0, 0xA900, 0xA9D0, 0xA9F0, 0xAA50, 0xABF0, 0xFF10, 0x104A0,
    0x10D30, 0x11066, 0x110F0, 0x11136, 0x111D0, 0x112F0, 0x11450, 0x114D0, 0x11650, 0x116C0,
    0x11730, 0x118E0, 0x11950, 0x11C50, 0x11D50, 0x11DA0, 0x16A60, 0x16AC0, 0x16B50, 0x1D7CE,
    0x1D7D8, 0x1D7E2, 0x1D7EC, 0x1D7F6, 0x1E140, 0x1E2F0, 0x1E950, 0x1FBF0,
];

/// Every character name and formal name alias of at most
/// [`EXACT_NAME_MAX_LEN`] characters, upper-cased and sorted, except the
/// `VS1`..`VS256` aliases (see [`is_variation_selector_alias`]).
#[rustfmt::skip]
const SHORT_CHARACTER_NAMES: &[&str] = &[
    "ABACUS", "ACK", "ADMETOS", "ADULT", "AIRPLANE", "ALEMBIC", "ALERT", "ALM", "AMPHORA", "ANCHOR",
    "ANGLE", "ANKH", "ANT", "APC", "APOLLON", "AQUARIUS", "ARC", "ARIES", "ASTERISK", "ASTERISM",
    "ASTRAEA", "AVOCADO", "AXE", "BABY", "BACON", "BADGER", "BAGEL", "BALLOON", "BALLOT X",
    "BANANA", "BANJO", "BANK", "BASEBALL", "BASKET", "BAT", "BATH", "BATHTUB", "BATTERY", "BEANS",
    "BEAVER", "BECAUSE", "BED", "BEER MUG", "BEETLE", "BEL", "BELL", "BETWEEN", "BICYCLE", "BIKINI",
    "BIRD", "BISON", "BLOSSOM", "BLOWFISH", "BOAR", "BOM", "BOMB", "BONE", "BOOK", "BOOKMARK",
    "BOOKS", "BOUQUET", "BOWLING", "BOWTIE", "BOY", "BPH", "BRAIN", "BREAD", "BREVE", "BRICK",
    "BRIEFS", "BROCCOLI", "BROOM", "BS", "BUBBLES", "BUCKET", "BUG", "BULLET", "BULLHORN",
    "BULLSEYE", "BURRITO", "BUS", "BUS STOP", "BUTTER", "CACTUS", "CADA UNA", "CADUCEUS",
    "CALENDAR", "CAMERA", "CAMPING", "CAN", "CANCEL", "CANCER", "CANDLE", "CANDY", "CANOE",
    "CARE OF", "CARET", "CARON", "CARROT", "CASTLE", "CAT", "CAT FACE", "CCH", "CEDILLA", "CERES",
    "CGJ", "CHAINS", "CHAIR", "CHERRIES", "CHESTNUT", "CHI RHO", "CHICKEN", "CHILD", "CHIPMUNK",
    "CHIRON", "CHURCH", "CINEMA", "CLOSE UP", "CLOUD", "COAT", "COCONUT", "COFFIN", "COIN", "COLON",
    "COMET", "COMMA", "COMPASS", "COOKIE", "COOKING", "CORAL", "COW", "COW FACE", "CR", "CRAB",
    "CRICKET", "CROWN", "CRUTCH", "CSI", "CUCUMBER", "CUPCAKE", "CUPIDO", "CUSTARD", "CUSTOMS",
    "CYCLONE", "DAGGER", "DANCER", "DANGO", "DC1", "DC2", "DC3", "DC4", "DCS", "DEER", "DEL",
    "DELETE", "DESERT", "DIVIDES", "DLE", "DOCUMENT", "DODO", "DOG", "DOG FACE", "DOLPHIN", "DOOR",
    "DOT PLUS", "DOUGHNUT", "DRAGON", "DRESS", "DROPLET", "DUCK", "DUMPLING", "DVD", "EAGLE", "EAR",
    "EARTH", "EGG", "ELEPHANT", "ELEVATOR", "ELF", "EM DASH", "EM QUAD", "EM SPACE", "EN DASH",
    "EN QUAD", "EN SPACE", "ENQ", "ENQUIRY", "ENVELOPE", "EOL", "EOM", "EOT", "EPA", "ESA", "ESC",
    "ESCAPE", "ETB", "ETX", "EXCESS", "EYE", "EYES", "FACTORY", "FAIRY", "FALAFEL", "FAMILY",
    "FAX ICON", "FEATHER", "FENCER", "FERRY", "FF", "FIRE", "FISH", "FISHEYE", "FLAMINGO",
    "FLATNESS", "FLOWER", "FLY", "FOG", "FOGGY", "FOLDER", "FONDUE", "FOOT", "FOR ALL", "FORCES",
    "FORKING", "FOUNTAIN", "FOX FACE", "FROWN", "FS", "FSI", "FUSE", "FVS1", "FVS2", "FVS3", "FVS4",
    "GAME DIE", "GARLIC", "GEAR", "GEMINI", "GENIE", "GHOST", "GIRL", "GLOVES", "GOAL NET", "GOAT",
    "GOGGLES", "GOLFER", "GORILLA", "GRAPES", "GS", "GUITAR", "HADES", "HAIRCUT", "HAMMER", "HAMSA",
    "HANDBAG", "HANDBALL", "HEDGEHOG", "HERB", "HIBISCUS", "HOCHO", "HOLE", "HONEYBEE", "HOOK",
    "HOP", "HORSE", "HOSPITAL", "HOT DOG", "HOTEL", "HOUSE", "HT", "HTJ", "HTS", "HUT", "HYGIEA",
    "HYPHEN", "ICE CUBE", "IMAGE OF", "IMP", "IND", "INDEX", "INFINITY", "INTEGRAL", "JAR", "JEANS",
    "JOIN", "JOYSTICK", "JUGGLING", "JUNO", "JUPITER", "KAABA", "KANGAROO", "KEY", "KEYBOARD",
    "KIMONO", "KIP SIGN", "KISS", "KITE", "KNOT", "KOALA", "KRONOS", "LAB COAT", "LABEL", "LADDER",
    "LEDGER", "LEG", "LEMON", "LEO", "LEOPARD", "LF", "LIBRA", "LIPS", "LIPSTICK", "LIZARD",
    "LLAMA", "LOBSTER", "LOCK", "LOLLIPOP", "LOTUS", "LOW LINE", "LOZENGE", "LRE", "LRI", "LRM",
    "LRO", "LUGGAGE", "LUNGS", "MACRON", "MAGE", "MAGNET", "MAMMOTH", "MAN", "MANGO", "MAXIMIZE",
    "MELON", "MEMO", "MERCURY", "METRO", "MICROBE", "MINIBUS", "MINIDISC", "MINIMIZE", "MINY",
    "MIRROR", "MMSP", "MODELS", "MONKEY", "MONORAIL", "MOSQUE", "MOSQUITO", "MOTORWAY", "MOUNTAIN",
    "MOUSE", "MOUTH", "MOYAI", "MULTIMAP", "MULTISET", "MUSHROOM", "MVS", "MW", "NABLA", "NAK",
    "NAND", "NBH", "NBSP", "NECKTIE", "NEL", "NEPTUNE", "NESSUS", "NEUTER", "NEW LINE", "NEWA OM",
    "NINJA", "NL", "NNBSP", "NO ENTRY", "NOR", "NOSE", "NOT SIGN", "NOT TRUE", "NOTE", "NOTE PAD",
    "NOTEBOOK", "NUL", "NULL", "OCR DASH", "OCR FORK", "OCR HOOK", "OCTOPUS", "ODEN", "OGONEK",
    "OHM SIGN", "OIL DRUM", "OLD KEY", "OLIVE", "ONION", "OPEN BOX", "OSC", "OTTER", "OVERLAP",
    "OVERLINE", "OWL", "OX", "OYSTER", "PACKAGE", "PAD", "PAGE", "PAGER", "PAGES", "PAGODA",
    "PALLAS", "PANCAKES", "PARROT", "PDF", "PDI", "PEACH", "PEACOCK", "PEANUTS", "PEAR", "PENCIL",
    "PENGUIN", "PER SIGN", "PHOLUS", "PICK", "PIE", "PIG", "PIG FACE", "PIG NOSE", "PILL", "PINATA",
    "PISCES", "PISTOL", "PLACARD", "PLD", "PLU", "PLUNGER", "PLUTO", "PM", "POODLE", "POPCORN",
    "POSEIDON", "POSTBOX", "POTATO", "POUCH", "PRECEDES", "PRETZEL", "PRIME", "PRINCE", "PRINCESS",
    "PRINTER", "PU1", "PU2", "PURSE", "PUSHPIN", "QUINCUNX", "RABBIT", "RACCOON", "RADIO", "RAIN",
    "RAINBOW", "RAM", "RAT", "RATIO", "RAZOR", "RECEIPT", "RESPONSE", "RESTROOM", "RI", "RIBBON",
    "RIFLE", "RING", "RLE", "RLI", "RLM", "RLO", "ROCK", "ROCKET", "ROOSTER", "ROSE", "ROSETTE",
    "ROWBOAT", "RS", "RUNNER", "SAILBOAT", "SALTIRE", "SANDWICH", "SARI", "SATURN", "SAUROPOD",
    "SCALES", "SCARF", "SCHOOL", "SCI", "SCOOTER", "SCORPION", "SCORPIUS", "SCREEN", "SCROLL",
    "SCRUPLE", "SEAL", "SEAT", "SECTOR", "SEDNA", "SEEDLING", "SEGMENT", "SELFIE", "SEXTILE", "SGC",
    "SHAMROCK", "SHARK", "SHEEP", "SHIELD", "SHIFT IN", "SHIP", "SHORTS", "SHOWER", "SHRIMP",
    "SHRUG", "SHY", "SI", "SKIER", "SKULL", "SKUNK", "SLED", "SLOPE", "SLOTH", "SMILE", "SNAIL",
    "SNAKE", "SNOWMAN", "SO", "SOCKS", "SOFTBALL", "SOH", "SOLIDUS", "SOM SIGN", "SOS", "SP", "SPA",
    "SPACE", "SPARKLE", "SPARKLES", "SPEAKER", "SPIDER", "SPONGE", "SPOON", "SQUID", "SS2", "SS3",
    "SSA", "ST", "STADIUM", "STATION", "STS", "STUPA", "STX", "SUB", "SUCCEEDS", "SUN", "SUNRISE",
    "SURFER", "SUSHI", "SWAN", "SWIMMER", "SYMMETRY", "SYN", "SYRINGE", "T-REX", "T-SHIRT", "TAB",
    "TACO", "TAMALE", "TAMIL OM", "TAURUS", "TAXI", "TEAPOT", "TENT", "TICKET", "TIGER", "TILDE",
    "TINY", "TOILET", "TOMATO", "TONGUE", "TOOLBOX", "TOOTH", "TOP HAT", "TRACTOR", "TRAIN", "TRAM",
    "TRAM CAR", "TRICOLON", "TROLL", "TROPHY", "TRUE", "TRUMPET", "TULIP", "TURKEY", "TURTLE",
    "UMBRELLA", "UNDERTIE", "UNION", "UP TACK", "URANUS", "US", "VAMPIRE", "VERSICLE", "VESTA",
    "VIOLIN", "VIRGO", "VOLCANO", "VT", "VTS", "VULCANUS", "WAFFLE", "WATCH", "WEDDING", "WHALE",
    "WHEEL", "WINDOW", "WJ", "WOMAN", "WON SIGN", "WOOD", "WORM", "WRENCH", "X-RAY", "XOR",
    "YEN SIGN", "YIN YANG", "YO-YO", "ZEUS", "ZOMBIE", "ZWJ", "ZWNBSP", "ZWNJ", "ZWSP",
];

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;
    use std::process::{Command, Stdio};

    /// Hand-picked patterns and whether Python 3.11 compiles them.
    const CASES: &[(&str, bool)] = &[
        // Rejected.
        ("[", false),
        ("(?<n>a)", false),
        ("\\p{L}", false),
        ("a{2,1}", false),
        ("*a", false),
        ("a**", false),
        ("x(?i)", false),
        ("(?<=a+)b", false),
        ("\\1", false),
        ("(", false),
        (")", false),
        ("a)", false),
        ("[z-a]", false),
        ("(?P<1>a)", false),
        ("(?P<a>x)(?P<a>y)", false),
        ("(?P=nope)", false),
        ("\\k", false),
        ("(?<=a|bc)", false),
        ("(?L)a", false),
        ("(?au)a", false),
        ("{1,2}x", false),
        ("a\\", false),
        ("\\", false),
        ("(a)\\2", false),
        ("(a\\1)", false),
        ("(?P<a>(?P=a))", false),
        ("[a-\\d]", false),
        ("[\\A]", false),
        ("[\\8]", false),
        ("\\8", false),
        ("\\400", false),
        ("[\\400]", false),
        ("\\x4", false),
        ("\\u12", false),
        ("\\U00110000", false),
        ("\\N", false),
        ("\\N{}", false),
        ("\\N{LATIN SMALL LETTER A", false),
        ("\\N{ab}", false),
        ("\\N{a_b}", false),
        ("(?(1)a|b|c)()", false),
        ("(?(2)a)()", false),
        ("(?(0)a)", false),
        ("(?(-1)a)()", false),
        ("(?(x)a)", false),
        ("(?a)(?u)", false),
        ("(?-a:x)", false),
        ("(?i-i:x)", false),
        ("(?t:x)", false),
        ("(?t)a*", false),
        ("(?i", false),
        ("(?-i)", false),
        ("(?#unterminated", false),
        ("(?P", false),
        ("(?Px)", false),
        ("(?<>a)", false),
        ("(?", false),
        ("(?z)", false),
        ("a{4294967295}", false),
        ("a{99999999999999999999}", false),
        ("(a)(?<=\\1*)", false),
        ("(?<=(a)\\1)", false),
        ("(?<=(?(1)a|bc))()", false),
        ("(a*)(?<=\\1)", false),
        ("(?<=a{4294967294}aa)", false),
        ("(?<=(?:a{65536}){65536})", false),
        ("(a)(?<=(?(1)b))", false),
        ("\\b*", false),
        ("^*", false),
        ("a|*", false),
        ("[^]", false),
        // Accepted.
        ("a{,3}", true),
        ("a{3,}", true),
        ("a{,}", true),
        ("x{", true),
        ("x{}", true),
        ("x{1,2", true),
        ("x{a}", true),
        ("(?i)abc", true),
        ("(?i:a)b", true),
        ("(?>a+)b", true),
        ("a++", true),
        ("a*?", true),
        ("a{1,2}+", true),
        ("[]a]", true),
        ("[^]]", true),
        ("[a-]", true),
        ("[-a]", true),
        ("[\\d-]", true),
        ("\\d+\\.\\d*", true),
        ("(?P<year>\\d{4})-(?P=year)", true),
        ("(a)(?(1)a|b)", true),
        ("(?P<n>a)(?(n)a)", true),
        ("(?(1)a)(b)", true),
        ("(?(+1)a)()", true),
        ("(?( 1 )a)()", true),
        ("(?(\u{0661})a)()", true),
        ("(?#c)x", true),
        ("(?#c)(?i)x", true),
        ("(?<=ab|cd)x", true),
        ("(?<!a{3})x", true),
        ("(a)(?<=\\1)", true),
        ("(ab)(?<=x\\1)", true),
        ("(?<=a{4294967294}a)", true),
        ("(?<=(?:a{0})*)", true),
        ("(?P<x>ab)(?<=(?P=x)c)", true),
        ("(a)(?<=(?(1)b|c))", true),
        ("(?<=(?:ab|cd){2})x", true),
        ("\\u00e9", true),
        ("\\U0001F600", true),
        ("\\x41", true),
        ("\\0", true),
        ("\\01", true),
        ("\\377", true),
        ("(a)\\1", true),
        ("[\\b]", true),
        ("[\\0-\\7]", true),
        ("\\N{EM DASH}", true),
        ("\\N{ox}", true),
        ("\\N{VS17}", true),
        ("(?x) a b # comment", true),
        ("(?x)[ ]\\ ", true),
        ("^[a-zA-Z0-9_-]{1,64}$", true),
        ("^\\+?[1-9]\\d{1,14}$", true),
        ("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", true),
        ("héllo wörld", true),
        ("日本語+", true),
        ("(?P<名前>x)(?P=名前)", true),
        ("😀{2}", true),
        ("", true),
        ("|", true),
        ("a||b", true),
        ("()", true),
        ("(?:)*", true),
        ("(?=a)*", true),
        ("\\Z\\A\\b\\B", true),
        ("(?a)\\w", true),
        ("(?u)\\w", true),
        ("(?a:(?u:x))", true),
        ("(?s-i:.)", true),
        ("(?t)a", true),
        ("a{4294967294}", true),
        ("\\\\", true),
        ("\\.", true),
        ("\\é", true),
        ("[[]", true),
        ("a\nb", true),
    ];

    #[test]
    fn hand_picked_cases() {
        for &(pattern, accepted) in CASES {
            let result = check_python_regex(pattern);
            assert_eq!(result.is_ok(), accepted, "{pattern:?}: {result:?}");
        }
    }

    #[test]
    fn messages_follow_python() {
        let expected = [
            ("*a", "nothing to repeat at position 0"),
            ("a**", "multiple repeat at position 2"),
            ("(?<n>a)", "unknown extension ?<n at position 1"),
            ("\\p{L}", "bad escape \\p at position 0"),
            ("[z-a]", "bad character range z-a at position 1"),
            (
                "(?P<a>x)(?P<a>y)",
                "redefinition of group name 'a' as group 2; was group 1 at position 12",
            ),
            (
                "x(?i)",
                "global flags not at the start of the expression at position 1",
            ),
            ("(?<=a+)b", "look-behind requires fixed-width pattern"),
            ("(?<=a{4294967294}aa)", "looks too much behind"),
            (
                "a\n(",
                "missing ), unterminated subpattern at position 2 (line 2, column 1)",
            ),
            ("a{99999999999}", "the repetition number is too large"),
            ("(?a)(?u)", "ASCII and UNICODE flags are incompatible"),
        ];
        for (pattern, message) in expected {
            assert_eq!(
                check_python_regex(pattern),
                Err(message.to_owned()),
                "{pattern:?}"
            );
        }
    }

    /// Python 3.11.7's limits (see `MAX_PARSE_DEPTH`), and inputs far beyond them.
    #[test]
    fn deep_nesting_is_rejected_without_recursion() {
        let nested =
            |open: &str, depth: usize| format!("{}{}", open.repeat(depth), ")".repeat(depth));
        assert!(check_python_regex(&nested("(", 495)).is_ok());
        assert!(check_python_regex(&nested("(", 496)).is_err());
        assert!(check_python_regex(&format!("(){}", nested("(?(1)", 991))).is_ok());
        assert!(check_python_regex(&format!("(){}", nested("(?(1)", 992))).is_err());
        assert!(check_python_regex(&nested("(", 100_000)).is_err());
        assert!(check_python_regex(&"(".repeat(100_000)).is_err());
    }

    /// xorshift64: a fixed, dependency-free pattern source.
    struct XorShift(u64);

    impl XorShift {
        fn below(&mut self, bound: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % bound as u64) as usize
        }
    }

    /// Pieces random patterns are made of: metacharacters (listed twice to weigh
    /// them up), the characters around them in extension syntax, and a few
    /// longer prefixes that reach deeper into the grammar.
    const PIECES: &[&str] = &[
        "(", ")", "[", "]", "{", "}", "*", "+", "?", "|", "^", "$", ".", "\\", //
        "(", ")", "[", "]", "{", "}", "*", "+", "?", "|", "^", "$", ".", "\\", //
        "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", ",", "-", ":", "=", "!", "<", //
        ">", "P", "a", "b", "i", "x", "L", "u", "d", "w", "s", "N", "k", "p", "#", " ", //
        "(?", "(?P<", "(?<=", "(?(1)", "\\N{", "{1,2}", "(?P=",
    ];

    fn random_pattern(rng: &mut XorShift) -> String {
        let length = rng.below(13);
        let mut pattern = String::new();
        while pattern.chars().count() < length {
            pattern.push_str(PIECES[rng.below(PIECES.len())]);
        }
        pattern.chars().take(length).collect()
    }

    /// Builds patterns from sre's grammar, mostly well-formed, so that the
    /// checks only well-formed patterns reach (look-behind widths, group
    /// references, conditionals, flags) get exercised too.
    struct StructuredPattern<'r> {
        rng: &'r mut XorShift,
        pattern: String,
        groups: usize,
        closed_groups: Vec<usize>,
        names: Vec<String>,
    }

    impl StructuredPattern<'_> {
        fn generate(rng: &mut XorShift) -> String {
            let mut builder = StructuredPattern {
                rng,
                pattern: String::new(),
                groups: 0,
                closed_groups: Vec::new(),
                names: Vec::new(),
            };
            builder.sequence(0, false);
            builder.pattern
        }

        fn push_one_of(&mut self, options: &[&str]) {
            let choice = options[self.rng.below(options.len())];
            self.pattern.push_str(choice);
        }

        fn sequence(&mut self, depth: usize, in_lookbehind: bool) {
            for _ in 0..=self.rng.below(3) {
                match self.rng.below(if depth > 3 { 6 } else { 12 }) {
                    0 => self.push_one_of(&[
                        "a",
                        "é",
                        "\\d",
                        ".",
                        "\\x41",
                        "\\0",
                        "\\N{OX}",
                        "\\N{EM DASH}",
                        "ab",
                    ]),
                    1 => self.push_one_of(&[
                        "[ab]",
                        "[^a]",
                        "[a-c]",
                        "[\\d-]",
                        "[]]",
                        "[\\N{DIGIT ONE}-\\N{DIGIT NINE}]",
                    ]),
                    2 => self.push_one_of(&[
                        "^", "$", "\\b", "\\A", "(?i)", "(?x)", "(?a)", "(?t)", "(?u)",
                    ]),
                    3 if !self.closed_groups.is_empty() => {
                        let group = self.closed_groups[self.rng.below(self.closed_groups.len())];
                        self.pattern.push_str(&format!("\\{group}"));
                    }
                    4 if !self.names.is_empty() => {
                        let name = self.names[self.rng.below(self.names.len())].clone();
                        self.pattern.push_str(&format!("(?P={name})"));
                    }
                    3..=5 => self.push_one_of(&["b", "\\1", "(?P=n0)"]),
                    _ => self.group(depth, in_lookbehind),
                }
                if self.rng.below(if in_lookbehind { 5 } else { 3 }) == 0 {
                    self.push_one_of(&[
                        "*", "+", "?", "{2}", "{1,3}", "{,2}", "{3,}", "*?", "++", "{2}?", "{0}",
                        "{1,1}",
                    ]);
                }
            }
        }

        fn group(&mut self, depth: usize, in_lookbehind: bool) {
            let openers = [
                "(", "(?:", "(?P<", "(?=", "(?!", "(?<=", "(?<!", "(?>", "(?i:", "(?-i:", "(?x:",
                "(?(", "(?#c)",
            ];
            let opener = openers[self.rng.below(openers.len())];
            let mut capture = None;
            match opener {
                "(?#c)" => {
                    self.pattern.push_str(opener);
                    return;
                }
                "(" | "(?P<" => {
                    self.groups += 1;
                    capture = Some(self.groups);
                    self.pattern.push_str(opener);
                    if opener == "(?P<" {
                        // Names repeat now and then, to hit redefinitions.
                        let name = format!("n{}", self.rng.below(self.names.len() + 1));
                        self.pattern.push_str(&format!("{name}>"));
                        self.names.push(name);
                    }
                }
                "(?(" => {
                    let condition = match self.names.len() {
                        named if named > 0 && self.rng.below(3) == 0 => {
                            self.names[self.rng.below(named)].clone()
                        }
                        _ => (1 + self.rng.below(self.groups + 1)).to_string(),
                    };
                    self.pattern.push_str(&format!("(?({condition})"));
                }
                _ => self.pattern.push_str(opener),
            }
            let in_lookbehind = in_lookbehind || opener.starts_with("(?<");
            self.sequence(depth + 1, in_lookbehind);
            if self.rng.below(3) == 0 {
                self.pattern.push('|');
                self.sequence(depth + 1, in_lookbehind);
            }
            self.pattern.push(')');
            self.closed_groups.extend(capture);
        }
    }

    fn json_string(text: &str) -> String {
        let mut json = String::from("\"");
        for c in text.chars() {
            match c {
                '"' => json.push_str("\\\""),
                '\\' => json.push_str("\\\\"),
                _ if u32::from(c) < 0x20 => {
                    let _ = write!(json, "\\u{:04x}", u32::from(c));
                }
                _ => json.push(c),
            }
        }
        json.push('"');
        json
    }

    /// Runs `re.compile` on each pattern in python3 (from module level, so at
    /// the same stack depth as the measurements behind `MAX_PARSE_DEPTH`);
    /// yields `None` for accepted patterns and the exception name otherwise.
    fn python_verdicts(patterns: &[String]) -> Vec<Option<String>> {
        const SCRIPT: &str = r#"
import json, re, sys, warnings
warnings.simplefilter("ignore")
verdicts = []
for line in sys.stdin.buffer.read().split(b"\n")[:-1]:
    try:
        re.compile(json.loads(line.decode("utf-8")))
        verdicts.append("ok")
    except Exception as exc:
        verdicts.append(type(exc).__name__)
sys.stdout.write("\n".join(verdicts) + "\n")
"#;
        let mut child = Command::new("python3")
            .args(["-c", SCRIPT])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 must be installed to check agreement with Python's re");
        let mut input = String::new();
        for pattern in patterns {
            input.push_str(&json_string(pattern));
            input.push('\n');
        }
        let mut stdin = child.stdin.take().expect("piped stdin");
        let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
        let output = child.wait_with_output().expect("python3 runs");
        writer
            .join()
            .expect("writer thread")
            .expect("write patterns to python3");
        assert!(output.status.success(), "python3 failed");
        let verdicts: Vec<Option<String>> = String::from_utf8(output.stdout)
            .expect("UTF-8 output")
            .lines()
            .map(|line| (line != "ok").then(|| line.to_owned()))
            .collect();
        assert_eq!(verdicts.len(), patterns.len(), "one verdict per pattern");
        verdicts
    }

    fn assert_agreement(seed: u64, random_count: usize, structured_count: usize) {
        let mut rng = XorShift(seed);
        let mut patterns: Vec<String> = (0..random_count)
            .map(|_| random_pattern(&mut rng))
            .collect();
        patterns.extend((0..structured_count).map(|_| StructuredPattern::generate(&mut rng)));
        patterns.extend(CASES.iter().map(|&(pattern, _)| pattern.to_owned()));
        let nested =
            |open: &str, depth: usize| format!("{}{}", open.repeat(depth), ")".repeat(depth));
        patterns.extend([
            nested("(", 495),
            nested("(", 496),
            format!("(){}", nested("(?(1)", 991)),
            format!("(){}", nested("(?(1)", 992)),
            format!("(){}{}", "((?(1)".repeat(330), "))".repeat(330)),
            format!("(){}{}", "((?(1)".repeat(331), "))".repeat(331)),
        ]);
        let verdicts = python_verdicts(&patterns);
        let mut disagreements = Vec::new();
        let mut accepted = 0;
        for (pattern, python) in patterns.iter().zip(&verdicts) {
            let rust = check_python_regex(pattern);
            accepted += usize::from(python.is_none());
            if rust.is_ok() != python.is_none() {
                disagreements.push(format!("{pattern:?}: python {python:?}, rust {rust:?}"));
            }
        }
        let rejected = patterns.len() - accepted;
        println!(
            "seed {seed}: {} patterns, {accepted} accepted, {rejected} rejected",
            patterns.len()
        );
        assert!(
            disagreements.is_empty(),
            "{} disagreements, first ones:\n{}",
            disagreements.len(),
            disagreements[..disagreements.len().min(20)].join("\n")
        );
        assert!(
            accepted * 5 >= patterns.len(),
            "too few accepted patterns: {accepted}"
        );
        assert!(
            rejected * 5 >= patterns.len(),
            "too few rejected patterns: {rejected}"
        );
    }

    #[test]
    fn agrees_with_python_re_compile() {
        assert_agreement(0x5eed_1234_abcd_0001, 20_000, 10_000);
    }
}
