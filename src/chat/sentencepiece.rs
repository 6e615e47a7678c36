//! A SentencePiece BPE model, decoded from its protobuf file and run inside the
//! `tokenizers` pipeline with SentencePiece's own encoding rules.
//!
//! Why not `tokenizers::models::bpe::BPE`: SentencePiece ranks a merge by the
//! score of the piece it produces and breaks ties by position (leftmost first).
//! The Mistral v3 model gives every whitespace-only piece the same score, so a
//! rank-per-pair BPE merges runs of spaces differently. This model reproduces
//! `bpe_model.cc` exactly; the `tokenizers` normalizer and pre-tokenizer around
//! it reproduce the dummy prefix, whitespace escaping and word splitting.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{RwLock, RwLockReadGuard};

use rustc_hash::FxHashMap;
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
///
/// `bpe_model.cc` repeatedly merges the adjacent pair of symbols whose
/// concatenation is a piece with the highest score, leftmost first on ties.
/// This runs the same rule on piece ids instead of strings:
///
/// - A symbol is named by a *symbol id*: the id of its piece, or
///   `CHAR_TAG | char` for a single character that is not a piece (such a
///   character is emitted as bytes unless it merges). Ids and strings are in
///   one-to-one correspondence because piece strings are unique (checked at
///   load, as SentencePiece does).
/// - `pairs` maps two symbol ids to the piece their concatenation spells, for
///   every split of every normal piece into two halves that can be symbols:
///   a single character (a piece or not) or a normal piece. No other symbol
///   can arise: initial symbols are single characters or user-defined pieces,
///   and merged symbols are pieces. User-defined pieces are frozen, so their
///   ids are never keys, and no merge can spell one: where the text starts
///   with a user-defined piece the initial split already took it (longest
///   match) as one frozen symbol. Hence `pairs` answers "is this
///   concatenation a mergeable piece" exactly as SentencePiece's string
///   lookup does, for every pair the algorithm can meet.
/// - Scores become ranks (0 = highest score; equal scores share a rank), so
///   the agenda's order is the order of (rank, position).
pub struct SentencePieceBpe {
    /// Symbol ids of ASCII characters.
    ascii_ids: [u32; 128],
    /// The merge of each pair of ASCII characters (`NONE` if none), indexed
    /// by `left * 128 + right`: most initial pairs, without hashing.
    ascii_pairs: Box<[u32]>,
    /// Symbol ids of the other characters that are normal pieces; any other
    /// character's id is `CHAR_TAG | char`. Only the model's characters are
    /// ever inserted; the input only looks up, so it cannot lengthen probes.
    char_ids: FxHashMap<char, u32>,
    /// (left, right) → (merged, rank). The keys are the model's own ids,
    /// fixed at load and never chosen by the input, so a fast unkeyed hash
    /// cannot be steered into collisions.
    pairs: PairTable,
    /// Per piece id: the rank of its score among normal pieces.
    ranks: Vec<u32>,
    /// Per piece id: how many initial symbols it covers (its characters for a
    /// normal piece, one for a user-defined piece). Read for every symbol, so
    /// kept small enough to stay in cache.
    spans: Vec<u16>,
    /// Distinct ranks, for choosing and sizing the sort of initial pairs.
    rank_count: usize,
    /// Sizes that choose between equivalent agenda strategies; they change
    /// the speed, never the result (tests lower them to run every path).
    sort_min_pairs: usize,
    heap_min_limit: usize,
    /// Words of fewer initial symbols than this queue no pairs in
    /// [`Buckets`], whose index by rank costs a pass over every rank.
    bucket_min_symbols: usize,
    /// A word longer than `segment_bytes + segment_lookahead` is encoded in
    /// segments of about `segment_bytes`, each cut where a run that sees
    /// `segment_lookahead` more bytes puts a token boundary (see
    /// [`Self::encode_in_segments`]); tests lower them to cut often.
    segment_bytes: usize,
    segment_lookahead: usize,
    /// The longest user-defined piece, in bytes: how far past a cut the
    /// initial split looks.
    max_user_defined_bytes: usize,
    /// User-defined pieces with their ids, longest first, and a mark on the
    /// bytes they can start with so most positions skip the prefix match.
    user_defined: Vec<(String, u32)>,
    user_defined_first_bytes: [bool; 256],
    vocab: Vec<Piece>,
    vocab_index: HashMap<String, u32>,
    byte_ids: [u32; 256],
    unk_id: u32,
    cache: RwLock<HashMap<String, Vec<u32>>>,
    /// Hashes of recently encoded uncached words, one per slot: a word is
    /// cached when it is met a second time, so text of novel words does not
    /// pay for (and fill the cache with) entries that are never used again.
    seen: Box<[AtomicU64]>,
    /// Keyed at random, as the input chooses the words.
    seen_hasher: RandomState,
}

/// Encodes words one after another with the word cache read-locked across
/// a run of cache hits, not locked again for every word: taking a read lock
/// writes to the lock, and threads encoding at the same time would pass
/// that cache line between their CPUs on every word. The lock is let go
/// before a word is encoded the slow way, so other threads can add words
/// meanwhile, and a word is added only if the write lock is free: a
/// contended or full cache is skipped, never waited on.
pub struct WordEncoder<'m> {
    model: &'m SentencePieceBpe,
    cache: Option<RwLockReadGuard<'m, HashMap<String, Vec<u32>>>>,
}

impl WordEncoder<'_> {
    /// Encodes one word (already normalized) into ids, appending to `out`.
    pub fn encode_word(&mut self, word: &str, out: &mut Vec<u32>) {
        let model = self.model;
        let cacheable = word.len() <= CACHE_MAX_WORD_BYTES;
        if cacheable {
            if self.cache.is_none() {
                self.cache = model.cache.read().ok();
            }
            if let Some(ids) = self.cache.as_ref().and_then(|cache| cache.get(word)) {
                out.extend_from_slice(ids);
                return;
            }
        }
        self.cache = None;
        let start = out.len();
        model.encode_uncached(word, out);
        if cacheable
            && model.seen_before(word)
            && let Ok(mut cache) = model.cache.try_write()
            && cache.len() < CACHE_MAX_ENTRIES
        {
            cache.insert(word.to_owned(), out[start..].to_vec());
        }
    }
}

/// Words longer than this are not cached, so one huge unbroken word cannot
/// pin memory.
const CACHE_MAX_WORD_BYTES: usize = 256;
const CACHE_MAX_ENTRIES: usize = 100_000;
const SEEN_SLOTS: usize = 4096;

/// A long word's segments: small enough that a segment's symbols, agenda and
/// merge history stay in cache (their size: docs/tokenizer-cliffs.md), large
/// enough that the lookahead each one encodes twice is 1/64 of it and the
/// counting sort's pass over the ranks is amortized.
const SEGMENT_BYTES: usize = 64 << 10;
const SEGMENT_LOOKAHEAD: usize = 1 << 10;

/// The merges, by pair of symbol ids. When every id and rank a merge involves
/// fits in 16 bits (the Mistral model: 32,768 pieces, no character inside a
/// piece that is not a piece itself) an entry is 8 bytes, half the size, so
/// more of the table stays in cache.
enum PairTable {
    /// `left << 16 | right` → `rank << 16 | merged`.
    Compact(FxHashMap<u32, u32>),
    /// `left << 32 | right` → `rank << 32 | merged`.
    Wide(FxHashMap<u64, u64>),
}

impl PairTable {
    /// From (left, right, merged, rank). Distinct ids spell distinct strings,
    /// so a key has one merge.
    fn new(merges: Vec<(u32, u32, u32, u32)>) -> Self {
        let small = |id: u32| id <= u32::from(u16::MAX);
        if merges.iter().all(|&(left, right, merged, rank)| {
            small(left) && small(right) && small(merged) && small(rank)
        }) {
            Self::Compact(
                merges
                    .into_iter()
                    .map(|(left, right, merged, rank)| (left << 16 | right, rank << 16 | merged))
                    .collect(),
            )
        } else {
            let wide = |high: u32, low: u32| u64::from(high) << 32 | u64::from(low);
            Self::Wide(
                merges
                    .into_iter()
                    .map(|(left, right, merged, rank)| (wide(left, right), wide(rank, merged)))
                    .collect(),
            )
        }
    }

