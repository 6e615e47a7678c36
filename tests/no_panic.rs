//! No input panics: arbitrary JSON shapes and arbitrary Unicode go through
//! parsing and templating and come back as tokens or an error value.

mod common;

use perfwarden::chat::pyjson::PyValue;
use perfwarden::chat::stream::tokenize_request;
use perfwarden::chat::{ChatRequest, apply_mistral_chat_template};
use proptest::prelude::*;

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[ \\t\\r\\n▁a-z0-9\\[\\]/<>_]{0,40}",
        Just("[INST]".to_string()),
        Just("abcDEF123".to_string()),
        Just("get_weather".to_string()),
        Just("{\"a\": [1, 2.5, null]}".to_string()),
    ]
}

fn scalar() -> impl Strategy<Value = PyValue> {
    prop_oneof![
        Just(PyValue::Null),
        any::<bool>().prop_map(PyValue::Bool),
        any::<i64>().prop_map(|i| PyValue::Int(i.to_string())),
        any::<f64>().prop_map(PyValue::Float),
        text().prop_map(PyValue::Str),
    ]
}

fn json_value() -> impl Strategy<Value = PyValue> {
    scalar().prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(PyValue::List),
            prop::collection::vec((text(), inner), 0..5).prop_map(PyValue::Dict),
        ]
    })
}

fn role() -> impl Strategy<Value = PyValue> {
    prop_oneof![
        4 => prop::sample::select(vec!["user", "assistant", "tool", "system", "developer"])
            .prop_map(|r| PyValue::Str(r.into())),
        1 => json_value(),
    ]
}

fn content() -> impl Strategy<Value = PyValue> {
    let chunk = (
        prop::sample::select(vec!["text", "image_url", "thinking", "bogus"]),
        text(),
    )
        .prop_map(|(kind, t)| {
            PyValue::Dict(vec![
                ("type".into(), PyValue::Str(kind.into())),
                ("text".into(), PyValue::Str(t)),
            ])
        });
    prop_oneof![
        4 => text().prop_map(PyValue::Str),
        2 => prop::collection::vec(chunk, 0..4).prop_map(PyValue::List),
        1 => json_value(),
    ]
}

fn tool_call() -> impl Strategy<Value = PyValue> {
    (
        text(),
        text(),
        prop_oneof![text().prop_map(PyValue::Str), json_value()],
    )
        .prop_map(|(id, name, arguments)| {
            PyValue::Dict(vec![
                ("id".into(), PyValue::Str(id)),
                (
                    "function".into(),
                    PyValue::Dict(vec![
                        ("name".into(), PyValue::Str(name)),
                        ("arguments".into(), arguments),
                    ]),
                ),
            ])
        })
}

fn message() -> impl Strategy<Value = PyValue> {
    (
        role(),
        prop::option::of(content()),
        prop::option::of(prop::collection::vec(tool_call(), 0..3)),
        prop::option::of(text()),
    )
        .prop_map(|(role, content, calls, call_id)| {
            let mut fields = vec![("role".into(), role)];
            if let Some(c) = content {
                fields.push(("content".into(), c));
            }
            if let Some(calls) = calls {
                fields.push(("tool_calls".into(), PyValue::List(calls)));
            }
            if let Some(id) = call_id {
                fields.push(("tool_call_id".into(), PyValue::Str(id)));
            }
            PyValue::Dict(fields)
        })
}

fn chat_request() -> impl Strategy<Value = PyValue> {
    (
        prop::collection::vec(message(), 0..6),
        prop::option::of(prop::collection::vec(json_value(), 0..3)),
    )
        .prop_map(|(messages, tools)| {
            let mut fields = vec![("messages".into(), PyValue::List(messages))];
            if let Some(tools) = tools {
                fields.push(("tools".into(), PyValue::List(tools)));
            }
            PyValue::Dict(fields)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn chat_shaped_requests_never_panic(document in chat_request()) {
        let request = ChatRequest::from_value(document.clone());
        let direct = apply_mistral_chat_template(common::tokenizer(), &request);
        // The same request through its JSON text gives the same answer.
        let via_text = tokenize_request(common::tokenizer(), document.dumps().as_bytes(), usize::MAX);
        prop_assert_eq!(direct.is_ok(), via_text.is_ok());
        if let (Ok(a), Ok(b)) = (&direct, &via_text) {
            prop_assert_eq!(a, b);
        }
    }

    #[test]
    fn arbitrary_json_never_panics(document in json_value()) {
        let _ = apply_mistral_chat_template(common::tokenizer(), &ChatRequest::from_value(document));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = tokenize_request(common::tokenizer(), &bytes, usize::MAX);
    }

    #[test]
    fn any_text_encodes_the_same_through_the_pipeline(text in any::<String>()) {
        let mut direct = Vec::new();
        common::tokenizer().encode(&text, &mut direct);
        prop_assert_eq!(direct, common::tokenizer().encode_with_pipeline(&text).unwrap());
    }
}

/// A document built in code can be deeper than any JSON text; building,
/// cloning, applying and dropping the request must not recurse through it.
#[test]
fn a_document_of_any_depth_is_refused_without_recursing() {
    let mut deep = PyValue::Null;
    for _ in 0..1_000_000 {
        deep = PyValue::List(vec![deep]);
    }
    let request = ChatRequest::from_value(PyValue::Dict(vec![("messages".into(), deep)]));
    let copy = request.clone();
    let error = apply_mistral_chat_template(common::tokenizer(), &copy).unwrap_err();
    assert!(error.to_string().contains("nested deeper"), "{error}");
}

/// The deepest JSON text accepted is tokenized, on the caller's thread and on
/// the async wrapper's worker (the long content sends it there); one level
/// more is refused.
#[test]
fn the_deepest_accepted_json_is_tokenized_on_every_thread() {
    let limit = perfwarden::chat::pyjson::MAX_DEPTH;
    let request = |levels: usize| {
        format!(
            r#"{{"messages":[{{"role":"user","content":"{}"}},{{"role":"assistant","tool_calls":[{{"id":"abcDEF123","function":{{"name":"f","arguments":{{"a":{}{}}}}}}}]}},{{"role":"tool","tool_call_id":"abcDEF123","content":"r"}}],"pad":{}{}}}"#,
            "q ".repeat(perfwarden::chat::worker::INLINE_MAX_BYTES),
            "[".repeat(levels - 7),
            "]".repeat(levels - 7),
            "[".repeat(levels - 1),
            "]".repeat(levels - 1),
        )
    };
    let deepest = ChatRequest::from_json(&request(limit)).unwrap();
    let tokens = apply_mistral_chat_template(common::tokenizer(), &deepest).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let queued = runtime
        .block_on(perfwarden::chat::async_apply_mistral_chat_template(
            common::tokenizer(),
            std::sync::Arc::new(deepest),
        ))
        .unwrap();
    assert_eq!(queued, tokens);
    assert!(ChatRequest::from_json(&request(limit + 1)).is_err());
}
