//! Requests that probe the tokenizer's worst cost per byte: text the word
//! cache cannot help with (one long word, novel words, runs of one character,
//! byte fallback) and JSON that stresses the template's other stages (huge
//! integers, many empty arrays, a long `required` list).
//!
//! Every payload is generated deterministically and returned as the request's
//! JSON text, so a benchmark or a contract can size it by its bytes.

use super::payload::Payload;
use crate::chat::stream::DEFAULT_MAX_REQUEST_BYTES;
use crate::splitmix::SplitMix64;

/// One adversarial request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cliff {
    /// The contract's large payload: the reference the others are compared to.
    Large,
    Spaces,
    /// One word that is a run of one letter: its merges sweep along it.
    OneLetter,
    UnbrokenWord,
    UnbrokenWord8MiB,
    /// The longest single word a request within the default limit can hold.
    UnbrokenWordAtLimit,
    NovelProse,
    /// Words too long for the word cache, of 300 and of 4,000 letters.
    Words300Letters,
    Words4000Letters,
    Digits,
    CjkEmoji,
    HugeIntegersToolResult,
    EmptyArraysToolResult,
    IgnoredEmptyArrays,
    ManyRequired,
}

/// About a megabyte: the size of the text-heavy payloads.
const MEGABYTE: usize = 1 << 20;

impl Cliff {
    pub const ALL: [Cliff; 15] = [
        Cliff::Large,
        Cliff::Spaces,
        Cliff::OneLetter,
        Cliff::UnbrokenWord,
        Cliff::UnbrokenWord8MiB,
        Cliff::UnbrokenWordAtLimit,
        Cliff::NovelProse,
        Cliff::Words300Letters,
        Cliff::Words4000Letters,
        Cliff::Digits,
        Cliff::CjkEmoji,
        Cliff::HugeIntegersToolResult,
        Cliff::EmptyArraysToolResult,
        Cliff::IgnoredEmptyArrays,
        Cliff::ManyRequired,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Cliff::Large => "large",
            Cliff::Spaces => "spaces",
            Cliff::OneLetter => "one_letter",
            Cliff::UnbrokenWord => "unbroken_word",
            Cliff::UnbrokenWord8MiB => "unbroken_word_8mib",
            Cliff::UnbrokenWordAtLimit => "unbroken_word_at_limit",
            Cliff::NovelProse => "novel_prose",
            Cliff::Words300Letters => "words_of_300_letters",
            Cliff::Words4000Letters => "words_of_4000_letters",
            Cliff::Digits => "digits",
            Cliff::CjkEmoji => "cjk_emoji",
            Cliff::HugeIntegersToolResult => "huge_integers_tool_result",
            Cliff::EmptyArraysToolResult => "empty_arrays_tool_result",
            Cliff::IgnoredEmptyArrays => "ignored_empty_arrays",
            Cliff::ManyRequired => "many_required",
        }
    }

    /// The request as JSON text.
    pub fn request_json(self) -> String {
        match self {
            Cliff::Large => user_message(&Payload::Large.content()),
            Cliff::Spaces => spaces(1_000_000),
            Cliff::OneLetter => one_letter(MEGABYTE),
            Cliff::UnbrokenWord => unbroken_word(MEGABYTE),
            Cliff::UnbrokenWord8MiB => unbroken_word(8 * MEGABYTE),
            Cliff::UnbrokenWordAtLimit => {
                unbroken_word(DEFAULT_MAX_REQUEST_BYTES - user_message("").len())
            }
            Cliff::NovelProse => novel_prose(MEGABYTE),
            Cliff::Words300Letters => long_words(MEGABYTE, 300),
            Cliff::Words4000Letters => long_words(MEGABYTE, 4000),
            Cliff::Digits => digits(MEGABYTE),
            Cliff::CjkEmoji => cjk_emoji(MEGABYTE),
            Cliff::HugeIntegersToolResult => huge_integers_tool_result(MEGABYTE),
            Cliff::EmptyArraysToolResult => empty_arrays_tool_result(MEGABYTE),
            Cliff::IgnoredEmptyArrays => ignored_empty_arrays(3 * MEGABYTE),
            Cliff::ManyRequired => many_required(100_000),
        }
    }
}

fn lowercase(rng: &mut SplitMix64) -> char {
    char::from(b'a' + rng.below(26) as u8)
}