    /// The piece `left` and `right` merge into, with its rank.
    #[inline(always)]
    fn get(&self, left: u32, right: u32) -> Option<(u32, u32)> {
        match self {
            Self::Compact(map) => {
                // Larger ids (tagged characters) are in no compact key.
                if (left | right) > u32::from(u16::MAX) {
                    return None;
                }
                map.get(&(left << 16 | right))
                    .map(|value| (value & 0xFFFF, value >> 16))
            }
            Self::Wide(map) => map
                .get(&(u64::from(left) << 32 | u64::from(right)))
                .map(|value| (*value as u32, (value >> 32) as u32)),
        }
    }
}

/// A symbol of `encode_uncached`: its id (`NONE` once merged into the
/// symbol on its left) and the piece that the pair it starts would merge
/// into (`NONE` if none). One struct, so a symbol costs one cache miss.
#[derive(Clone, Copy)]
struct Symbol {
    id: u32,
    merge: u32,
}

/// One merge of a run: the index of its left symbol and the piece it made.
#[derive(Clone, Copy)]
struct Merge {
    position: u32,
    merged: u32,
}

/// What [`SentencePieceBpe::no_merge_crosses`] needs of a segment's run
/// alone: its merges in order, its number of initial symbols, and its first
/// and last initial symbols.
#[derive(Default)]
struct Segment {
    history: Vec<Merge>,
    len: usize,
    first: u32,
    last: u32,
}

/// How many sorted agenda entries ahead `encode_uncached` prefetches.
const PREFETCH_DISTANCE: usize = 16;

/// Asks the CPU to start loading `item` into the cache.
#[inline]
fn prefetch<T>(item: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch never faults, whatever the address, and SSE is part
    // of every x86_64 CPU.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
            (item as *const T).cast(),
        );
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = item;
}

/// Marks a symbol id that is a character (in the low bits), not a piece.
const CHAR_TAG: u32 = 1 << 31;
/// The id of a symbol merged into the one on its left; also "no pair".
const NONE: u32 = u32::MAX;

impl SentencePieceBpe {
    pub fn new(proto: &ModelProto) -> Result<Self, TokenizerLoadError> {
        proto.check_supported()?;
        let malformed = |what: String| Err(TokenizerLoadError::Malformed(what));
        let unsupported = |what: String| Err(TokenizerLoadError::Unsupported(what));
        if proto.pieces.len() >= CHAR_TAG as usize {
            return unsupported(format!("{} pieces", proto.pieces.len()));
        }
        let mut vocab_index = HashMap::new();
        let mut normal: FxHashMap<&str, u32> = FxHashMap::default();
        let mut user_defined = Vec::new();
        let mut byte_ids = [u32::MAX; 256];
        let mut scores = Vec::new();
        for (id, piece) in proto.pieces.iter().enumerate() {
            let id = id as u32;
            if vocab_index.insert(piece.text.clone(), id).is_some() {
                // SentencePiece refuses such a model ("is already defined").
                return malformed(format!("piece '{}' is defined twice", piece.text));
            }
            if piece.text.is_empty() {
                return malformed(format!("piece {id} is empty"));
            }
            let single_char = piece.text.chars().nth(1).is_none();
            match piece.kind {
                PieceType::Normal | PieceType::UserDefined => {
                    // Word-by-word encoding is exact only if no piece joins a
                    // non-space character to a following space.
                    let mut prev_is_word_char = false;
                    for ch in piece.text.chars() {
                        if ch == SPACE_SYMBOL && prev_is_word_char {
                            return unsupported(format!(
                                "piece {id} ('{}') spans a word boundary",
                                piece.text
                            ));
                        }
                        prev_is_word_char = ch != SPACE_SYMBOL;
                    }
                    if piece.kind == PieceType::UserDefined {
                        user_defined.push((piece.text.clone(), id));
                    } else if piece.score.is_nan() {
                        return malformed(format!("piece {id} has no numeric score"));
                    } else {
                        normal.insert(&piece.text, id);
                        scores.push(piece.score);
                    }
                }
                PieceType::Unused => {
                    // bpe_model.cc merges into unused pieces, then splits them
                    // again by the merge that made them; not reproduced here.
                    return unsupported(format!("unused piece {id} ('{}')", piece.text));
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
                PieceType::Unknown | PieceType::Control if single_char => {
                    // SentencePiece would emit this id for the bare character;
                    // here a character is a normal piece or bytes.
                    return unsupported(format!(
                        "reserved piece {id} is the single character '{}'",
                        piece.text
                    ));
                }
                PieceType::Unknown | PieceType::Control => {}
            }
        }
        if let Some(missing) = byte_ids.iter().position(|id| *id == u32::MAX) {
            return malformed(format!(
                "byte fallback is on but there is no piece for byte 0x{missing:02X}"
            ));
        }

        // Equal scores share a rank: ties go to the leftmost pair, as in
        // `bpe_model.cc`, which compares scores with `<`.
        scores.sort_by(|a, b| b.partial_cmp(a).expect("no NaN scores"));
        scores.dedup();
        let rank_of = |score: f32| scores.partition_point(|s| *s > score) as u32;
        let mut ranks = vec![NONE; proto.pieces.len()];
        let mut spans = vec![1u16; proto.pieces.len()];
        let mut ascii_ids = [0u32; 128];
        for (byte, id) in ascii_ids.iter_mut().enumerate() {
            *id = CHAR_TAG | byte as u32;
        }
        let mut char_ids = FxHashMap::default();
        for (&text, &id) in &normal {
            ranks[id as usize] = rank_of(proto.pieces[id as usize].score);
            spans[id as usize] = match u16::try_from(text.chars().count()) {
                Ok(span) => span,
                Err(_) => return unsupported(format!("piece {id} is too long")),
            };
            let mut chars = text.chars();
            if let (Some(ch), None) = (chars.next(), chars.next()) {
                match u8::try_from(ch) {
                    Ok(byte) if byte.is_ascii() => ascii_ids[byte as usize] = id,
                    _ => {
                        char_ids.insert(ch, id);
                    }
                }
            }
        }
        let symbol_of = |half: &str| -> Option<u32> {
            let mut chars = half.chars();
            match (chars.next(), chars.next()) {
                // A user-defined character is always a frozen symbol.
                (Some(ch), None) if !user_defined.iter().any(|(u, _)| u == half) => {
                    Some(match normal.get(half) {
                        Some(&id) => id,
                        None => CHAR_TAG | ch as u32,
                    })
                }
                (Some(_), None) => None,
                _ => normal.get(half).copied(),
            }
        };
        let mut pairs = Vec::new();
        for (&text, &merged) in &normal {
            for (split, _) in text.char_indices().skip(1) {
                let (Some(left), Some(right)) =
                    (symbol_of(&text[..split]), symbol_of(&text[split..]))
                else {
                    continue;
                };
                pairs.push((left, right, merged, ranks[merged as usize]));
            }
        }
        let pairs = PairTable::new(pairs);
        let ascii_pairs = (0..128 * 128)
            .map(|i| {
                pairs
                    .get(ascii_ids[i / 128], ascii_ids[i % 128])
                    .map_or(NONE, |(merged, _)| merged)
            })
            .collect();
        let mut user_defined_first_bytes = [false; 256];
        for (text, _) in &user_defined {
            user_defined_first_bytes[text.as_bytes()[0] as usize] = true;
        }
        // Longest first, so the prefix match below is the longest match.
        user_defined.sort_by_key(|(text, _)| std::cmp::Reverse(text.len()));
        Ok(Self {
            ascii_ids,
            ascii_pairs,
            char_ids,
            pairs,
            ranks,
            spans,
            rank_count: scores.len(),
            // A heap pays a few unpredictable branches per pair at each of
            // its levels; sorting costs more only for the shortest words.
            sort_min_pairs: SORT_MIN_PAIRS,
            heap_min_limit: HEAP_MIN_LIMIT,
            bucket_min_symbols: scores.len() / BUCKET_RANKS_PER_SYMBOL,
            segment_bytes: SEGMENT_BYTES,
            segment_lookahead: SEGMENT_LOOKAHEAD,
            max_user_defined_bytes: user_defined.first().map_or(0, |(text, _)| text.len()),
            user_defined,
            user_defined_first_bytes,
            vocab: proto.pieces.clone(),
            vocab_index,
            byte_ids,
            unk_id: proto.unk_id,
            cache: RwLock::new(HashMap::new()),
            seen: (0..SEEN_SLOTS).map(|_| AtomicU64::new(0)).collect(),
            seen_hasher: RandomState::new(),
        })
    }

    /// Encodes one word (already normalized) into ids, appending to `out`.
    pub fn encode_word(&self, word: &str, out: &mut Vec<u32>) {
        self.word_encoder().encode_word(word, out);
    }

    /// An encoder for a run of words, such as a text's.
    pub fn word_encoder(&self) -> WordEncoder<'_> {
        WordEncoder {
            model: self,
            cache: None,
        }
    }

