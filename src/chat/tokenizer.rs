//! The Mistral v3 tokenizer: the SentencePiece model wrapped in a `tokenizers`
//! pipeline (prepend the dummy prefix, escape spaces, split into words, encode).

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
        if text.is_empty() {
            return;
        }
        let model = self.pipeline.get_model();
        let bytes = text.as_bytes();
        // Normalized one word at a time (the words of `word_ranges`: a run
        // of spaces, then everything up to the next space) into a buffer
        // sized for that word, so a huge text never has a normalized copy
        // beside it, where each space grows to a 3-byte `▁`.
        let mut word = String::new();
        // The dummy prefix opens the first word's run of spaces.
        let mut spaces = 1;
        let mut start = 0;
        while start < text.len() {
            let mut end = start;
            while let Some(len) = space_at(bytes, end) {
                spaces += 1;
                end += len;
            }
            let body = end;
            while end < bytes.len() {
                match bytes[end..]
                    .iter()
                    .position(|b| *b == b' ' || *b == SPACE_LEAD_BYTE)
                {
                    Some(offset) if space_at(bytes, end + offset).is_some() => {
                        end += offset;
                        break;
                    }
                    Some(offset) => end += offset + 1,
                    None => end = bytes.len(),
                }
            }
            word.clear();
            word.reserve(spaces * SPACE_SYMBOL.len_utf8() + (end - body));
            for _ in 0..spaces {
                word.push_str(SPACE_SYMBOL_STR);
            }
            word.push_str(&text[body..end]);
            model.encode_word(&word, out);
            spaces = 0;
            start = end;
        }
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