/// `{"messages": [{"role": "user", "content": <content>}]}`.
pub fn user_message(content: &str) -> String {
    serde_json::json!({"messages": [{"role": "user", "content": content}]}).to_string()
}

/// A user message that is one run of `bytes` times the letter `a`.
pub fn one_letter(bytes: usize) -> String {
    user_message(&"a".repeat(bytes))
}

/// A user message of `count` spaces: one run the word split cannot break.
pub fn spaces(count: usize) -> String {
    user_message(&" ".repeat(count))
}

/// A user message that is one word of `bytes` pseudo-random lowercase letters.
pub fn unbroken_word(bytes: usize) -> String {
    let mut rng = SplitMix64::new(1);
    user_message(&(0..bytes).map(|_| lowercase(&mut rng)).collect::<String>())
}

/// About `bytes` of words of 1 to 10 random letters, separated by spaces:
/// prose whose words are almost all new, so the word cache rarely hits.
pub fn novel_prose(bytes: usize) -> String {
    let mut rng = SplitMix64::new(2);
    let mut text = String::with_capacity(bytes + 16);
    while text.len() < bytes {
        if !text.is_empty() {
            text.push(' ');
        }
        for _ in 0..=rng.below(10) {
            text.push(lowercase(&mut rng));
        }
    }
    user_message(&text)
}

/// About `bytes` of words of exactly `letters` random lowercase letters,
/// separated by spaces: each word is new and too long to be cached.
pub fn long_words(bytes: usize, letters: usize) -> String {
    let mut rng = SplitMix64::new(5);
    let mut text = String::with_capacity(bytes + letters + 1);
    while text.len() < bytes {
        if !text.is_empty() {
            text.push(' ');
        }
        text.extend((0..letters).map(|_| lowercase(&mut rng)));
    }
    user_message(&text)
}

/// A user message that is one run of `bytes` pseudo-random digits.
pub fn digits(bytes: usize) -> String {
    let mut rng = SplitMix64::new(3);
    user_message(
        &(0..bytes)
            .map(|_| char::from(b'0' + rng.below(10) as u8))
            .collect::<String>(),
    )
}

/// About `bytes` of UTF-8 in one word: random CJK ideographs and emoji, most
/// of which the vocabulary lacks, so they fall back to byte pieces.
pub fn cjk_emoji(bytes: usize) -> String {
    let mut rng = SplitMix64::new(4);
    let mut text = String::with_capacity(bytes + 4);
    while text.len() < bytes {
        let code = if rng.below(2) == 0 {
            0x4E00 + rng.below(0x9FFF - 0x4E00 + 1)
        } else {
            0x1F300 + rng.below(0x1FAFF - 0x1F300 + 1)
        };
        text.extend(char::from_u32(code as u32));
    }
    user_message(&text)
}

/// A user question, an assistant tool call and the tool's answer `content`,
/// with the tool declared: the smallest valid conversation with a tool result.
fn tool_result(content: &str) -> String {
    serde_json::json!({
        "messages": [
            {"role": "user", "content": "Run it."},
            {"role": "assistant", "tool_calls": [{
                "id": "abcDEF123",
                "type": "function",
                "function": {"name": "run", "arguments": "{}"}
            }]},
            {"role": "tool", "tool_call_id": "abcDEF123", "content": content}
        ],
        "tools": [{"type": "function", "function": {
            "name": "run",
            "description": "Runs it.",
            "parameters": {"type": "object", "properties": {}}
        }}]
    })
    .to_string()
}

/// A tool result whose content is a JSON array of 4300-digit integers (the
/// most digits Python's `int()` accepts), about `bytes` long.
pub fn huge_integers_tool_result(bytes: usize) -> String {
    let mut rng = SplitMix64::new(5);
    let mut content = String::with_capacity(bytes + 4400);
    content.push('[');
    while content.len() < bytes {
        if content.len() > 1 {
            content.push_str(", ");
        }
        content.push(char::from(b'1' + rng.below(9) as u8));
        for _ in 1..4300 {
            content.push(char::from(b'0' + rng.below(10) as u8));
        }
    }
    content.push(']');
    tool_result(&content)
}

