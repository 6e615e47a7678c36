//! A SentencePiece BPE model, decoded from its protobuf file and run inside the
//! `tokenizers` pipeline with SentencePiece's own encoding rules.
//!
//! Why not `tokenizers::models::bpe::BPE`: SentencePiece ranks a merge by the
//! score of the piece it produces and breaks ties by position (leftmost first).
//! The Mistral v3 model gives every whitespace-only piece the same score, so a
//! rank-per-pair BPE merges runs of spaces differently. This model reproduces
//! `bpe_model.cc` exactly; the `tokenizers` normalizer and pre-tokenizer around
//! it reproduce the dummy prefix, whitespace escaping and word splitting.

use std::collections::HashMap;
use std::sync::RwLock;

use tokenizers::tokenizer::{
    Model, NormalizedString, PreTokenizedString, PreTokenizer, Result as TkResult, Token,
};

use super::error::TokenizerLoadError;

/// The piece SentencePiece substitutes for a space.
pub const SPACE_SYMBOL: char = '\u{2581}';

/// Kinds of pieces, as numbered in `sentencepiece_model.proto`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PieceType {
    Normal,
    Unknown,
    Control,
    UserDefined,
    Unused,
    Byte,
}

impl PieceType {
    fn from_proto(value: u64) -> Option<Self> {
        Some(match value {
            1 => Self::Normal,
            2 => Self::Unknown,
            3 => Self::Control,
            4 => Self::UserDefined,
            5 => Self::Unused,
            6 => Self::Byte,
            _ => return None,
        })
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Piece {
    pub text: String,
    pub score: f32,
    pub kind: PieceType,
}

/// The parts of a SentencePiece `ModelProto` that encoding depends on.
#[derive(Clone, Debug)]
pub struct ModelProto {
    pub pieces: Vec<Piece>,
    pub model_type: u64,
    pub byte_fallback: bool,
    pub treat_whitespace_as_suffix: bool,
    pub unk_id: u32,
    pub bos_id: u32,
    pub eos_id: u32,
    pub normalizer_name: String,
    pub precompiled_charsmap_len: usize,
    pub add_dummy_prefix: bool,
    pub remove_extra_whitespaces: bool,
    pub escape_whitespaces: bool,
}

const MODEL_TYPE_BPE: u64 = 2;

/// A minimal protobuf wire-format reader: varints, fixed32/64 and
/// length-delimited fields are all `ModelProto` uses.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

enum Field<'a> {
    Varint(u64),
    Fixed32(u32),
    Fixed64,
    Bytes(&'a [u8]),
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self
                .buf
                .get(self.pos)
                .ok_or_else(|| format!("truncated varint at byte {}", self.pos))?;
            self.pos += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(format!("varint longer than 10 bytes at byte {}", self.pos))
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(len)
            .filter(|end| *end <= self.buf.len())
            .ok_or_else(|| {
                format!(
                    "field of {len} bytes runs past the end at byte {}",
                    self.pos
                )
            })?;
        let bytes = &self.buf[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    fn next(&mut self) -> Result<Option<(u64, Field<'a>)>, String> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let field = match key & 7 {
            0 => Field::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Field::Fixed64
            }
            2 => {
                let len = usize::try_from(self.varint()?).map_err(|e| e.to_string())?;
                Field::Bytes(self.take(len)?)
            }
            5 => {
                let b = self.take(4)?;
                Field::Fixed32(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            }
            wire => return Err(format!("unsupported wire type {wire} at byte {}", self.pos)),
        };
        Ok(Some((key >> 3, field)))
    }
}

fn utf8(bytes: &[u8], what: &str) -> Result<String, String> {
    String::from_utf8(bytes.to_vec()).map_err(|_| format!("{what} is not valid UTF-8"))
}

impl ModelProto {
    /// Decodes a serialized `ModelProto`.
    pub fn decode(bytes: &[u8]) -> Result<Self, TokenizerLoadError> {
        Self::decode_inner(bytes).map_err(TokenizerLoadError::Malformed)
    }

    fn decode_inner(bytes: &[u8]) -> Result<Self, String> {
        // Defaults are the proto2 defaults of sentencepiece_model.proto.
        let mut model = ModelProto {
            pieces: Vec::new(),
            model_type: 1,
            byte_fallback: false,
            treat_whitespace_as_suffix: false,
            unk_id: 0,
            bos_id: 1,
            eos_id: 2,
            normalizer_name: String::new(),
            precompiled_charsmap_len: 0,
            add_dummy_prefix: true,
            remove_extra_whitespaces: true,
            escape_whitespaces: true,
        };
        let mut reader = Reader::new(bytes);
        while let Some((number, field)) = reader.next()? {
            match (number, field) {
                (1, Field::Bytes(b)) => model.pieces.push(Self::decode_piece(b)?),
                (2, Field::Bytes(b)) => model.decode_trainer_spec(b)?,
                (3, Field::Bytes(b)) => model.decode_normalizer_spec(b)?,
                _ => {}
            }
        }
        Ok(model)
    }

    fn decode_piece(bytes: &[u8]) -> Result<Piece, String> {
        let mut piece = Piece {
            text: String::new(),
            score: 0.0,
            kind: PieceType::Normal,
        };
        let mut reader = Reader::new(bytes);
        while let Some((number, field)) = reader.next()? {
            match (number, field) {
                (1, Field::Bytes(b)) => piece.text = utf8(b, "a piece")?,
                (2, Field::Fixed32(bits)) => piece.score = f32::from_bits(bits),
                (3, Field::Varint(v)) => {
                    piece.kind =
                        PieceType::from_proto(v).ok_or_else(|| format!("unknown piece type {v}"))?
                }
                _ => {}
            }
        }
        Ok(piece)
    }

    fn decode_trainer_spec(&mut self, bytes: &[u8]) -> Result<(), String> {
        let mut reader = Reader::new(bytes);
        while let Some((number, field)) = reader.next()? {
            if let Field::Varint(v) = field {
                match number {
                    3 => self.model_type = v,
                    24 => self.treat_whitespace_as_suffix = v != 0,
                    35 => self.byte_fallback = v != 0,
                    40 => self.unk_id = v as u32,
                    41 => self.bos_id = v as u32,
                    42 => self.eos_id = v as u32,
                    _ => {}
                }
            }
        }
        Ok(())
    }

    fn decode_normalizer_spec(&mut self, bytes: &[u8]) -> Result<(), String> {
        let mut reader = Reader::new(bytes);
        while let Some((number, field)) = reader.next()? {
            match (number, field) {
                (1, Field::Bytes(b)) => self.normalizer_name = utf8(b, "the normalizer name")?,
                (2, Field::Bytes(b)) => self.precompiled_charsmap_len = b.len(),
                (3, Field::Varint(v)) => self.add_dummy_prefix = v != 0,
                (4, Field::Varint(v)) => self.remove_extra_whitespaces = v != 0,
                (5, Field::Varint(v)) => self.escape_whitespaces = v != 0,
                _ => {}
            }
        }
        Ok(())
    }

    /// Rejects models whose encoding rules this implementation does not reproduce,
    /// rather than tokenizing them subtly wrong.
    pub fn check_supported(&self) -> Result<(), TokenizerLoadError> {
        let unsupported = |what: String| Err(TokenizerLoadError::Unsupported(what));
        if self.pieces.is_empty() {
            return Err(TokenizerLoadError::Malformed(
                "the model has no pieces".into(),
            ));
        }
        if self.model_type != MODEL_TYPE_BPE {
            return unsupported(format!(
                "model type {} (only BPE, 2, is supported)",
                self.model_type
            ));
        }
        if !matches!(self.normalizer_name.as_str(), "identity" | "")
            || self.precompiled_charsmap_len != 0
        {
            return unsupported(format!("normalizer '{}'", self.normalizer_name));
        }
        if self.remove_extra_whitespaces || !self.escape_whitespaces {
            return unsupported("whitespace normalization other than escaping".into());
        }
        if self.treat_whitespace_as_suffix || !self.add_dummy_prefix {
            return unsupported("whitespace as suffix or no dummy prefix".into());
        }
        if !self.byte_fallback {
            return unsupported("models without byte fallback".into());
        }
        for id in [self.unk_id, self.bos_id, self.eos_id] {
            if id as usize >= self.pieces.len() {
                return Err(TokenizerLoadError::Malformed(format!(
                    "special id {id} is outside the vocabulary"
                )));
            }
        }
        Ok(())
    }
}

/// Splits normalized text the way SentencePiece's `SplitIntoWords` does with
/// `allow_whitespace_only_pieces`: a word is a run of spaces followed by the
/// non-space characters after it. No piece of the model crosses such a
/// boundary (checked at load), so encoding word by word is exact, and it lets
/// repeated words hit the cache.
#[derive(Clone, Copy, Debug, Default)]
pub struct SentencePieceWords;

/// Byte ranges of the words of `text`, as defined on [`SentencePieceWords`].
pub fn word_ranges(text: &str) -> impl Iterator<Item = (usize, usize)> + '_ {
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    std::iter::from_fn(move || {
        let mut in_space_run = true;
        for (index, ch) in chars.by_ref() {
            let is_space = ch == SPACE_SYMBOL;
            if index > start && is_space && !in_space_run {
                let range = (start, index);
                start = index;
                return Some(range);
            }
            if !is_space {
                in_space_run = false;
            }
        }
        (start < text.len()).then(|| {
            let range = (start, text.len());
            start = text.len();
            range
        })
    })
}

impl PreTokenizer for SentencePieceWords {
    fn pre_tokenize(&self, pretokenized: &mut PreTokenizedString) -> TkResult<()> {
        pretokenized.split(|_, normalized: NormalizedString| {
            let text = normalized.get().to_owned();
            Ok(word_ranges(&text)
                .filter_map(|(start, end)| {
                    normalized.slice(tokenizers::tokenizer::normalizer::Range::Normalized(
                        start..end,
                    ))
                })
                .collect::<Vec<_>>())
        })
    }
}

/// SentencePiece's BPE encoder (`bpe_model.cc`) as a `tokenizers` model.
pub struct SentencePieceBpe {
    /// Normal, user-defined and unused pieces: the ones merges may produce.
    mergeable: HashMap<String, (u32, f32)>,
    user_defined: Vec<String>,
    vocab: Vec<Piece>,
    vocab_index: HashMap<String, u32>,
    byte_ids: [u32; 256],
    unk_id: u32,
    cache: RwLock<HashMap<String, Vec<u32>>>,
}

/// Words longer than this are not cached, so one huge unbroken word cannot
/// pin memory.
const CACHE_MAX_WORD_BYTES: usize = 256;
const CACHE_MAX_ENTRIES: usize = 100_000;

impl SentencePieceBpe {
    pub fn new(proto: &ModelProto) -> Result<Self, TokenizerLoadError> {
        proto.check_supported()?;
        let mut mergeable = HashMap::new();
        let mut user_defined = Vec::new();
        let mut vocab_index = HashMap::new();
        let mut byte_ids = [u32::MAX; 256];
        for (id, piece) in proto.pieces.iter().enumerate() {
            let id = id as u32;
            vocab_index.entry(piece.text.clone()).or_insert(id);
            match piece.kind {
                PieceType::Normal | PieceType::UserDefined | PieceType::Unused => {
                    mergeable.insert(piece.text.clone(), (id, piece.score));
                    if piece.kind == PieceType::UserDefined {
                        user_defined.push(piece.text.clone());
                    }
                    // Word-by-word encoding is exact only if no piece joins a
                    // non-space character to a following space.
                    let mut prev_is_word_char = false;
                    for ch in piece.text.chars() {
                        if ch == SPACE_SYMBOL && prev_is_word_char {
                            return Err(TokenizerLoadError::Unsupported(format!(
                                "piece {id} ('{}') spans a word boundary",
                                piece.text
                            )));
                        }
                        prev_is_word_char = ch != SPACE_SYMBOL;
                    }
                }
                PieceType::Byte => {
                    let byte = parse_byte_piece(&piece.text).ok_or_else(|| {
                        TokenizerLoadError::Malformed(format!(
                            "byte piece {id} is '{}', not <0xNN>",
                            piece.text
                        ))
                    })?;
                    byte_ids[byte as usize] = id;
                }
                PieceType::Unknown | PieceType::Control => {}
            }
        }
        if let Some(missing) = byte_ids.iter().position(|id| *id == u32::MAX) {
            return Err(TokenizerLoadError::Malformed(format!(
                "byte fallback is on but there is no piece for byte 0x{missing:02X}"
            )));
        }
        // Longest first, so the prefix match below is the longest match.
        user_defined.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Ok(Self {
            mergeable,
            user_defined,
            vocab: proto.pieces.clone(),
            vocab_index,
            byte_ids,
            unk_id: proto.unk_id,
            cache: RwLock::new(HashMap::new()),
        })
    }

