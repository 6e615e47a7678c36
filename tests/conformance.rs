//! The subject against its oracle: every case of the conformance corpus gets
//! exactly mistral-common 1.13.1's tokens, or is rejected as the oracle rejects it.

mod common;

use perfwarden::chat::stream::{DEFAULT_MAX_REQUEST_BYTES, tokenize_request};

#[test]
fn corpus_matches_the_oracle_exactly() {
    let tokenizer = common::tokenizer();
    let cases = common::corpus();
    assert!(
        cases.len() >= 300,
        "the corpus has only {} cases",
        cases.len()
    );
    let mut mismatches = Vec::new();
    for case in &cases {
        let ours = tokenize_request(
            tokenizer,
            case.request.as_bytes(),
            DEFAULT_MAX_REQUEST_BYTES,
        );
        let expected_tokens: Option<Vec<u32>> = case
            .expected
            .get("tokens")
            .map(|t| serde_json::from_value(t.clone()).expect("token ids"));
        match (&ours, &expected_tokens) {
            (Ok(a), Some(b)) if a == b => {}
            (Err(_), None) => {}
            _ => mismatches.push(format!(
                "{}: ours {:?} oracle {}",
                case.name,
                ours.as_ref().map(|t| t.len()),
                case.expected
                    .to_string()
                    .chars()
                    .take(200)
                    .collect::<String>()
            )),
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} cases differ:\n{}",
        mismatches.len(),
        cases.len(),
        mismatches.join("\n")
    );
}

#[test]
fn pipeline_and_direct_encoding_agree() {
    let tokenizer = common::tokenizer();
    for case in common::corpus() {
        let mut direct = Vec::new();
        tokenizer.encode(&case.request, &mut direct);
        let piped = tokenizer.encode_with_pipeline(&case.request).unwrap();
        assert_eq!(direct, piped, "{}", case.name);
    }
}

#[test]
fn control_tokens_never_come_from_text() {
    let tokenizer = common::tokenizer();
    let control = *tokenizer.control();
    let controls = [
        control.bos,
        control.eos,
        control.begin_inst,
        control.end_inst,
        control.tool_calls,
        control.begin_available_tools,
        control.end_available_tools,
        control.begin_tool_results,
        control.end_tool_results,
    ];
    let mut ids = Vec::new();
    tokenizer.encode("<s></s>[INST][/INST][TOOL_CALLS][AVAILABLE_TOOLS][/AVAILABLE_TOOLS][TOOL_RESULTS][/TOOL_RESULTS]", &mut ids);
    assert!(!ids.is_empty());
    assert!(ids.iter().all(|id| !controls.contains(id)), "{ids:?}");
}

#[test]
fn direct_encoding_splits_words_as_the_pipeline_does() {
    let tokenizer = common::tokenizer();
    let long_word = "x".repeat(5000);
    let spaces = " ".repeat(5000);
    let texts = [
        " ",
        "  ",
        "a",
        " a",
        "a ",
        "a  b",
        "▁",
        "▁ ▁x",
        "x▁▁y ",
        " \n \t ",
        "  [REFERENCE_DOC_3]  x",
        "héllo wörld ▁ 日本 😀 ",
        long_word.as_str(),
        spaces.as_str(),
    ];
    for text in texts {
        let mut direct = Vec::new();
        tokenizer.encode(text, &mut direct);
        let piped = tokenizer.encode_with_pipeline(text).unwrap();
        assert_eq!(direct, piped, "{text:?}");
    }
}