    /// Whether `word` was the last word noted in its slot; notes it.
    fn seen_before(&self, word: &str) -> bool {
        let hash = self.seen_hasher.hash_one(word);
        let slot = &self.seen[hash as usize % SEEN_SLOTS];
        slot.swap(hash, Ordering::Relaxed) == hash
    }

    /// The piece `left` and `right` merge into, with its rank.
    #[inline]
    fn pair(&self, left: u32, right: u32) -> Option<(u32, u32)> {
        self.pairs.get(left, right)
    }

    #[inline]
    fn span(&self, symbol: u32) -> usize {
        if symbol & CHAR_TAG != 0 {
            1
        } else {
            self.spans[symbol as usize] as usize
        }
    }

    /// The initial symbols of `word`, as SentencePiece's prefix matcher
    /// splits it (user-defined pieces by longest match, else one character
    /// each), with the merge each adjacent pair would make.
    fn initial_symbols(&self, word: &str, symbols: &mut Vec<Symbol>) {
        let bytes = word.as_bytes();
        symbols.clear();
        symbols.reserve_exact(word.chars().count());
        // The last symbol's character when it is ASCII, for `ascii_pairs`.
        let mut last_ascii = None;
        let mut pos = 0;
        while pos < bytes.len() {
            let byte = bytes[pos];
            let (id, ascii, len) = if self.user_defined_first_bytes[byte as usize]
                && let Some((text, id)) = self
                    .user_defined
                    .iter()
                    .find(|(text, _)| bytes[pos..].starts_with(text.as_bytes()))
            {
                (*id, None, text.len())
            } else if byte.is_ascii() {
                (self.ascii_ids[byte as usize], Some(byte as usize), 1)
            } else {
                let ch = word[pos..].chars().next().expect("pos is a char boundary");
                let id = self
                    .char_ids
                    .get(&ch)
                    .copied()
                    .unwrap_or(CHAR_TAG | ch as u32);
                (id, None, ch.len_utf8())
            };
            if let Some(last) = symbols.last_mut() {
                last.merge = match (last_ascii, ascii) {
                    (Some(left), Some(right)) => self.ascii_pairs[left * 128 + right],
                    _ => self.pair(last.id, id).map_or(NONE, |(merged, _)| merged),
                };
            }
            symbols.push(Symbol { id, merge: NONE });
            last_ascii = ascii;
            pos += len;
        }
    }

