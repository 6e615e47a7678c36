//! The Mistral v3 tokenizer: the SentencePiece model wrapped in a `tokenizers`
//! pipeline (prepend the dummy prefix, escape spaces, split into words, encode).

use std::time::Instant;

use tokenizers::normalizers::{Prepend, Replace, Sequence};
use tokenizers::{DecoderWrapper, NormalizerWrapper, PostProcessorWrapper, TokenizerImpl};

use super::error::TokenizerLoadError;
use super::sentencepiece::{
    ModelProto, PieceType, SPACE_SYMBOL, SentencePieceBpe, SentencePieceWords,
};

pub use tokenizers::Error as TokenizerError;

/// The `tokenizers` pipeline that reproduces SentencePiece for this model.
pub type SentencePieceTokenizer = TokenizerImpl<
    SentencePieceBpe,
    NormalizerWrapper,
    SentencePieceWords,
    PostProcessorWrapper,
    DecoderWrapper,
>;

/// Ids of the control tokens the v3 chat template emits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ControlTokens {
    pub bos: u32,
    pub eos: u32,
    pub begin_inst: u32,
    pub end_inst: u32,
    pub tool_calls: u32,
    pub begin_available_tools: u32,
    pub end_available_tools: u32,
    pub begin_tool_results: u32,
    pub end_tool_results: u32,
}

pub struct MistralTokenizer {
    pipeline: SentencePieceTokenizer,
    control: ControlTokens,
}

impl std::fmt::Debug for MistralTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MistralTokenizer")
            .field("vocab_size", &self.pipeline.get_model().pieces().len())
            .field("control", &self.control)
            .finish()
    }
}

impl MistralTokenizer {
    /// Builds the tokenizer from the bytes of a SentencePiece `.model` file.
    pub fn from_model_bytes(bytes: &[u8]) -> Result<Self, TokenizerLoadError> {
        let proto = ModelProto::decode(bytes)?;
        let model = SentencePieceBpe::new(&proto)?;
        let control_id = |name: &'static str| {
            proto
                .pieces
                .iter()
                .position(|p| p.text == name && p.kind == PieceType::Control)
                .map(|id| id as u32)
                .ok_or(TokenizerLoadError::MissingControlToken(name))
        };
        let control = ControlTokens {
            bos: proto.bos_id,
            eos: proto.eos_id,
            begin_inst: control_id("[INST]")?,
            end_inst: control_id("[/INST]")?,
            tool_calls: control_id("[TOOL_CALLS]")?,
            begin_available_tools: control_id("[AVAILABLE_TOOLS]")?,
            end_available_tools: control_id("[/AVAILABLE_TOOLS]")?,
            begin_tool_results: control_id("[TOOL_RESULTS]")?,
            end_tool_results: control_id("[/TOOL_RESULTS]")?,
        };
        let space = SPACE_SYMBOL.to_string();
        let replace = Replace::new(" ", space.as_str())
            .map_err(|e| TokenizerLoadError::Malformed(e.to_string()))?;
        // SentencePiece adds the dummy prefix to non-empty text only; the
        // `Prepend` normalizer does the same.
        let normalizer = Sequence::new(vec![
            NormalizerWrapper::Prepend(Prepend::new(space.clone())),
            NormalizerWrapper::Replace(replace),
        ]);
        let mut pipeline = TokenizerImpl::new(model);
        pipeline
            .with_normalizer(Some(NormalizerWrapper::Sequence(normalizer)))
            .with_pre_tokenizer(Some(SentencePieceWords));
        Ok(Self { pipeline, control })
    }

    /// Encodes plain text as SentencePiece does (`encode(text)`, no BOS/EOS);
    /// control tokens are never produced from text.
    ///
    /// This runs the pipeline's stages directly (the same normalization, word
    /// split and model as [`Self::pipeline`]) without `tokenizers`' offset
    /// bookkeeping, which costs many times the encoding itself on the
    /// contract's payloads (docs/subject.md). Tests check both routes give the same ids.
    pub fn encode(&self, text: &str, out: &mut Vec<u32>) {
        let mut cursor = TextCursor::START;
        self.encode_until(text, &mut cursor, out, None);
    }

    /// [`Self::encode`] from `cursor` on, stopping at a word boundary once
    /// `deadline` has passed: then `cursor` says where to go on from and
    /// the result is false. The ids of a text encoded in several stretches
    /// are those of one [`Self::encode`].
    ///
    /// With a deadline, the clock is read once per [`CHECK_BYTES`] of text,
    /// and a word longer than [`LONG_WORD_BYTES`] stops the encoding before
    /// it, deadline or not: how long such a word takes is not bounded by
    /// its length alone (docs/tokenizer-cliffs.md), so it is left to a
    /// thread that may take its time.
    pub fn encode_until(
        &self,
        text: &str,
        cursor: &mut TextCursor,
        out: &mut Vec<u32>,
        deadline: Option<Instant>,
    ) -> bool {
        if text.is_empty() {
            return true;
        }
        let mut words = self.pipeline.get_model().word_encoder();
        let bytes = text.as_bytes();
        // Normalized one word at a time (the words of `word_ranges`: a run
        // of spaces, then everything up to the next space) into a buffer
        // sized for that word, so a huge text never has a normalized copy
        // beside it, where each space grows to a 3-byte `▁`.
        let mut word = String::new();
        // The dummy prefix opens the first word's run of spaces.
        let TextCursor {
            at: mut start,
            mut spaces,
        } = *cursor;
        let mut checked = start;
        while start < text.len() {
            // Where the search for this word's end gives up.
            let search_end = match deadline {
                Some(deadline) => {
                    if start - checked >= CHECK_BYTES {
                        checked = start;
                        if Instant::now() >= deadline {
                            *cursor = TextCursor { at: start, spaces };
                            return false;
                        }
                    }
                    bytes.len().min(start + LONG_WORD_BYTES)
                }
                None => bytes.len(),
            };
            let mut end = start;
            let mut word_spaces = spaces;
            while end < search_end
                && let Some(len) = space_at(bytes, end)
            {
                word_spaces += 1;
                end += len;
            }
            let body = end;
            while end < search_end {
                match bytes[end..search_end]
                    .iter()
                    .position(|b| *b == b' ' || *b == SPACE_LEAD_BYTE)
                {
                    Some(offset) if space_at(bytes, end + offset).is_some() => {
                        end += offset;
                        break;
                    }
                    Some(offset) => end += offset + 1,
                    None => end = search_end,
                }
            }
            if end >= search_end && search_end < bytes.len() {
                // A long word (or run of spaces), or a word's end not found
                // within the search.
                *cursor = TextCursor { at: start, spaces };
                return false;
            }
            word.clear();
            word.reserve(word_spaces * SPACE_SYMBOL.len_utf8() + (end - body));
            for _ in 0..word_spaces {
                word.push_str(SPACE_SYMBOL_STR);
            }
            word.push_str(&text[body..end]);
            words.encode_word(&word, out);
            spaces = 0;
            start = end;
        }
        *cursor = TextCursor {
            at: text.len(),
            spaces: 0,
        };
        true
    }

    /// Encodes through the full `tokenizers` pipeline.
    pub fn encode_with_pipeline(&self, text: &str) -> Result<Vec<u32>, TokenizerError> {
        Ok(self.pipeline.encode_fast(text, false)?.get_ids().to_vec())
    }

    pub fn control(&self) -> &ControlTokens {
        &self.control
    }

    /// The underlying `tokenizers` pipeline.
    pub fn pipeline(&self) -> &SentencePieceTokenizer {
        &self.pipeline
    }

    /// The piece of an id, for display.
    pub fn id_to_piece(&self, id: u32) -> Option<&str> {
        self.pipeline
            .get_model()
            .pieces()
            .get(id as usize)
            .map(|p| p.text.as_str())
    }
}