    /// Encodes one word (already normalized) into ids, appending to `out`.
    pub fn encode_word(&self, word: &str, out: &mut Vec<u32>) {
        let cacheable = word.len() <= CACHE_MAX_WORD_BYTES;
        if cacheable
            && let Ok(cache) = self.cache.read()
            && let Some(ids) = cache.get(word)
        {
            out.extend_from_slice(ids);
            return;
        }
        let start = out.len();
        self.encode_uncached(word, out);
        // A contended or full cache is skipped, never waited on.
        if cacheable
            && let Ok(mut cache) = self.cache.try_write()
            && cache.len() < CACHE_MAX_ENTRIES
        {
            cache.insert(word.to_owned(), out[start..].to_vec());
        }
    }

    fn encode_uncached(&self, word: &str, out: &mut Vec<u32>) {
        #[derive(Clone, Copy)]
        struct Symbol {
            prev: Option<usize>,
            next: Option<usize>,
            start: usize,
            len: usize,
            frozen: bool,
        }
        #[derive(PartialEq)]
        struct Candidate {
            score: f32,
            left: usize,
            right: usize,
            size: usize,
        }
        impl Eq for Candidate {}
        impl Ord for Candidate {
            // Highest score first; on a tie, the leftmost pair.
            fn cmp(&self, other: &Self) -> std::cmp::Ordering {
                self.score
                    .total_cmp(&other.score)
                    .then_with(|| other.left.cmp(&self.left))
            }
        }
        impl PartialOrd for Candidate {
            fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
                Some(self.cmp(other))
            }
        }