/// `[[], [], ...]`, about `bytes` long.
fn empty_arrays(bytes: usize) -> String {
    let count = bytes / 4;
    let mut text = String::with_capacity(count * 4 + 2);
    text.push('[');
    for i in 0..count {
        text.push_str(if i == 0 { "[]" } else { ", []" });
    }
    text.push(']');
    text
}

/// A tool result whose content is `[[], [], ...]`, about `bytes` long.
pub fn empty_arrays_tool_result(bytes: usize) -> String {
    tool_result(&empty_arrays(bytes))
}

/// A one-message request with about `bytes` of `[[], [], ...]` under a
/// top-level key the template ignores.
pub fn ignored_empty_arrays(bytes: usize) -> String {
    format!(
        r#"{{"messages": [{{"role": "user", "content": "Hello"}}], "ignored": {}}}"#,
        empty_arrays(bytes)
    )
}

/// One tool whose parameters list `count` distinct names under `required`.
pub fn many_required(count: usize) -> String {
    let names: Vec<String> = (0..count).map(|i| format!("field_{i}")).collect();
    serde_json::json!({
        "messages": [{"role": "user", "content": "Call it."}],
        "tools": [{"type": "function", "function": {
            "name": "call",
            "description": "Takes many fields.",
            "parameters": {"type": "object", "properties": {}, "required": names}
        }}]
    })
    .to_string()
}

/// The generators a contract may name, each sized by `size` (bytes of text,
/// or for `spaces` and `many_required` the count of spaces and names).
pub const GENERATORS: [&str; 12] = [
    "spaces",
    "one_letter",
    "unbroken_word",
    "novel_prose",
    "words_of_300_letters",
    "words_of_4000_letters",
    "digits",
    "cjk_emoji",
    "huge_integers_tool_result",
    "empty_arrays_tool_result",
    "ignored_empty_arrays",
    "many_required",
];

