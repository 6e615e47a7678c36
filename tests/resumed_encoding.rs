//! An encoding stopped at deadlines and taken up again, as the async wrapper
//! does when a request outgrows its time on the caller, gives exactly the
//! tokens of one call: on the conformance corpus and on texts built to stop
//! inside runs of spaces, long words and multi-byte characters.

mod common;

use std::time::{Duration, Instant};

use perfwarden::chat::template::{Applied, PartialEncoding, apply_until};
use perfwarden::chat::{ChatRequest, apply_mistral_chat_template};
use perfwarden::measure::adversarial;

/// Encodes `request` in stretches, each with a deadline `stretch` from its
/// start (a deadline already past when `stretch` is zero); a stretch that
/// gets nowhere (a long word) is followed by one with no deadline, as on the
/// worker. Returns the tokens and how many times the encoding stopped.
fn in_stretches(request: &ChatRequest, stretch: Duration) -> (Vec<u32>, usize) {
    let tokenizer = common::tokenizer();
    let mut partial = PartialEncoding::default();
    let mut stops = 0;
    let mut stalled = false;
    loop {
        let deadline = (!stalled).then(|| Instant::now() + stretch);
        match apply_until(tokenizer, request, partial.clone(), deadline).unwrap() {
            Applied::Done(tokens) => return (tokens, stops),
            Applied::Stopped(next) => {
                stops += 1;
                stalled = next == partial;
                partial = next;
            }
        }
    }
}

#[test]
fn the_corpus_encodes_alike_in_stretches() {
    let tokenizer = common::tokenizer();
    for case in common::corpus() {
        let Ok(request) = ChatRequest::from_json(&case.request) else {
            continue;
        };
        let whole = apply_mistral_chat_template(tokenizer, &request);
        match whole {
            Ok(whole) => {
                let (tokens, _) = in_stretches(&request, Duration::ZERO);
                assert_eq!(tokens, whole, "{}", case.name);
            }
            Err(error) => {
                let stretched = apply_until(
                    tokenizer,
                    &request,
                    PartialEncoding::default(),
                    Some(Instant::now()),
                );
                assert_eq!(
                    stretched.unwrap_err().to_string(),
                    error.to_string(),
                    "{}",
                    case.name
                );
            }
        }
    }
}

#[test]
fn texts_that_stop_inside_spaces_long_words_and_wide_characters_encode_alike() {
    let tokenizer = common::tokenizer();
    let mixed = {
        let mut text = String::new();
        for i in 0..400 {
            text.push_str(&"word ".repeat(i % 7 + 1));
            text.push_str(&" ".repeat(i % 5));
            text.push_str(&"▁".repeat(i % 3));
            text.push_str(&"é漢😀".repeat(i % 4));
            if i % 50 == 7 {
                text.push_str(&"x".repeat(1500));
            }
            if i % 60 == 11 {
                text.push_str(&" ".repeat(3000));
            }
        }
        text
    };
    let requests = [
        adversarial::user_message(&mixed),
        adversarial::user_message(&"Test content ".repeat(5000)),
        adversarial::spaces(20_000),
        adversarial::unbroken_word(20_000),
        adversarial::novel_prose(40_000),
        adversarial::long_words(40_000, 300),
        adversarial::cjk_emoji(40_000),
        adversarial::digits(40_000),
        adversarial::huge_integers_tool_result(40_000),
        adversarial::empty_arrays_tool_result(40_000),
        adversarial::many_required(2_000),
    ];
    for json in requests {
        let request = ChatRequest::from_json(&json).unwrap();
        let whole = apply_mistral_chat_template(tokenizer, &request).unwrap();
        let (tokens, stops) = in_stretches(&request, Duration::ZERO);
        assert_eq!(tokens, whole, "{}", &json[..80.min(json.len())]);
        if request.work_bytes() > 8 * 1024 {
            assert!(stops > 0, "a request of {} bytes never stopped", json.len());
        }
        // Stops where the clock happens to say, too.
        let (tokens, _) = in_stretches(&request, Duration::from_micros(5));
        assert_eq!(tokens, whole);
    }
}