    /// `bpe_model.cc`'s `Encode` on piece ids: [`Self::merge_all`] on the
    /// word's initial symbols, or on its segments when it is long.
    // Out of line, so `encode_word`'s cache-hit path (the common one) stays
    // small.
    #[inline(never)]
    fn encode_uncached(&self, word: &str, out: &mut Vec<u32>) {
        thread_local! {
            /// The buffers of short words, reused: most words are short, and
            /// two allocations would cost them as much as the merging.
            static SCRATCH: RefCell<(Vec<Symbol>, Vec<u64>)> = const {
                RefCell::new((Vec::new(), Vec::new()))
            };
        }
        if word.len() <= CACHE_MAX_WORD_BYTES {
            SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
                Ok(mut scratch) => {
                    let (symbols, keys) = &mut *scratch;
                    self.encode_in(word, out, symbols, keys);
                }
                Err(_) => self.encode_in(word, out, &mut Vec::new(), &mut Vec::new()),
            });
        } else if word.len() <= self.segment_bytes + self.segment_lookahead
            || !self.encode_in_segments(word, out)
        {
            self.encode_in(word, out, &mut Vec::new(), &mut Vec::new());
        }
    }

    /// [`Self::encode_uncached`] in one run, with the buffers for its symbols
    /// and heap.
    fn encode_in(
        &self,
        word: &str,
        out: &mut Vec<u32>,
        symbols: &mut Vec<Symbol>,
        keys: &mut Vec<u64>,
    ) {
        self.initial_symbols(word, symbols);
        let buffers = AgendaBuffers {
            keys: std::mem::take(keys),
            ..AgendaBuffers::default()
        };
        let spare = self.merge_all(symbols, buffers, |_| {}).keys;
        // The agenda is freed before the output grows; a short word's heap
        // allocation is kept for the next word.
        if spare.capacity() <= 4 * CACHE_MAX_WORD_BYTES {
            *keys = spare;
        }
        self.emit(symbols, out);
    }

    /// Encodes a long word as consecutive segments, each run on its own so
    /// its symbols and agenda stay in cache, and appends their ids; returns
    /// false, with `out` as it was, if the segments' runs might differ from
    /// the whole word's.
    ///
    /// A segment is cut at a token boundary of a run that continues
    /// `segment_lookahead` bytes past it: merges seldom depend on text that
    /// far away, so the whole word's run almost always has a boundary there
    /// too. Whether it does is then decided exactly: a run of the two
    /// adjacent segments together is the concatenation of their separate runs
    /// unless some merge joins the symbol ending at the cut and the one
    /// starting there, which [`Self::no_merge_crosses`] checks from the
    /// segments' merge histories. If no merge crosses any cut, the whole
    /// word's run is the segments' runs side by side: until a first merge
    /// crosses a cut, each segment merges exactly as it does alone, so that
    /// first merge would be found by the check of its cut.
    ///
    /// Memory: the runs of two segments (symbols and history, 16 bytes per
    /// initial symbol) besides the ids.
    fn encode_in_segments(&self, word: &str, out: &mut Vec<u32>) -> bool {
        let first_id = out.len();
        let mut symbols = Vec::new();
        let mut buffers = AgendaBuffers::default();
        let mut left = Segment::default();
        let mut right = Segment::default();
        let mut start = 0;
        loop {
            let text = &word[start..];
            let last = text.len() <= self.segment_bytes + self.segment_lookahead;
            let text = if last {
                text
            } else {
                &text[..text.floor_char_boundary(self.segment_bytes + self.segment_lookahead)]
            };
            self.initial_symbols(text, &mut symbols);
            right.first = symbols.first().map_or(NONE, |s| s.id);
            right.history.clear();
            buffers = self.merge_all(&mut symbols, buffers, |merge| right.history.push(merge));
            let (len, cut) = if last {
                (symbols.len(), text.len())
            } else {
                // The initial split of the text before the cut must not
                // depend on where this segment's text ends.
                let latest = text.len().saturating_sub(self.max_user_defined_bytes);
                match self.token_boundary(text, &symbols, self.segment_bytes, latest) {
                    Some(boundary) => boundary,
                    None => break,
                }
            };
            right.len = len;
            right
                .history
                .retain(|merge| (merge.position as usize) < len);
            if start > 0 && !self.no_merge_crosses(&left, &right) {
                break;
            }
            self.emit(&symbols[..len], out);
            if last {
                return true;
            }
            right.last = self.last_initial_symbol(&text[..cut], symbols[..len].iter());
            std::mem::swap(&mut left, &mut right);
            start += cut;
        }
        out.truncate(first_id);
        false
    }

    /// The first boundary between final symbols at a byte offset in
    /// `earliest..=latest` of `text`, as (symbols before it, byte offset).
    fn token_boundary(
        &self,
        text: &str,
        symbols: &[Symbol],
        earliest: usize,
        latest: usize,
    ) -> Option<(usize, usize)> {
        // Walked back from the end, so only the lookahead is visited.
        let (mut index, mut offset) = (symbols.len(), text.len());
        let mut first = None;
        while offset >= earliest {
            if offset <= latest {
                first = Some((index, offset));
            }
            let Some(previous) = symbols[..index].iter().rposition(|s| s.id != NONE) else {
                break;
            };
            offset -= self.text_len(symbols[previous].id);
            index = previous;
        }
        debug_assert!(first.is_none_or(|(_, offset)| text.is_char_boundary(offset)));
        first
    }

    /// The initial symbol that ends `text`, whose final symbols are `final_symbols`.
    fn last_initial_symbol<'a>(
        &self,
        text: &str,
        final_symbols: impl DoubleEndedIterator<Item = &'a Symbol>,
    ) -> u32 {
        let last = final_symbols
            .rev()
            .find(|s| s.id != NONE)
            .expect("a cut follows a symbol")
            .id;
        // A merged piece was made of single characters; a user-defined piece
        // (no rank) is an initial symbol itself.
        if last & CHAR_TAG == 0 && self.ranks[last as usize] == NONE {
            return last;
        }
        let ch = text.chars().next_back().expect("a cut follows a character");
        match u8::try_from(ch) {
            Ok(byte) if byte.is_ascii() => self.ascii_ids[byte as usize],
            _ => self
                .char_ids
                .get(&ch)
                .copied()
                .unwrap_or(CHAR_TAG | ch as u32),
        }
    }

    /// Bytes of text a symbol spells.
    fn text_len(&self, symbol: u32) -> usize {
        if symbol & CHAR_TAG != 0 {
            char::from_u32(symbol & !CHAR_TAG).map_or(1, char::len_utf8)
        } else {
            self.vocab[symbol as usize].text.len()
        }
    }

    /// Whether the run of `left` and `right` side by side (`right` just after
    /// the cut) never merges across the cut, given each one's run alone.
    ///
    /// Until a merge crosses the cut, the joint run makes each side's merges
    /// in that side's order, interleaved by their keys (rank, position): at
    /// each step, the smaller of the two sides' next merges. The pair across
    /// the cut, if it is a piece, is merged at the first moment its key is
    /// smaller than both sides' next merges (every other pending pair is at
    /// least a side's next merge, or stale), unless one side changed a
    /// symbol of it first. Positions on the left are smaller than the
    /// crossing pair's, and those on the right larger, which breaks ties.
    fn no_merge_crosses(&self, left: &Segment, right: &Segment) -> bool {
        let rank = |merge: &Merge| self.ranks[merge.merged as usize];
        let across = |last: u32, first: u32| self.pair(last, first).map(|(_, rank)| rank);
        let (mut last, mut first) = (left.last, right.first);
        let mut crossing = across(last, first);
        let mut left_merges = left.history.iter().peekable();
        let mut right_merges = right.history.iter().peekable();
        loop {
            let left_next = left_merges.peek().map(|merge| rank(merge));
            let right_next = right_merges.peek().map(|merge| rank(merge));
            if let Some(crossing) = crossing
                && left_next.is_none_or(|next| next > crossing)
                && right_next.is_none_or(|next| next >= crossing)
            {
                return false;
            }
            match (left_next, right_next) {
                (None, None) => return true,
                (Some(next), other) if other.is_none_or(|other| next <= other) => {
                    let merge = left_merges.next().expect("peeked");
                    // The merged symbol ends at the cut: it is the new last.
                    if merge.position as usize + self.span(merge.merged) == left.len {
                        last = merge.merged;
                        crossing = across(last, first);
                    }
                }
                _ => {
                    let merge = right_merges.next().expect("peeked");
                    if merge.position == 0 {
                        first = merge.merged;
                        crossing = across(last, first);
                    }
                }
            }
        }
    }

    /// Runs SentencePiece's merges on `symbols` (from
    /// [`Self::initial_symbols`]), calling `on_merge` for each merge in
    /// order. A symbol lives at the index of its first initial symbol; the
    /// indices it absorbed hold `NONE`, so the next symbol is `span` away and
    /// the previous one is the nearest live index to the left (at most the
    /// longest piece away). Memory: 8 bytes per initial symbol, plus the
    /// agenda, which runs in `buffers` and returns them.
    fn merge_all(
        &self,
        symbols: &mut [Symbol],
        buffers: AgendaBuffers,
        on_merge: impl FnMut(Merge),
    ) -> AgendaBuffers {
        // Words that do not use the queues run a loop without their code.
        if self.uses_buckets(symbols, &buffers) {
            self.merge_all_with::<true>(symbols, buffers, on_merge)
        } else {
            self.merge_all_with::<false>(symbols, buffers, on_merge)
        }
    }

    /// Whether a run of `symbols` in `buffers` queues pairs in [`Buckets`].
    fn uses_buckets(&self, symbols: &[Symbol], buffers: &AgendaBuffers) -> bool {
        symbols.len() >= self.bucket_min_symbols || buffers.buckets.index.len() >= self.rank_count
    }

    /// [`Self::merge_all`], with [`Buckets`] if `BUCKETS`.
    fn merge_all_with<const BUCKETS: bool>(
        &self,
        symbols: &mut [Symbol],
        buffers: AgendaBuffers,
        mut on_merge: impl FnMut(Merge),
    ) -> AgendaBuffers {
        let n = symbols.len();
        assert!(
            n < NONE as usize,
            "a word of {n} symbols is beyond 32-bit positions"
        );
        let mut agenda = Agenda::new(self, symbols, buffers);
        while let Some((rank, left)) = agenda.pop::<BUCKETS>() {
            // The agenda's order is a walk over the whole word; fetching a
            // coming symbol early hides most of the cache misses of long words.
            // The merge reads up to the longest piece on either side.
            for coming in agenda.coming::<BUCKETS>(PREFETCH_DISTANCE) {
                for at in [coming.saturating_sub(8), coming, (coming + 8).min(n - 1)] {
                    prefetch(&symbols[at]);
                }
            }
            let left = left as usize;
            let merged = symbols[left].merge;
            // Stale: the pair at `left` changed since this entry was queued.
            // An equal-ranked newer pair there is valid, and has an entry of
            // the same key, so taking it now is what SentencePiece does.
            if merged == NONE || self.ranks[merged as usize] != rank {
                continue;
            }
            on_merge(Merge {
                position: left as u32,
                merged,
            });
            let right = left + self.span(symbols[left].id);
            let after = right + self.span(symbols[right].id);
            symbols[left] = Symbol {
                id: merged,
                merge: NONE,
            };
            symbols[right] = Symbol {
                id: NONE,
                merge: NONE,
            };
            if after < n
                && let Some((next, next_rank)) = self.pair(merged, symbols[after].id)
            {
                symbols[left].merge = next;
                agenda.push::<BUCKETS>(next_rank, left);
            }
            if left > 0 {
                let mut prev = left - 1;
                while symbols[prev].id == NONE {
                    prev -= 1;
                }
                symbols[prev].merge = NONE;
                if let Some((next, next_rank)) = self.pair(symbols[prev].id, merged) {
                    symbols[prev].merge = next;
                    agenda.push::<BUCKETS>(next_rank, prev);
                }
            }
            agenda.bound(symbols, &self.ranks);
        }
        agenda.into_buffers()
    }

    /// Appends the ids of the final symbols: a piece's id, or a character's
    /// bytes as byte pieces (byte fallback).
    fn emit(&self, symbols: &[Symbol], out: &mut Vec<u32>) {
        let symbols = || {
            let mut i = 0;
            std::iter::from_fn(move || {
                let symbol = symbols.get(i)?.id;
                i += self.span(symbol);
                Some(symbol)
            })
        };
        let chars = |symbol: u32| char::from_u32(symbol & !CHAR_TAG).expect("a tagged char");
        let count: usize = symbols()
            .map(|s| {
                if s & CHAR_TAG != 0 {
                    chars(s).len_utf8()
                } else {
                    1
                }
            })
            .sum();
        // A run's ids are reserved at once, with a little room for what the
        // caller appends next, instead of doubling into up to twice the
        // memory they need (a long word's segments reserve one after
        // another, so its ids may still double).
        out.reserve(count + count / 16);
        for symbol in symbols() {
            if symbol & CHAR_TAG != 0 {
                let mut utf8 = [0; 4];
                out.extend(
                    chars(symbol)
                        .encode_utf8(&mut utf8)
                        .bytes()
                        .map(|b| self.byte_ids[b as usize]),
                );
            } else {
                out.push(symbol);
            }
        }
    }

    pub fn pieces(&self) -> &[Piece] {
        &self.vocab
    }

    pub fn unk_id(&self) -> u32 {
        self.unk_id
    }
}