/// The request JSON of the generator called `name`, or `None` for an
/// unknown name.
pub fn generate(name: &str, size: usize) -> Option<String> {
    let generator: fn(usize) -> String = match name {
        "spaces" => spaces,
        "one_letter" => one_letter,
        "unbroken_word" => unbroken_word,
        "novel_prose" => novel_prose,
        "words_of_300_letters" => |bytes| long_words(bytes, 300),
        "words_of_4000_letters" => |bytes| long_words(bytes, 4000),
        "digits" => digits,
        "cjk_emoji" => cjk_emoji,
        "huge_integers_tool_result" => huge_integers_tool_result,
        "empty_arrays_tool_result" => empty_arrays_tool_result,
        "ignored_empty_arrays" => ignored_empty_arrays,
        "many_required" => many_required,
        _ => return None,
    };
    Some(generator(size))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::ChatRequest;
    use crate::chat::pyjson::PyValue;

    /// The request parses, is deterministic, and its size is near `bytes`.
    fn check(json: &str, again: &str, bytes: usize) -> ChatRequest {
        assert_eq!(json, again, "payloads are deterministic");
        assert!(
            json.len() >= bytes && json.len() < bytes + bytes / 8 + 1024,
            "{} bytes, expected about {bytes}",
            json.len()
        );
        ChatRequest::from_json(json).expect("the payload is valid JSON")
    }

    fn user_content(request: &ChatRequest) -> &str {
        let messages = request.document().get("messages").unwrap();
        let PyValue::List(messages) = messages else {
            panic!("messages is a list")
        };
        match messages[0].get("content") {
            Some(PyValue::Str(s)) => s,
            other => panic!("content is text, got {other:?}"),
        }
    }

    fn tool_content(request: &ChatRequest) -> &str {
        let PyValue::List(messages) = request.document().get("messages").unwrap() else {
            panic!("messages is a list")
        };
        match messages[2].get("content") {
            Some(PyValue::Str(s)) => s,
            other => panic!("content is text, got {other:?}"),
        }
    }

    #[test]
    fn large_is_the_contract_payload() {
        let request = ChatRequest::from_json(&Cliff::Large.request_json()).unwrap();
        assert_eq!(user_content(&request), Payload::Large.content());
    }

    #[test]
    fn spaces_are_one_run() {
        let request = check(&spaces(1000), &spaces(1000), 1000);
        assert_eq!(user_content(&request), " ".repeat(1000));
    }

    #[test]
    fn unbroken_word_is_lowercase_letters() {
        let request = check(&unbroken_word(5000), &unbroken_word(5000), 5000);
        let content = user_content(&request);
        assert_eq!(content.len(), 5000);
        assert!(content.bytes().all(|b| b.is_ascii_lowercase()));
    }

    #[test]
    fn novel_prose_is_short_random_words() {
        let request = check(&novel_prose(5000), &novel_prose(5000), 5000);
        let words: Vec<&str> = user_content(&request).split(' ').collect();
        assert!(words.len() > 500);
        assert!(words.iter().all(|w| (1..=10).contains(&w.len())));
        let distinct: std::collections::HashSet<_> = words.iter().collect();
        assert!(distinct.len() * 10 > words.len() * 9, "words rarely repeat");
    }

    #[test]
    fn long_words_have_the_given_length() {
        let request = check(&long_words(50_000, 300), &long_words(50_000, 300), 50_000);
        let words: Vec<&str> = user_content(&request).split(' ').collect();
        assert!(words.len() > 150);
        assert!(words.iter().all(|w| w.len() == 300));
    }

    #[test]
    fn the_word_at_the_limit_fills_the_limit() {
        assert_eq!(
            Cliff::UnbrokenWordAtLimit.request_json().len(),
            DEFAULT_MAX_REQUEST_BYTES
        );
    }

    #[test]
    fn digits_are_one_run() {
        let request = check(&digits(5000), &digits(5000), 5000);
        assert!(user_content(&request).bytes().all(|b| b.is_ascii_digit()));
    }

    #[test]
    fn cjk_emoji_mixes_both_without_spaces() {
        let request = check(&cjk_emoji(5000), &cjk_emoji(5000), 5000);
        let content = user_content(&request);
        assert!(
            content
                .chars()
                .any(|c| ('\u{4E00}'..='\u{9FFF}').contains(&c))
        );
        assert!(content.chars().any(|c| c >= '\u{1F300}'));
        assert!(!content.contains(' '));
    }

    #[test]
    fn huge_integers_have_4300_digits() {
        let json = huge_integers_tool_result(20_000);
        let request = check(&json, &huge_integers_tool_result(20_000), 20_000);
        let content = tool_content(&request);
        let numbers: Vec<&str> = content
            .trim_matches(|c| c == '[' || c == ']')
            .split(", ")
            .collect();
        assert!(numbers.len() >= 4);
        assert!(numbers.iter().all(|n| n.len() == 4300
            && !n.starts_with('0')
            && n.bytes().all(|b| b.is_ascii_digit())));
    }

    #[test]
    fn empty_arrays_tool_result_is_a_list_of_empty_lists() {
        let request = check(
            &empty_arrays_tool_result(4000),
            &empty_arrays_tool_result(4000),
            4000,
        );
        let content = tool_content(&request);
        assert!(content.starts_with("[[], []") && content.ends_with("[]]"));
    }

    #[test]
    fn ignored_empty_arrays_sit_under_an_unknown_key() {
        let request = check(
            &ignored_empty_arrays(4000),
            &ignored_empty_arrays(4000),
            4000,
        );
        let Some(PyValue::List(arrays)) = request.document().get("ignored") else {
            panic!("the ignored key holds a list")
        };
        assert_eq!(arrays.len(), 1000);
        assert_eq!(user_content(&request), "Hello");
    }

    #[test]
    fn many_required_names_are_distinct() {
        let json = many_required(1000);
        let request = check(&json, &many_required(1000), 12_000);
        let PyValue::List(tools) = request.document().get("tools").unwrap() else {
            panic!("tools is a list")
        };
        let parameters = tools[0]
            .get("function")
            .and_then(|f| f.get("parameters"))
            .unwrap();
        let Some(PyValue::List(names)) = parameters.get("required") else {
            panic!("required is a list")
        };
        let distinct: std::collections::HashSet<_> = names.iter().map(|n| n.dumps()).collect();
        assert_eq!(distinct.len(), 1000);
    }

    #[test]
    fn every_payload_has_a_distinct_name() {
        let names: std::collections::HashSet<_> = Cliff::ALL.iter().map(|c| c.name()).collect();
        assert_eq!(names.len(), Cliff::ALL.len());
    }

    #[test]
    fn every_named_generator_makes_a_request() {
        for name in GENERATORS {
            let json = generate(name, 1000).unwrap();
            ChatRequest::from_json(&json).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        assert!(generate("nonsense", 10).is_none());
    }
}