        let mut symbols: Vec<Symbol> = Vec::with_capacity(word.len());
        let mut pos = 0;
        while pos < word.len() {
            let rest = &word[pos..];
            let (len, frozen) = match self
                .user_defined
                .iter()
                .find(|u| rest.starts_with(u.as_str()))
            {
                Some(u) => (u.len(), true),
                None => (rest.chars().next().map_or(1, char::len_utf8), false),
            };
            let index = symbols.len();
            symbols.push(Symbol {
                prev: index.checked_sub(1),
                next: None,
                start: pos,
                len,
                frozen,
            });
            if index > 0 {
                symbols[index - 1].next = Some(index);
            }
            pos += len;
        }

        let mut agenda = std::collections::BinaryHeap::new();
        let try_pair = |agenda: &mut std::collections::BinaryHeap<Candidate>,
                        symbols: &[Symbol],
                        left: Option<usize>,
                        right: Option<usize>| {
            let (Some(left), Some(right)) = (left, right) else {
                return;
            };
            let (l, r) = (symbols[left], symbols[right]);
            if l.frozen || r.frozen {
                return;
            }
            let size = l.len + r.len;
            if let Some((_, score)) = self.mergeable.get(&word[l.start..l.start + size]) {
                agenda.push(Candidate {
                    score: *score,
                    left,
                    right,
                    size,
                });
            }
        };
        for i in 1..symbols.len() {
            try_pair(&mut agenda, &symbols, Some(i - 1), Some(i));
        }
        while let Some(top) = agenda.pop() {
            let (l, r) = (symbols[top.left], symbols[top.right]);
            // Stale: one side was merged away or grew since this pair was queued.
            if l.len == 0 || r.len == 0 || l.len + r.len != top.size {
                continue;
            }
            symbols[top.left].len += r.len;
            symbols[top.right].len = 0;
            symbols[top.left].next = r.next;
            if let Some(next) = r.next {
                symbols[next].prev = Some(top.left);
            }
            try_pair(&mut agenda, &symbols, l.prev, Some(top.left));
            try_pair(&mut agenda, &symbols, Some(top.left), r.next);
        }