/// The agenda of candidate pairs, SentencePiece's priority queue: smallest
/// (rank, position) first. Entries stay when their pair changes; the caller
/// skips stale ones, as `bpe_model.cc` does.
///
/// Unless the word is short, its initial pairs are sorted by rank (positions
/// stay ascending within a rank) into `sorted`, 4 bytes each, and read in
/// order: radix-sorted on the rank's bytes when there are fewer pairs than
/// ranks, else counting-sorted. Pairs formed by merges go to [`Buckets`],
/// one ascending queue per rank, when their position is not below the last
/// one queued at their rank; the others go to a heap of packed keys, which
/// [`Agenda::bound`] compacts so stale entries cannot pile up.
struct Agenda {
    sorted: Vec<u32>,
    /// Per rank, the next free slot of its run in `sorted` while
    /// counting-sorting; the radix sort's second buffer.
    slots: Vec<u32>,
    /// (rank, end in `sorted`) of each run of one rank, in rank order.
    runs: Vec<(u32, u32)>,
    run: usize,
    cursor: usize,
    heap: MinHeap,
    /// The heap length at which `bound` compacts it, and its floor.
    limit: usize,
    min_limit: usize,
    buckets: Buckets,
    /// The ranks [`Buckets`] indexes, or 0 when this word does not use it.
    bucket_ranks: usize,
}

/// The allocations of an [`Agenda`], lent from one run to the next so a
/// long word's segments do not each map and zero fresh pages.
#[derive(Default)]
struct AgendaBuffers {
    keys: Vec<u64>,
    sorted: Vec<u32>,
    slots: Vec<u32>,
    runs: Vec<(u32, u32)>,
    buckets: Buckets,
}

/// Pairs formed by merges whose positions ascend within their rank, as a run
/// of one letter forms them: each merge sweeps along the word and forms pairs
/// of other ranks behind it. A rank's queue is read in order, and a heap
/// holds the head of each non-empty queue, so it stays as small as the
/// number of ranks in play instead of the number of pairs.
#[derive(Default)]
struct Buckets {
    /// Per rank, its queue's index in `queues`, or `NONE`; sized lazily.
    index: Vec<u32>,
    /// Queues in use are `queues[..live]`; the rest keep their allocations.
    queues: Vec<Bucket>,
    live: usize,
    /// The key (rank, head position) of each non-empty queue.
    heads: MinHeap,
}

#[derive(Default)]
struct Bucket {
    rank: u32,
    positions: Vec<u32>,
    head: usize,
}

impl Buckets {
    fn clear(&mut self) {
        for queue in &mut self.queues[..self.live] {
            self.index[queue.rank as usize] = NONE;
            queue.positions.clear();
            queue.head = 0;
        }
        self.live = 0;
        self.heads.0.clear();
    }

    /// Queues `position` at `rank` if it does not descend there; else
    /// returns false and queues nothing.
    // Out of line: words that do not use the queues keep a small merge
    // loop.
    #[inline(never)]
    fn push(&mut self, rank: u32, position: u32, rank_count: usize) -> bool {
        if self.index.len() < rank_count {
            self.index.resize(rank_count, NONE);
        }
        let slot = &mut self.index[rank as usize];
        if *slot == NONE {
            *slot = self.live as u32;
            if self.live == self.queues.len() {
                self.queues.push(Bucket::default());
            }
            let queue = &mut self.queues[self.live];
            self.live += 1;
            queue.rank = rank;
            queue.positions.push(position);
            self.heads.push(agenda_key(rank, position as usize));
            return true;
        }
        let queue = &mut self.queues[*slot as usize];
        if queue.head == queue.positions.len() {
            queue.positions.clear();
            queue.head = 0;
            queue.positions.push(position);
            self.heads.push(agenda_key(rank, position as usize));
            return true;
        }
        if queue.positions.last().is_some_and(|&last| last > position) {
            return false;
        }
        queue.positions.push(position);
        true
    }

    fn peek(&self) -> Option<u64> {
        self.heads.peek()
    }

    /// Removes the smallest key, which `peek` returned.
    // Out of line: words that do not use the queues keep a small merge
    // loop.
    #[inline(never)]
    fn pop(&mut self, key: u64) {
        let queue = &mut self.queues[self.index[(key >> 32) as usize] as usize];
        queue.head += 1;
        match queue.positions.get(queue.head) {
            Some(&next) => self
                .heads
                .replace_top(agenda_key(queue.rank, next as usize)),
            None => {
                self.heads.pop();
            }
        }
    }
}

/// A 4-ary min-heap of agenda keys: half the levels of a binary heap, and a
/// node's children share a cache line, which matters once a long word's heap
/// outgrows the cache.
#[derive(Default)]
struct MinHeap(Vec<u64>);

impl MinHeap {
    const ARITY: usize = 4;

    fn from_vec(keys: Vec<u64>) -> Self {
        let mut heap = Self(keys);
        if heap.len() > 1 {
            for i in (0..=(heap.len() - 2) / Self::ARITY).rev() {
                heap.sift_down(i);
            }
        }
        heap
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    fn peek(&self) -> Option<u64> {
        self.0.first().copied()
    }

    fn push(&mut self, key: u64) {
        let keys = &mut self.0;
        let mut i = keys.len();
        keys.push(key);
        while i > 0 {
            let parent = (i - 1) / Self::ARITY;
            if keys[parent] <= key {
                break;
            }
            keys[i] = keys[parent];
            i = parent;
        }
        keys[i] = key;
    }

    /// Replaces the smallest key with `key`.
    fn replace_top(&mut self, key: u64) {
        self.0[0] = key;
        self.sift_down(0);
    }

    fn pop(&mut self) -> Option<u64> {
        let last = self.0.pop()?;
        let Some(top) = self.0.first_mut() else {
            return Some(last);
        };
        let top = std::mem::replace(top, last);
        self.sift_down(0);
        Some(top)
    }

    fn sift_down(&mut self, mut i: usize) {
        let keys = &mut self.0[..];
        let key = keys[i];
        loop {
            let first = i * Self::ARITY + 1;
            if first >= keys.len() {
                break;
            }
            let mut least = first;
            for child in first + 1..(first + Self::ARITY).min(keys.len()) {
                if keys[child] < keys[least] {
                    least = child;
                }
            }
            if keys[least] >= key {
                break;
            }
            keys[i] = keys[least];
            i = least;
        }
        keys[i] = key;
    }
}

/// Words with fewer initial pairs than this queue them in the heap, unsorted.
const SORT_MIN_PAIRS: usize = 64;

/// Below this the heap is never compacted: it is small and compaction would
/// cost more than it saves.
const HEAP_MIN_LIMIT: usize = 1024;

/// Words use [`Buckets`] from one symbol per this many ranks up: sizing its
/// index by rank then costs at most this many writes per symbol. At 4, the
/// 22,000-symbol segments of a run of spaces (3 bytes each) used the queues
/// and ran slower than with the heap alone (docs/tokenizer-cliffs.md); at 1
/// they do not.
const BUCKET_RANKS_PER_SYMBOL: usize = 1;

fn agenda_key(rank: u32, position: usize) -> u64 {
    (u64::from(rank) << 32) | position as u64
}

impl Agenda {
    /// The agenda of the symbols' pairs, in `buffers`' allocations.
    fn new(model: &SentencePieceBpe, symbols: &[Symbol], buffers: AgendaBuffers) -> Self {
        let AgendaBuffers {
            mut keys,
            mut sorted,
            mut slots,
            mut runs,
            mut buckets,
        } = buffers;
        buckets.clear();
        let bucket_ranks = if symbols.len() >= model.bucket_min_symbols
            || buckets.index.len() >= model.rank_count
        {
            model.rank_count
        } else {
            0
        };
        keys.clear();
        sorted.clear();
        slots.clear();
        runs.clear();
        let ranks = &model.ranks;
        let queued = symbols
            .iter()
            .map(|s| s.merge)
            .enumerate()
            .filter(|(_, m)| *m != NONE);
        let pairs = queued.clone().count();
        if pairs < model.sort_min_pairs {
            keys.extend(queued.map(|(i, m)| agenda_key(ranks[m as usize], i)));
            let heap = MinHeap::from_vec(keys);
            return Self {
                sorted,
                slots,
                runs,
                run: 0,
                cursor: 0,
                min_limit: model.heap_min_limit,
                limit: model.heap_min_limit.max(2 * heap.len()),
                heap,
                buckets,
                bucket_ranks,
            };
        }
        if pairs < model.rank_count {
            // A stable least-significant-byte-first radix sort: the counting
            // sort's pass over every rank would cost more than the pairs.
            let rank_at = |position: u32| ranks[symbols[position as usize].merge as usize];
            sorted.extend(queued.map(|(i, _)| i as u32));
            let max_rank = model.rank_count.saturating_sub(1) as u32;
            let mut shift = 0;
            while shift < u32::BITS && max_rank >> shift != 0 {
                let digit = |position: u32| (rank_at(position) >> shift) as usize & 0xFF;
                let mut starts = [0u32; 256];
                for &position in &sorted {
                    starts[digit(position)] += 1;
                }
                let mut total = 0;
                for start in &mut starts {
                    let count = *start;
                    *start = total;
                    total += count;
                }
                slots.resize(sorted.len(), 0);
                for &position in &sorted {
                    let start = &mut starts[digit(position)];
                    slots[*start as usize] = position;
                    *start += 1;
                }
                std::mem::swap(&mut sorted, &mut slots);
                shift += 8;
            }
            for (index, &position) in sorted.iter().enumerate() {
                let rank = rank_at(position);
                match runs.last_mut() {
                    Some((last, end)) if *last == rank => *end = index as u32 + 1,
                    _ => runs.push((rank, index as u32 + 1)),
                }
            }
            return Self {
                sorted,
                slots,
                runs,
                run: 0,
                cursor: 0,
                heap: MinHeap(keys),
                min_limit: model.heap_min_limit,
                limit: model.heap_min_limit,
                buckets,
                bucket_ranks,
            };
        }
        slots.resize(model.rank_count, 0);
        for (_, m) in queued.clone() {
            slots[ranks[m as usize] as usize] += 1;
        }
        let mut total = 0;
        for slot in &mut slots {
            let count = *slot;
            *slot = total;
            total += count;
        }
        sorted.resize(pairs, 0);
        for (i, m) in queued {
            let slot = &mut slots[ranks[m as usize] as usize];
            sorted[*slot as usize] = i as u32;
            *slot += 1;
        }
        // Each slot now holds the end of its rank's run.
        let mut start = 0;
        for (rank, &end) in slots.iter().enumerate() {
            if end > start {
                runs.push((rank as u32, end));
            }
            start = end;
        }
        Self {
            sorted,
            slots,
            runs,
            run: 0,
            cursor: 0,
            heap: MinHeap(keys),
            min_limit: model.heap_min_limit,
            limit: model.heap_min_limit,
            buckets,
            bucket_ranks,
        }
    }