/// `▁` in UTF-8.
const SPACE_SYMBOL_UTF8: [u8; 3] = {
    let mut utf8 = [0; 3];
    SPACE_SYMBOL.encode_utf8(&mut utf8);
    utf8
};
const SPACE_SYMBOL_STR: &str = match std::str::from_utf8(&SPACE_SYMBOL_UTF8) {
    Ok(text) => text,
    Err(_) => panic!("a char encodes to UTF-8"),
};
/// With `' '`, the only byte a space starts with.
const SPACE_LEAD_BYTE: u8 = SPACE_SYMBOL_UTF8[0];

/// With a deadline, how much text [`MistralTokenizer::encode_until`]
/// encodes between two reads of the clock: a few microseconds of ordinary
/// text, so the clock costs next to nothing and the deadline is overrun by
/// little.
pub const CHECK_BYTES: usize = 2 * 1024;
/// With a deadline, the longest word [`MistralTokenizer::encode_until`]
/// encodes; it stops before a longer one.
pub const LONG_WORD_BYTES: usize = 1024;

/// Where the encoding of a text stands: the next word starts at byte `at`,
/// with `spaces` spaces already counted into it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TextCursor {
    at: usize,
    spaces: usize,
}

impl TextCursor {
    /// The start of a text: the dummy prefix opens the first word's run of
    /// spaces.
    pub const START: Self = Self { at: 0, spaces: 1 };

    /// The byte the next word starts at.
    pub fn at(&self) -> usize {
        self.at
    }
}

/// The length of the space at `at` (`' '`, or `▁` already in the text), if
/// one starts there.
fn space_at(bytes: &[u8], at: usize) -> Option<usize> {
    // Fixed-size patterns, so the comparison compiles to a few byte compares
    // rather than a call to `memcmp` for every word.
    match bytes.get(at..)? {
        [b' ', ..] => Some(1),
        [a, b, c, ..] if [*a, *b, *c] == SPACE_SYMBOL_UTF8 => Some(SPACE_SYMBOL_UTF8.len()),
        _ => None,
    }
}