        let mut cursor = if symbols.is_empty() { None } else { Some(0) };
        while let Some(i) = cursor {
            let s = symbols[i];
            let text = &word[s.start..s.start + s.len];
            match self.mergeable.get(text) {
                Some((id, _)) => out.push(*id),
                None => out.extend(text.bytes().map(|b| self.byte_ids[b as usize])),
            }
            cursor = s.next;
        }
    }

    pub fn pieces(&self) -> &[Piece] {
        &self.vocab
    }

    pub fn unk_id(&self) -> u32 {
        self.unk_id
    }
}

fn parse_byte_piece(text: &str) -> Option<u8> {
    let hex = text.strip_prefix("<0x")?.strip_suffix('>')?;
    (hex.len() == 2).then(|| u8::from_str_radix(hex, 16).ok())?
}

impl Model for SentencePieceBpe {
    type Trainer = tokenizers::models::bpe::BpeTrainer;

    fn tokenize(&self, sequence: &str) -> TkResult<Vec<Token>> {
        let mut ids = Vec::new();
        self.encode_word(sequence, &mut ids);
        // Offsets are not tracked piece by piece; every token spans the word.
        Ok(ids
            .into_iter()
            .map(|id| {
                Token::new(
                    id,
                    self.vocab[id as usize].text.clone(),
                    (0, sequence.len()),
                )
            })
            .collect())
    }