    /// Positions likely to be popped soon: the sorted entry `distance`
    /// places ahead, the heap's top and its children (the next smallest
    /// heap key is among them), and the entry `distance` places ahead in the
    /// queue of the smallest head.
    fn coming<const BUCKETS: bool>(&self, distance: usize) -> impl Iterator<Item = usize> + '_ {
        let sorted = self.sorted.get(self.cursor + distance).copied();
        let heap = self
            .heap
            .0
            .iter()
            .take(1 + MinHeap::ARITY)
            .map(|key| *key as u32);
        let bucket = BUCKETS
            .then(|| self.buckets.heads.peek())
            .flatten()
            .and_then(|key| {
                let queue = &self.buckets.queues[self.buckets.index[(key >> 32) as usize] as usize];
                queue.positions.get(queue.head + distance).copied()
            });
        sorted
            .into_iter()
            .chain(heap)
            .chain(bucket)
            .map(|position| position as usize)
    }

    /// The allocations, for the next run.
    fn into_buffers(self) -> AgendaBuffers {
        AgendaBuffers {
            keys: self.heap.0,
            sorted: self.sorted,
            slots: self.slots,
            runs: self.runs,
            buckets: self.buckets,
        }
    }

    fn push<const BUCKETS: bool>(&mut self, rank: u32, position: usize) {
        if !BUCKETS
            || self.bucket_ranks == 0
            || !self.buckets.push(rank, position as u32, self.bucket_ranks)
        {
            self.heap.push(agenda_key(rank, position));
        }
    }

    /// The smallest (rank, position) queued, removed.
    fn pop<const BUCKETS: bool>(&mut self) -> Option<(u32, u32)> {
        while self
            .runs
            .get(self.run)
            .is_some_and(|(_, end)| self.cursor == *end as usize)
        {
            self.run += 1;
        }
        let from_sorted = self
            .runs
            .get(self.run)
            .map(|(rank, _)| agenda_key(*rank, self.sorted[self.cursor] as usize));
        let from_heap = self.heap.peek();
        if BUCKETS
            && let Some(bucket) = self.buckets.peek()
            && from_sorted.is_none_or(|sorted| bucket < sorted)
            && from_heap.is_none_or(|heap| bucket < heap)
        {
            self.buckets.pop(bucket);
            return Some(((bucket >> 32) as u32, bucket as u32));
        }
        let key = match (from_sorted, from_heap) {
            (Some(sorted), Some(heap)) if heap < sorted => {
                self.heap.pop();
                heap
            }
            (Some(sorted), _) => {
                self.cursor += 1;
                sorted
            }
            (None, Some(heap)) => {
                self.heap.pop();
                heap
            }
            (None, None) => return None,
        };
        Some(((key >> 32) as u32, key as u32))
    }

    /// Drops the heap's stale and duplicate entries once it reaches `limit`,
    /// then doubles what is left for the next limit: each compaction removes
    /// at least half of the entries, so the work stays linear, and the heap
    /// never holds more than twice the live pairs of its last compaction.
    fn bound(&mut self, symbols: &mut [Symbol], ranks: &[u32]) {
        if self.heap.len() < self.limit {
            return;
        }
        let mut entries = std::mem::take(&mut self.heap).0;
        // Merged ids are pieces, so CHAR_TAG is free to mark a pair as kept.
        entries.retain(|key| {
            let position = *key as u32 as usize;
            let merged = symbols[position].merge;
            let keep = merged & CHAR_TAG == 0 && u64::from(ranks[merged as usize]) == key >> 32;
            if keep {
                symbols[position].merge |= CHAR_TAG;
            }
            keep
        });
        for key in &entries {
            symbols[*key as u32 as usize].merge &= !CHAR_TAG;
        }
        self.heap = MinHeap::from_vec(entries);
        self.limit = self.min_limit.max(2 * self.heap.len());
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
    use crate::splitmix::SplitMix64;
    use std::collections::BinaryHeap;

    /// The model's normal pieces, as text.
    fn normal_pieces(proto: &ModelProto) -> Vec<&str> {
        proto
            .pieces
            .iter()
            .filter(|p| p.kind == PieceType::Normal)
            .map(|p| p.text.as_str())
            .collect()
    }

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

    /// The string-based algorithm this module replaced, kept as the
    /// reference: a line-by-line port of `bpe_model.cc`'s `Encode` that looks
    /// every pair up by its concatenated text.
    struct Reference {
        mergeable: HashMap<String, (u32, f32)>,
        user_defined: Vec<String>,
        byte_ids: [u32; 256],
    }

    impl Reference {
        fn new(proto: &ModelProto) -> Self {
            let mut mergeable = HashMap::new();
            let mut user_defined = Vec::new();
            let mut byte_ids = [0; 256];
            for (id, piece) in proto.pieces.iter().enumerate() {
                match piece.kind {
                    PieceType::Normal | PieceType::UserDefined | PieceType::Unused => {
                        mergeable.insert(piece.text.clone(), (id as u32, piece.score));
                        if piece.kind == PieceType::UserDefined {
                            user_defined.push(piece.text.clone());
                        }
                    }
                    PieceType::Byte => {
                        byte_ids[parse_byte_piece(&piece.text).unwrap() as usize] = id as u32
                    }
                    _ => {}
                }
            }
            user_defined.sort_by_key(|s| std::cmp::Reverse(s.len()));
            Self {
                mergeable,
                user_defined,
                byte_ids,
            }
        }

        fn encode(&self, word: &str) -> Vec<u32> {
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

            let mut symbols: Vec<Symbol> = Vec::new();
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

            let mut agenda = BinaryHeap::new();
            let try_pair = |agenda: &mut BinaryHeap<Candidate>,
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

            let mut out = Vec::new();
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
            out
        }
    }

    /// A word of up to `max_chars` characters, from one of several shapes:
    /// random characters of `alphabet`, a run of one character, a repeated
    /// short pattern, or a concatenation of `fragments` (pieces of the model,
    /// user-defined pieces, parts of them).
    fn random_word(
        rng: &mut SplitMix64,
        alphabet: &[char],
        fragments: &[&str],
        max_chars: usize,
    ) -> String {
        let len = 1 + rng.index(max_chars);
        match rng.below(4) {
            0 => (0..len).map(|_| *rng.pick(alphabet)).collect(),
            1 => std::iter::repeat_n(*rng.pick(alphabet), len).collect(),
            2 => {
                let pattern: String = (0..1 + rng.below(3)).map(|_| *rng.pick(alphabet)).collect();
                pattern.repeat(len.div_ceil(pattern.chars().count()))
            }
            _ => {
                let mut word = String::new();
                while word.chars().count() < len {
                    word.push_str(fragments[rng.index(fragments.len())]);
                }
                word
            }
        }
    }

    /// The model with its defaults; with every word in one run; with every
    /// agenda path forced (every word's initial pairs sorted, the heap
    /// compacted from 4 entries on); and with words of over 40 bytes encoded
    /// in segments of about 24.
    fn variants(proto: &ModelProto) -> [(&'static str, SentencePieceBpe); 4] {
        let default = SentencePieceBpe::new(proto).unwrap();
        let mut one_run = SentencePieceBpe::new(proto).unwrap();
        one_run.segment_bytes = usize::MAX / 2;
        let mut forced = SentencePieceBpe::new(proto).unwrap();
        forced.sort_min_pairs = 0;
        forced.heap_min_limit = 4;
        forced.bucket_min_symbols = 0;
        let mut segmented = SentencePieceBpe::new(proto).unwrap();
        segmented.segment_bytes = 24;
        segmented.segment_lookahead = 16;
        [
            ("default", default),
            ("one run", one_run),
            ("forced paths", forced),
            ("short segments", segmented),
        ]
    }

    fn assert_agrees(
        reference: &Reference,
        models: &[(&'static str, SentencePieceBpe)],
        word: &str,
    ) {
        let expected = reference.encode(word);
        for (name, model) in models {
            let mut ids = Vec::new();
            model.encode_uncached(word, &mut ids);
            assert_eq!(ids, expected, "{name} differs on {word:?}");
        }
    }

    fn piece(text: &str, score: f32, kind: PieceType) -> Piece {
        Piece {
            text: text.into(),
            score,
            kind,
        }
    }

    /// A small model with every case the id-based lookup must get right:
    /// equal scores, characters inside pieces that are not pieces themselves
    /// (`x`, `ü`), pieces that split into a frozen user-defined character
    /// (`a§`), user-defined pieces overlapping normal ones, and characters in
    /// no piece at all, which fall back to bytes.
    fn synthetic_model() -> ModelProto {
        let mut pieces = vec![
            piece("<unk>", 0.0, PieceType::Unknown),
            piece("<s>", 0.0, PieceType::Control),
            piece("</s>", 0.0, PieceType::Control),
        ];
        pieces.extend((0..=255).map(|b| piece(&format!("<0x{b:02X}>"), 0.0, PieceType::Byte)));
        for text in ["[U]", "[UU]", "§"] {
            pieces.push(piece(text, 0.0, PieceType::UserDefined));
        }
        for (text, score) in [
            ("▁", -1.0),
            ("a", -1.0),
            ("b", -1.5),
            ("c", -2.0),
            ("é", -2.0),
            ("[", -1.0),
            ("U", -1.0),
            ("]", -1.0),
            ("ab", -3.0),
            ("bc", -3.0),
            ("abc", -4.0),
            ("bca", -4.0),
            ("abca", -9.0),
            ("▁a", -2.5),
            ("▁ab", -2.5),
            ("aa", -5.0),
            ("aaa", -5.0),
            ("aaaa", -5.0),
            ("▁▁", -100.0),
            ("▁▁▁", -100.0),
            ("▁▁▁▁", -100.0),
            ("xa", -6.0),
            ("ax", -6.0),
            ("xx", -7.0),
            ("xxa", -3.0),
            ("éa", -3.5),
            ("üb", -2.0),
            ("a§", -1.0),
            ("[U", -8.0),
            ("U]", -8.0),
            ("UU", -8.0),
        ] {
            pieces.push(piece(text, score, PieceType::Normal));
        }
        ModelProto {
            pieces,
            model_type: MODEL_TYPE_BPE,
            byte_fallback: true,
            treat_whitespace_as_suffix: false,
            unk_id: 0,
            bos_id: 1,
            eos_id: 2,
            normalizer_name: "identity".into(),
            precompiled_charsmap_len: 0,
            add_dummy_prefix: true,
            remove_extra_whitespaces: false,
            escape_whitespaces: true,
        }
    }

    #[test]
    fn agrees_with_the_reference_on_a_synthetic_model() {
        let proto = synthetic_model();
        let reference = Reference::new(&proto);
        let models = variants(&proto);
        let alphabet: Vec<char> = "abcxéü▁§[U]z😀".chars().collect();
        let fragments = [
            "a",
            "ab",
            "bca",
            "▁",
            "▁▁▁",
            "x",
            "[U]",
            "[UU",
            "§",
            "ü",
            "😀",
            "aaaa",
        ];
        let mut rng = SplitMix64::new(11);
        for _ in 0..4000 {
            let word = random_word(&mut rng, &alphabet, &fragments, 600);
            assert_agrees(&reference, &models, &word);
        }
        for word in [
            "", "a", "x", "😀", "§", "[U]", "[UU]]", "a§", "xxa", "ü", "üb",
        ] {
            assert_agrees(&reference, &models, word);
        }
    }

    #[test]
    fn synthetic_pairs_cover_every_mergeable_split() {
        let model = SentencePieceBpe::new(&synthetic_model()).unwrap();
        let id = |text: &str| model.vocab_index[text];
        // `x` is no piece, but `xa` is: its id is the tagged character.
        assert_eq!(
            model.pair(CHAR_TAG | 'x' as u32, id("a")),
            Some((id("xa"), model.ranks[id("xa") as usize]))
        );
        // Tagged characters in keys need the wide table.
        assert!(matches!(model.pairs, PairTable::Wide(_)));
        // A frozen user-defined character never merges.
        assert_eq!(model.pair(id("a"), id("§")), None);
        // Equal scores share a rank.
        assert_eq!(
            model.ranks[id("ab") as usize],
            model.ranks[id("bc") as usize]
        );
        assert!(model.ranks[id("b") as usize] > model.ranks[id("a") as usize]);
    }

    #[test]
    fn models_it_cannot_reproduce_are_refused() {
        let refused = |edit: &dyn Fn(&mut ModelProto)| {
            let mut proto = synthetic_model();
            edit(&mut proto);
            SentencePieceBpe::new(&proto).err().map(|e| e.to_string())
        };
        assert!(
            refused(&|p| p.pieces.push(piece("ab", -1.0, PieceType::Normal)))
                .unwrap()
                .contains("defined twice")
        );
        assert!(
            refused(&|p| p.pieces.push(piece("zz", -1.0, PieceType::Unused)))
                .unwrap()
                .contains("unused")
        );
        assert!(
            refused(&|p| p.pieces.push(piece("~", 0.0, PieceType::Control)))
                .unwrap()
                .contains("single character")
        );
        assert!(
            refused(&|p| p.pieces.push(piece("zq", f32::NAN, PieceType::Normal)))
                .unwrap()
                .contains("score")
        );
        assert!(refused(&|_| {}).is_none());
    }

    /// The Mistral v3 model, located or fetched as the CLI does.
    fn mistral_model() -> ModelProto {
        let located = crate::chat::acquire::ModelSearch::from_env(
            std::env::var_os("PERFWARDEN_TOKENIZER").map(Into::into),
        )
        .locate(&mut |note| eprintln!("{note}"))
        .expect("the tokenizer model must be available or fetchable");
        ModelProto::decode(&std::fs::read(located.path).unwrap()).unwrap()
    }

    #[test]
    fn agrees_with_the_reference_on_the_mistral_model() {
        let proto = mistral_model();
        let reference = Reference::new(&proto);
        let models = variants(&proto);
        assert!(matches!(models[0].1.pairs, PairTable::Compact(_)));
        let normal = normal_pieces(&proto);
        let mut fragments = normal.clone();
        fragments.extend([
            "[REFERENCE_DOC_3]",
            "[REFERENCE_DOC_1",
            "[REF",
            "DOC_12]",
            "😀",
            "\u{10FFFF}",
            "\u{301}",
        ]);
        let alphabet: Vec<char> = "abcdefghijklmnopqrstuvwxyz ABZ0123456789▁▁▁.,-_'\"\n\tабвгдежαβγ日本語中文字한국어العربيةहिन्दीçéüß😀🎉🚀👍🏽\u{200d}\u{301}"
            .chars()
            .map(|c| if c == ' ' { SPACE_SYMBOL } else { c })
            .collect();
        let mut rng = SplitMix64::new(7);
        for round in 0..3000 {
            let max_chars = if round % 10 == 0 { 3000 } else { 60 };
            let word = random_word(&mut rng, &alphabet, &fragments, max_chars);
            assert_agrees(&reference, &models, &word);
        }
    }

    #[test]
    fn long_words_agree_with_the_reference() {
        // Long enough to be cut into segments, and in one run for the default
        // agenda to counting-sort its pairs.
        let proto = mistral_model();
        let reference = Reference::new(&proto);
        let models = variants(&proto);
        let mut rng = SplitMix64::new(3);
        let letters: String = (0..40_000)
            .map(|_| *rng.pick(&['a', 'b', 'e', 'n', 's', 't']))
            .collect();
        let digits: String = (0..40_000)
            .map(|_| char::from(b'0' + rng.below(10) as u8))
            .collect();
        let normal = normal_pieces(&proto);
        let pieces: String = (0..12_000).map(|_| *rng.pick(&normal)).collect();
        for word in [
            "▁".repeat(40_001),
            format!("{}end", "▁".repeat(40_000)),
            "a".repeat(40_000),
            "ab".repeat(20_000),
            letters,
            digits,
            pieces,
        ] {
            assert_agrees(&reference, &models, &word);
        }
    }

    /// Runs of one symbol form their pairs in sweeps along the word, which
    /// the agenda's per-rank queues take; runs of two alternating symbols and
    /// words made of runs of several mix those queues with the heap.
    #[test]
    fn runs_of_repeated_symbols_agree_with_the_reference() {
        let proto = mistral_model();
        let reference = Reference::new(&proto);
        let models = variants(&proto);
        let singles = ['a', 'e', 'z', 'Q', '▁', '0', '.', '-', 'é', '中', '😀'];
        for c in singles {
            for len in (1..70).chain([127, 128, 129, 1000, 1023, 4097, 9001, 20_000]) {
                assert_agrees(&reference, &models, &c.to_string().repeat(len));
            }
        }
        for pair in ["ab", "▁a", "a▁", "ea", "0.", "éz", "aa▁", "abc"] {
            for repeats in [1, 2, 3, 50, 513, 4000, 12_000] {
                assert_agrees(&reference, &models, &pair.repeat(repeats));
            }
        }
        let mut rng = SplitMix64::new(17);
        for _ in 0..60 {
            let mut word = String::new();
            let target = 1 + rng.below(30_000) as usize;
            while word.len() < target {
                let c = *rng.pick(&singles);
                let longest = if rng.below(4) == 0 { 3000 } else { 40 };
                let len = 1 + rng.below(longest) as usize;
                word.extend(std::iter::repeat_n(c, len));
            }
            assert_agrees(&reference, &models, &word);
        }
        let synthetic = synthetic_model();
        let reference = Reference::new(&synthetic);
        let models = variants(&synthetic);
        let alphabet: Vec<char> = "abcxéü▁§z😀".chars().collect();
        for _ in 0..300 {
            let mut word = String::new();
            let target = 1 + rng.below(3000) as usize;
            while word.len() < target {
                let c = *rng.pick(&alphabet);
                let len = 1 + rng.below(200) as usize;
                word.extend(std::iter::repeat_n(c, len));
            }
            assert_agrees(&reference, &models, &word);
        }
    }

    /// Cuts with little or no lookahead often fall where the whole word's
    /// run merges across: the check must refuse exactly those, so whatever it
    /// accepts is the whole word's encoding.
    fn assert_segments_hold_or_are_refused(
        proto: &ModelProto,
        alphabet: &[char],
        fragments: &[&str],
        seed: u64,
    ) {
        let reference = Reference::new(proto);
        let mut model = SentencePieceBpe::new(proto).unwrap();
        let mut rng = SplitMix64::new(seed);
        let (mut accepted, mut refused) = (0, 0);
        for _ in 0..3000 {
            model.segment_bytes = 1 + rng.index(60);
            // Past the cut, at least the longest user-defined piece, so that
            // the cut is not refused for the initial split's sake alone.
            model.segment_lookahead = model.max_user_defined_bytes + rng.index(16);
            let word = random_word(&mut rng, alphabet, fragments, 400);
            // Ids already in the output stay, whatever the outcome.
            let mut ids = vec![u32::MAX];
            let cut = word.len() > model.segment_bytes + model.segment_lookahead;
            if model.encode_in_segments(&word, &mut ids) {
                accepted += usize::from(cut);
                assert_eq!(ids[1..], reference.encode(&word), "{word:?}");
            } else {
                refused += 1;
                assert_eq!(ids, [u32::MAX], "{word:?}");
            }
        }
        assert!(
            accepted > 200 && refused > 200,
            "{accepted} cut and accepted, {refused} refused: both outcomes must be tested"
        );
    }

    #[test]
    fn segments_hold_or_are_refused_on_a_synthetic_model() {
        let alphabet: Vec<char> = "aabcxéü▁§[U]z😀".chars().collect();
        let fragments = [
            "a",
            "ab",
            "bca",
            "▁▁▁",
            "x",
            "[U]",
            "[UU]",
            "§",
            "aaaa",
            "xxa",
        ];
        assert_segments_hold_or_are_refused(&synthetic_model(), &alphabet, &fragments, 13);
    }

    #[test]
    fn segments_hold_or_are_refused_on_the_mistral_model() {
        let proto = mistral_model();
        let alphabet: Vec<char> = "aaabeeinnorsttu▁▁0123é日本😀".chars().collect();
        let normal = normal_pieces(&proto);
        assert_segments_hold_or_are_refused(&proto, &alphabet, &normal, 17);
    }

    /// The segments must hold on long text, not fall back to one run, or the
    /// cost per byte would grow with the word again.
    #[test]
    fn long_words_are_encoded_in_segments() {
        let proto = mistral_model();
        let reference = Reference::new(&proto);
        let model = SentencePieceBpe::new(&proto).unwrap();
        let mut rng = SplitMix64::new(19);
        let letters: String = (0..300_000)
            .map(|_| char::from(b'a' + rng.below(26) as u8))
            .collect();
        let frequent_letters: String = (0..300_000)
            .map(|_| *rng.pick(&['a', 'b', 'e', 'n', 's', 't']))
            .collect();
        let normal = normal_pieces(&proto);
        let pieces: String = (0..100_000).map(|_| *rng.pick(&normal)).collect();
        let cjk: String = (0..100_000)
            .map(|_| *rng.pick(&['日', '本', '語', '中', '文', '字', '😀']))
            .collect();
        for word in [
            letters,
            frequent_letters,
            pieces,
            cjk,
            "▁".repeat(100_000),
            "a".repeat(300_000),
            "ab".repeat(150_000),
        ] {
            let mut ids = Vec::new();
            assert!(
                model.encode_in_segments(&word, &mut ids),
                "refused {}...",
                word.chars().take(20).collect::<String>()
            );
            assert_eq!(ids, reference.encode(&word));
        }
    }
}