    fn token_to_id(&self, token: &str) -> Option<u32> {
        self.vocab_index.get(token).copied()
    }

    fn id_to_token(&self, id: u32) -> Option<String> {
        self.vocab.get(id as usize).map(|p| p.text.clone())
    }

    fn get_vocab(&self) -> HashMap<String, u32> {
        self.vocab_index.clone()
    }

    fn get_vocab_size(&self) -> usize {
        self.vocab.len()
    }

    fn save(
        &self,
        _folder: &std::path::Path,
        _prefix: Option<&str>,
    ) -> TkResult<Vec<std::path::PathBuf>> {
        Err("a SentencePiece model is saved as its original .model file".into())
    }

    fn get_trainer(&self) -> Self::Trainer {
        tokenizers::models::bpe::BpeTrainer::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<&str> {
        word_ranges(text).map(|(s, e)| &text[s..e]).collect()
    }

    #[test]
    fn words_keep_space_runs_with_the_next_word() {
        assert_eq!(words("▁a▁▁▁b▁c"), ["▁a", "▁▁▁b", "▁c"]);
        assert_eq!(words("▁▁"), ["▁▁"]);
        assert_eq!(words("ab▁"), ["ab", "▁"]);
        assert_eq!(words(""), Vec::<&str>::new());
        assert_eq!(words("▁x▁▁"), ["▁x", "▁▁"]);
    }

    #[test]
    fn decoder_reports_truncation() {
        // Field 1, length-delimited, claims 5 bytes but has 1.
        let err = ModelProto::decode(&[0x0a, 0x05, 0x01]).unwrap_err();
        assert!(err.to_string().contains("runs past the end"), "{err}");
    }

    #[test]
    fn byte_pieces_parse() {
        assert_eq!(parse_byte_piece("<0x0A>"), Some(10));
        assert_eq!(parse_byte_piece("<0xFF>"), Some(255));
        assert_eq!(parse_byte_piece("<0x1>"), None);
        assert_eq!(parse_byte_piece("0x10"), None);
    }
}
