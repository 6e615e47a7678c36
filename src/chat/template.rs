//! `apply_mistral_chat_template`: the v3 instruct template of mistral-common
//! 1.13.1 (`MistralTokenizer.v3().encode_chat_completion(
//! ChatCompletionRequest.from_openai(messages, tools))`), step for step:
//! convert the OpenAI-format request, validate it (test mode), merge
//! consecutive messages, then encode.

use std::borrow::Cow;
use std::time::Instant;

use super::error::ChatTemplateError;
use super::pyjson::{self, PyJsonError, PyValue};
use super::schema;
use super::tokenizer::{MistralTokenizer, TextCursor};

/// A chat request in the OpenAI format: `{"messages": [...], "tools": [...]}`.
///
/// It keeps the JSON document as Python would load it, because the template
/// re-serializes tool schemas and arguments with Python's `json.dumps`.
#[derive(Clone, Debug, PartialEq)]
pub struct ChatRequest {
    document: PyValue,
    work_bytes: usize,
    /// Stands for each lone surrogate in the document's strings (see
    /// [`pyjson::Loaded`]): text holding it cannot reach the tokenizer.
    lone_surrogate: Option<char>,
    /// The document was nested deeper than [`pyjson::MAX_DEPTH`]; it has been
    /// taken apart, and applying the template refuses the request.
    too_deep: bool,
}

impl ChatRequest {
    /// Parses a request from JSON text.
    pub fn from_json(text: &str) -> Result<Self, ChatTemplateError> {
        let loaded =
            pyjson::loads(text).map_err(|e| ChatTemplateError::InvalidJson(json_error_text(&e)))?;
        let mut request = Self::from_value(loaded.value);
        request.lone_surrogate = loaded.lone_surrogate;
        Ok(request)
    }

    /// A request from a document built in code. Any depth is safe: the walk
    /// is iterative, and a document deeper than JSON text may be is taken
    /// apart here (dropping, cloning or comparing it would recurse) and
    /// refused when the template is applied.
    pub fn from_value(document: PyValue) -> Self {
        // The work estimate is about the length of the document written as
        // JSON: strings, numbers, brackets and separators all reach the
        // tokenizer when they sit in tool schemas, arguments or results.
        let mut work_bytes = 0;
        let mut too_deep = false;
        let mut pending = vec![(&document, 0)];
        while let Some((value, depth)) = pending.pop() {
            match value {
                PyValue::Str(s) => work_bytes += s.len() + 2,
                PyValue::Int(digits) => work_bytes += digits.len(),
                PyValue::Float(_) => work_bytes += 24,
                PyValue::Null | PyValue::Bool(_) => work_bytes += 5,
                PyValue::List(_) | PyValue::Dict(_) if depth == pyjson::MAX_DEPTH => {
                    too_deep = true;
                    break;
                }
                PyValue::List(items) => {
                    work_bytes += 2 + 2 * items.len();
                    pending.extend(items.iter().map(|v| (v, depth + 1)));
                }
                PyValue::Dict(entries) => {
                    work_bytes += 2;
                    for (key, value) in entries {
                        work_bytes += key.len() + 6;
                        pending.push((value, depth + 1));
                    }
                }
            }
        }
        if too_deep {
            dismantle(document);
            return Self {
                document: PyValue::Null,
                work_bytes: 0,
                lone_surrogate: None,
                too_deep,
            };
        }
        Self {
            work_bytes,
            document,
            lone_surrogate: None,
            too_deep,
        }
    }

    /// A request of one user message.
    pub fn single_user_message(content: impl Into<String>) -> Self {
        Self::from_value(PyValue::Dict(vec![(
            "messages".into(),
            PyValue::List(vec![PyValue::Dict(vec![
                ("role".into(), PyValue::Str("user".into())),
                ("content".into(), PyValue::Str(content.into())),
            ])]),
        )]))
    }

    pub fn document(&self) -> &PyValue {
        &self.document
    }

    /// About how many bytes of text the template may process for this
    /// request: the document's length as JSON, so megabytes of `[]` or of
    /// digits count as what they are. Computed once, when the request is
    /// built; the async wrapper decides from it whether a request is small
    /// enough to run on the caller's event loop.
    pub fn work_bytes(&self) -> usize {
        self.work_bytes
    }
}

fn json_error_text(error: &PyJsonError) -> String {
    match error {
        PyJsonError::Decode(m) | PyJsonError::Limit(m) => m.clone(),
    }
}

/// Drops a value of any depth without recursing.
fn dismantle(value: PyValue) {
    let mut pending = vec![value];
    while let Some(value) = pending.pop() {
        match value {
            PyValue::List(items) => pending.extend(items),
            PyValue::Dict(entries) => pending.extend(entries.into_iter().map(|(_, v)| v)),
            _ => {}
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    System,
    User,
    Assistant,
    Tool,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
        }
    }
}

/// Message content after `from_openai`: absent, a string, or text chunks.
#[derive(Debug)]
enum Content<'a> {
    None,
    Text(&'a str),
    Chunks(Vec<&'a str>),
}

impl Content<'_> {
    fn is_truthy(&self) -> bool {
        match self {
            Content::None => false,
            Content::Text(t) => !t.is_empty(),
            Content::Chunks(c) => !c.is_empty(),
        }
    }

    /// Non-empty texts in order; chunks and messages are both joined with
    /// "\n\n" by the normalizer.
    fn texts<'s>(&'s self) -> Box<dyn Iterator<Item = &'s str> + 's> {
        match self {
            Content::None => Box::new(std::iter::empty()),
            Content::Text(t) => Box::new(std::iter::once(*t).filter(|t| !t.is_empty())),
            Content::Chunks(c) => Box::new(c.iter().copied().filter(|t| !t.is_empty())),
        }
    }
}

#[derive(Debug)]
enum Arguments<'a> {
    Text(&'a str),
    /// A dict given directly; pydantic dumps it and the normalizer loads it back.
    Value(&'a PyValue),
}

#[derive(Debug)]
struct ToolCall<'a> {
    id: &'a str,
    name: &'a str,
    arguments: Arguments<'a>,
}

#[derive(Debug)]
struct Message<'a> {
    role: Role,
    content: Content<'a>,
    tool_calls: Option<Vec<ToolCall<'a>>>,
    tool_call_id: Option<&'a str>,
    name: Option<&'a str>,
}

#[derive(Debug)]
struct ToolDef<'a> {
    name: &'a str,
    description: &'a str,
    parameters: Cow<'a, PyValue>,
}

fn malformed(text: String) -> ChatTemplateError {
    ChatTemplateError::Malformed(text)
}

fn as_str(value: &PyValue, what: impl Fn() -> String) -> Result<&str, ChatTemplateError> {
    match value {
        PyValue::Str(s) => Ok(s),
        other => Err(malformed(format!(
            "{} should be a valid string, got {}",
            what(),
            other.type_name()
        ))),
    }
}

fn as_dict(
    value: &PyValue,
    what: impl Fn() -> String,
) -> Result<&[(String, PyValue)], ChatTemplateError> {
    match value {
        PyValue::Dict(entries) => Ok(entries),
        other => Err(malformed(format!(
            "{} should be an object, got {}",
            what(),
            other.type_name()
        ))),
    }
}

/// A key that is present with a non-null value.
fn get_some<'a>(value: &'a PyValue, key: &str) -> Option<&'a PyValue> {
    value.get(key).filter(|v| **v != PyValue::Null)
}

/// Python's `re.match(r"^[...]{min,max}$", s)`: `$` also matches before one
/// trailing newline.
fn py_full_match(s: &str, allowed: impl Fn(char) -> bool, min: usize, max: usize) -> bool {
    let body = s.strip_suffix('\n').unwrap_or(s);
    let count = body.chars().count();
    (min..=max).contains(&count) && body.chars().all(allowed)
}

fn valid_function_name(name: &str) -> bool {
    py_full_match(
        name,
        |c| c.is_ascii_alphanumeric() || c == '_' || c == '-',
        1,
        64,
    )
}

fn valid_tool_call_id(id: &str) -> bool {
    py_full_match(id, |c| c.is_ascii_alphanumeric(), 9, 9)
}

fn content_from_openai<'a>(
    raw: &'a PyValue,
    role: Role,
    index: usize,
) -> Result<Content<'a>, ChatTemplateError> {
    match raw {
        PyValue::Null => Ok(Content::None),
        PyValue::Str(s) => Ok(Content::Text(s)),
        PyValue::List(chunks) => {
            let mut texts = Vec::with_capacity(chunks.len());
            for (c, chunk) in chunks.iter().enumerate() {
                let what = || format!("messages[{index}].content[{c}]");
                as_dict(chunk, what)?;
                let kind = match get_some(chunk, "type") {
                    None => {
                        return Err(malformed(format!(
                            "{}: content chunk must have a type field",
                            what()
                        )));
                    }
                    Some(PyValue::Str(kind)) => kind.as_str(),
                    Some(other) => {
                        return Err(malformed(format!(
                            "{}: '{}' is not a valid chunk type",
                            what(),
                            other.dumps()
                        )));
                    }
                };
                match kind {
                    "text" => {
                        let text = chunk
                            .get("text")
                            .ok_or_else(|| malformed(format!("{}.text: field required", what())))?;
                        texts.push(as_str(text, || format!("{}.text", what()))?);
                    }
                    "image_url" | "image" | "input_audio" | "audio_url" | "thinking" => {
                        return Err(ChatTemplateError::UnsupportedChunk {
                            role: role.name().into(),
                            kinds: format!("['{kind}']"),
                        });
                    }
                    other => {
                        return Err(malformed(format!(
                            "{}: '{other}' is not a valid chunk type",
                            what()
                        )));
                    }
                }
            }
            Ok(Content::Chunks(texts))
        }
        other => Err(malformed(format!(
            "messages[{index}].content: unknown content type {}",
            other.type_name()
        ))),
    }
}

fn required_content<'a>(
    message: &'a PyValue,
    role: Role,
    index: usize,
) -> Result<Content<'a>, ChatTemplateError> {
    let raw = message.get("content").ok_or_else(|| {
        malformed(format!(
            "messages[{index}] ({}) has no 'content'",
            role.name()
        ))
    })?;
    match content_from_openai(raw, role, index)? {
        Content::None => Err(malformed(format!(
            "messages[{index}].content: a {} message needs a string or a list of text chunks, not null",
            role.name()
        ))),
        content => Ok(content),
    }
}

fn tool_call_from_openai<'a>(
    call: &'a PyValue,
    index: usize,
    c: usize,
) -> Result<ToolCall<'a>, ChatTemplateError> {
    let at = || format!("messages[{index}].tool_calls[{c}]");
    as_dict(call, at)?;
    let id = match call.get("id") {
        None => "null",
        Some(v) => as_str(v, || format!("{}.id", at()))?,
    };
    check_function_type(call, &at)?;
    let function = call
        .get("function")
        .ok_or_else(|| malformed(format!("{}.function: field required", at())))?;
    as_dict(function, || format!("{}.function", at()))?;
    let name = function
        .get("name")
        .ok_or_else(|| malformed(format!("{}.function.name: field required", at())))?;
    let name = as_str(name, || format!("{}.function.name", at()))?;
    let arguments = match function.get("arguments") {
        None => {
            return Err(malformed(format!(
                "{}.function.arguments: field required",
                at()
            )));
        }
        Some(PyValue::Null) => Arguments::Text(""),
        Some(PyValue::Str(s)) => Arguments::Text(s),
        Some(dict @ PyValue::Dict(_)) => Arguments::Value(dict),
        Some(other) => {
            return Err(malformed(format!(
                "{}.function.arguments should be a valid string, got {}",
                at(),
                other.type_name()
            )));
        }
    };
    Ok(ToolCall {
        id,
        name,
        arguments,
    })
}

fn message_from_openai(raw: &PyValue, index: usize) -> Result<Message<'_>, ChatTemplateError> {
    as_dict(raw, || format!("messages[{index}]"))?;
    let role = match raw.get("role") {
        Some(PyValue::Str(r)) if r == "user" => Role::User,
        Some(PyValue::Str(r)) if r == "assistant" => Role::Assistant,
        Some(PyValue::Str(r)) if r == "tool" => Role::Tool,
        Some(PyValue::Str(r)) if r == "system" || r == "developer" => Role::System,
        Some(PyValue::Str(r)) => return Err(ChatTemplateError::UnknownRole(r.clone())),
        Some(other) => return Err(ChatTemplateError::UnknownRole(other.dumps())),
        None => return Err(ChatTemplateError::UnknownRole("None".into())),
    };
    let mut message = Message {
        role,
        content: Content::None,
        tool_calls: None,
        tool_call_id: None,
        name: None,
    };
    match role {
        Role::User | Role::System => message.content = required_content(raw, role, index)?,
        Role::Assistant => {
            match raw.get("tool_calls") {
                None | Some(PyValue::Null) => {}
                Some(PyValue::List(calls)) => {
                    message.tool_calls = Some(
                        calls
                            .iter()
                            .enumerate()
                            .map(|(c, call)| tool_call_from_openai(call, index, c))
                            .collect::<Result<_, _>>()?,
                    );
                }
                Some(other) => {
                    return Err(malformed(format!(
                        "messages[{index}].tool_calls must be a list, got {}",
                        other.type_name()
                    )));
                }
            }
            if let Some(raw_content) = raw.get("content") {
                message.content = content_from_openai(raw_content, role, index)?;
            }
            if get_some(raw, "reasoning").is_some() || get_some(raw, "reasoning_content").is_some()
            {
                return Err(ChatTemplateError::UnsupportedChunk {
                    role: "assistant".into(),
                    kinds: "['ThinkChunk']".into(),
                });
            }
        }
        Role::Tool => {
            message.content = required_content(raw, role, index)?;
            let id = raw.get("tool_call_id").ok_or_else(|| {
                malformed(format!("messages[{index}] (tool) has no 'tool_call_id'"))
            })?;
            message.tool_call_id = match id {
                PyValue::Null => None,
                other => Some(as_str(other, || format!("messages[{index}].tool_call_id"))?),
            };
            message.name = match get_some(raw, "name") {
                None => None,
                Some(other) => Some(as_str(other, || format!("messages[{index}].name"))?),
            };
        }
    }
    Ok(message)
}

/// An optional `"type"` field must say `"function"`.
fn check_function_type(raw: &PyValue, at: &dyn Fn() -> String) -> Result<(), ChatTemplateError> {
    match raw.get("type") {
        Some(PyValue::Str(kind)) if kind == "function" => Ok(()),
        None => Ok(()),
        Some(_) => Err(malformed(format!(
            "{}.type: input should be 'function'",
            at()
        ))),
    }
}

/// pydantic's lax `bool`.
fn is_lax_bool(value: &PyValue) -> bool {
    match value {
        PyValue::Bool(_) => true,
        PyValue::Int(d) => d == "0" || d == "1",
        PyValue::Float(f) => *f == 0.0 || *f == 1.0,
        PyValue::Str(s) => matches!(
            s.to_ascii_lowercase().as_str(),
            "0" | "off" | "f" | "false" | "n" | "no" | "1" | "on" | "t" | "true" | "y" | "yes"
        ),
        _ => false,
    }
}

fn tool_from_openai(raw: &PyValue, index: usize) -> Result<ToolDef<'_>, ChatTemplateError> {
    let at = || format!("tools[{index}]");
    as_dict(raw, at)?;
    check_function_type(raw, &at)?;
    let function = match raw.get("function") {
        Some(f) if f.is_truthy() => f,
        _ => {
            return Err(malformed(format!(
                "{}.function: a function object is required",
                at()
            )));
        }
    };
    as_dict(function, || format!("{}.function", at()))?;
    let name = function
        .get("name")
        .ok_or_else(|| malformed(format!("{}.function.name: field required", at())))?;
    let name = as_str(name, || format!("{}.function.name", at()))?;
    let description = match get_some(function, "description") {
        None => "",
        Some(d) => as_str(d, || format!("{}.function.description", at()))?,
    };
    let parameters = match get_some(function, "parameters") {
        None => Cow::Owned(PyValue::Dict(Vec::new())),
        Some(p @ PyValue::Dict(_)) => Cow::Borrowed(p),
        Some(other) => {
            return Err(malformed(format!(
                "{}.function.parameters should be an object, got {}",
                at(),
                other.type_name()
            )));
        }
    };
    if let Some(strict) = get_some(function, "strict")
        && !is_lax_bool(strict)
    {
        return Err(malformed(format!(
            "{}.function.strict should be a valid boolean",
            at()
        )));
    }
    Ok(ToolDef {
        name,
        description,
        parameters,
    })
}

/// `convert_openai_tools`; Python iterates whatever it is given, so an empty
/// string or object counts as no tools.
fn tools_from_openai(raw: Option<&PyValue>) -> Result<Option<Vec<ToolDef<'_>>>, ChatTemplateError> {
    match raw {
        None | Some(PyValue::Null) => Ok(None),
        Some(PyValue::List(tools)) => tools
            .iter()
            .enumerate()
            .map(|(i, t)| tool_from_openai(t, i))
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(PyValue::Str(s)) if s.is_empty() => Ok(Some(Vec::new())),
        Some(PyValue::Dict(d)) if d.is_empty() => Ok(Some(Vec::new())),
        Some(other) => Err(malformed(format!(
            "tools must be a list, got {}",
            other.type_name()
        ))),
    }
}

fn validate_structure(messages: &[Message<'_>]) -> Result<(), ChatTemplateError> {
    let Some(last) = messages.last() else {
        return Err(ChatTemplateError::EmptyConversation);
    };
    if messages.len() == 1 && !matches!(last.role, Role::User | Role::System) {
        return Err(ChatTemplateError::WrongFirstRole);
    }
    // `prefix` is never set through `from_openai`, so a final assistant
    // message is always rejected.
    if messages.len() > 1 && last.role == Role::Assistant {
        return Err(ChatTemplateError::WrongLastRole("assistant".into()));
    }
    for pair in messages.windows(2) {
        let (previous, current) = (pair[0].role, pair[1].role);
        let allowed = match previous {
            Role::System | Role::User => current != Role::Tool,
            Role::Assistant | Role::Tool => current != Role::System,
        };
        if !allowed {
            return Err(ChatTemplateError::RoleOrder {
                previous: previous.name().into(),
                current: current.name().into(),
            });
        }
    }
    // Tool calls must be answered before the next assistant turn. Like the
    // oracle, the count starts after the first message.
    let mut expected: i64 = 0;
    for message in &messages[1..] {
        match message.role {
            Role::Tool => expected -= 1,
            Role::Assistant => {
                if expected != 0 {
                    return Err(ChatTemplateError::ToolCallCountMismatch);
                }
                if let Some(calls) = &message.tool_calls {
                    expected = calls.len() as i64;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn validate_contents(
    messages: &[Message<'_>],
    tools: &[ToolDef<'_>],
) -> Result<(), ChatTemplateError> {
    for message in messages {
        match message.role {
            Role::Assistant => {
                let has_calls = message.tool_calls.as_ref().is_some_and(|c| !c.is_empty());
                if message.content.is_truthy() == has_calls {
                    return Err(ChatTemplateError::AssistantContentAndToolCalls);
                }
                for call in message.tool_calls.iter().flatten() {
                    if call.id == "null" {
                        return Err(ChatTemplateError::MissingToolCallId);
                    }
                    if !valid_tool_call_id(call.id) {
                        return Err(ChatTemplateError::InvalidToolCallId(call.id.into()));
                    }
                    if !valid_function_name(call.name) {
                        return Err(ChatTemplateError::InvalidFunctionName(call.name.into()));
                    }
                }
            }
            Role::Tool => {
                if let Some(name) = message.name
                    && !valid_function_name(name)
                {
                    return Err(ChatTemplateError::InvalidFunctionName(name.into()));
                }
                match message.tool_call_id {
                    None => return Err(ChatTemplateError::MissingToolMessageId),
                    Some(id) if !valid_tool_call_id(id) => {
                        return Err(ChatTemplateError::InvalidToolCallId(id.into()));
                    }
                    Some(_) => {}
                }
            }
            Role::User | Role::System => {}
        }
    }
    for tool in tools {
        schema::check_draft7(&tool.parameters).map_err(ChatTemplateError::InvalidToolSchema)?;
        if !valid_function_name(tool.name) {
            return Err(ChatTemplateError::InvalidFunctionName(tool.name.into()));
        }
    }
    Ok(())
}

/// A message after the normalizer merged consecutive messages of one role.
enum Turn<'a> {
    User(Cow<'a, str>),
    Assistant {
        content: Cow<'a, str>,
        tool_calls: Vec<&'a ToolCall<'a>>,
    },
    Tool(&'a Message<'a>),
}

fn join_texts<'a>(texts: impl Iterator<Item = &'a str>) -> Cow<'a, str> {
    let mut texts = texts.peekable();
    let Some(first) = texts.next() else {
        return Cow::Borrowed("");
    };
    if texts.peek().is_none() {
        return Cow::Borrowed(first);
    }
    let mut joined = first.to_owned();
    for text in texts {
        joined.push_str("\n\n");
        joined.push_str(text);
    }
    Cow::Owned(joined)
}

fn merge_turns<'a>(messages: &'a [Message<'a>]) -> Vec<Turn<'a>> {
    let mut turns = Vec::new();
    let mut start = 0;
    while start < messages.len() {
        let role = messages[start].role;
        let end = messages[start..]
            .iter()
            .position(|m| m.role != role)
            .map_or(messages.len(), |n| start + n);
        let run = &messages[start..end];
        match role {
            Role::User => turns.push(Turn::User(join_texts(
                run.iter().flat_map(|m| m.content.texts()),
            ))),
            Role::Assistant => turns.push(Turn::Assistant {
                content: join_texts(run.iter().flat_map(|m| m.content.texts())),
                tool_calls: run
                    .iter()
                    .flat_map(|m| m.tool_calls.iter().flatten())
                    .collect(),
            }),
            Role::Tool => turns.extend(run.iter().map(Turn::Tool)),
            // System prompts are moved into the last user message.
            Role::System => {}
        }
        start = end;
    }
    if !matches!(turns.first(), Some(Turn::User(_))) {
        turns.insert(0, Turn::User(Cow::Borrowed("")));
    }
    turns
}

fn system_prompt<'a>(messages: &'a [Message<'a>]) -> Option<String> {
    let parts: Vec<Cow<'a, str>> = messages
        .iter()
        .filter(|m| m.role == Role::System && m.content.is_truthy())
        .map(|m| join_texts(m.content.texts()))
        .collect();
    (!parts.is_empty()).then(|| parts.join("\n\n"))
}

/// `_normalize_json_content` followed by `_parse_json_content`: JSON text
/// becomes its value, anything else stays a string, empty becomes `{}`. The
/// stand-in for a lone surrogate the text spells, if any, joins `stand_ins`.
fn parse_json_content(text: &str, stand_ins: &mut Vec<char>) -> Result<PyValue, ChatTemplateError> {
    if text.is_empty() {
        return Ok(PyValue::Dict(Vec::new()));
    }
    match pyjson::loads(text) {
        Ok(loaded) => {
            stand_ins.extend(loaded.lone_surrogate);
            Ok(loaded.value)
        }
        Err(PyJsonError::Decode(_)) => Ok(PyValue::Str(text.to_owned())),
        Err(PyJsonError::Limit(m)) => Err(ChatTemplateError::Malformed(m)),
    }
}

fn tools_json(tools: &[ToolDef<'_>]) -> String {
    PyValue::List(
        tools
            .iter()
            .map(|t| {
                PyValue::Dict(vec![
                    ("type".into(), PyValue::Str("function".into())),
                    (
                        "function".into(),
                        PyValue::Dict(vec![
                            ("name".into(), PyValue::Str(t.name.into())),
                            ("description".into(), PyValue::Str(t.description.into())),
                            ("parameters".into(), t.parameters.clone().into_owned()),
                        ]),
                    ),
                ])
            })
            .collect(),
    )
    .dumps()
}

fn tool_calls_json(
    calls: &[&ToolCall<'_>],
    stand_ins: &mut Vec<char>,
) -> Result<String, ChatTemplateError> {
    let mut prepared = Vec::with_capacity(calls.len());
    for call in calls {
        let arguments = match &call.arguments {
            Arguments::Text(text) => parse_json_content(text, stand_ins)?,
            Arguments::Value(value) => (*value).clone(),
        };
        prepared.push(PyValue::Dict(vec![
            ("name".into(), PyValue::Str(call.name.into())),
            ("arguments".into(), arguments),
            ("id".into(), PyValue::Str(call.id.into())),
        ]));
    }
    Ok(PyValue::List(prepared).dumps())
}

fn tool_result_json(
    message: &Message<'_>,
    stand_ins: &mut Vec<char>,
) -> Result<String, ChatTemplateError> {
    let content = join_texts(message.content.texts());
    let call_id = message.tool_call_id.unwrap_or_default();
    Ok(PyValue::Dict(vec![
        ("content".into(), parse_json_content(&content, stand_ins)?),
        ("call_id".into(), PyValue::Str(call_id.into())),
    ])
    .dumps())
}

/// Tokenizes a chat request with the Mistral v3 instruct template.
///
/// The ids are those of mistral-common 1.13.1's
/// `MistralTokenizer.v3().encode_chat_completion(ChatCompletionRequest.from_openai(messages, tools)).tokens`,
/// and every request it rejects is rejected here with a [`ChatTemplateError`].
pub fn apply_mistral_chat_template(
    tokenizer: &MistralTokenizer,
    request: &ChatRequest,
) -> Result<Vec<u32>, ChatTemplateError> {
    match apply_until(tokenizer, request, PartialEncoding::default(), None)? {
        Applied::Done(tokens) => Ok(tokens),
        Applied::Stopped(_) => unreachable!("an encoding with no deadline runs to the end"),
    }
}

/// What [`apply_until`] got to.
#[derive(Debug)]
pub enum Applied {
    /// The request's tokens.
    Done(Vec<u32>),
    /// The deadline passed first: the encoding so far, to go on from.
    Stopped(PartialEncoding),
}

/// An encoding of a request stopped part way: the tokens so far and where
/// the next ones start. Only the request it was made from can go on from it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PartialEncoding {
    tokens: Vec<u32>,
    /// The template's next step, and where in that step's text.
    step: usize,
    cursor: Option<TextCursor>,
}

/// [`apply_mistral_chat_template`] from `from` on (the default: the
/// start), stopping at a word boundary once `deadline` has passed (see
/// [`MistralTokenizer::encode_until`]). The request is checked and its
/// texts laid out again on every call, which costs little against encoding
/// them; so a stop on one thread and the rest on another give exactly the
/// tokens of one call.
pub fn apply_until(
    tokenizer: &MistralTokenizer,
    request: &ChatRequest,
    from: PartialEncoding,
    deadline: Option<Instant>,
) -> Result<Applied, ChatTemplateError> {
    if request.too_deep {
        return Err(malformed(format!(
            "the request is nested deeper than {} levels",
            pyjson::MAX_DEPTH
        )));
    }
    let document = &request.document;
    as_dict(document, || "the request".into())?;
    let raw_messages = match document.get("messages") {
        Some(PyValue::List(m)) => m,
        Some(other) => {
            return Err(malformed(format!(
                "'messages' must be a list, got {}",
                other.type_name()
            )));
        }
        None => return Err(malformed("the request has no 'messages'".into())),
    };
    let messages = raw_messages
        .iter()
        .enumerate()
        .map(|(i, m)| message_from_openai(m, i))
        .collect::<Result<Vec<_>, _>>()?;
    let tools = tools_from_openai(document.get("tools"))?.unwrap_or_default();

    validate_structure(&messages)?;
    validate_contents(&messages, &tools)?;

    let system_prompt = system_prompt(&messages);
    let turns = merge_turns(&messages);
    let steps = template_steps(tokenizer, request, &turns, &tools, system_prompt.as_deref())?;
    let PartialEncoding {
        mut tokens,
        step: first,
        cursor,
    } = from;
    let mut cursor = cursor.unwrap_or(TextCursor::START);
    for (index, step) in steps.iter().enumerate().skip(first) {
        match step {
            Step::Token(id) => tokens.push(*id),
            Step::Text(text) => {
                if !tokenizer.encode_until(text, &mut cursor, &mut tokens, deadline) {
                    return Ok(Applied::Stopped(PartialEncoding {
                        tokens,
                        step: index,
                        cursor: Some(cursor),
                    }));
                }
                cursor = TextCursor::START;
            }
        }
    }
    Ok(Applied::Done(tokens))
}

/// One step of the template: a control token, or a text to encode.
enum Step<'a> {
    Token(u32),
    Text(Cow<'a, str>),
}

/// The template's steps for a checked request, in order; a request the
/// template rejects part way is rejected here with the same error.
fn template_steps<'a>(
    tokenizer: &MistralTokenizer,
    request: &ChatRequest,
    turns: &'a [Turn<'a>],
    tools: &[ToolDef<'_>],
    system_prompt: Option<&str>,
) -> Result<Vec<Step<'a>>, ChatTemplateError> {
    let last_user = turns
        .iter()
        .rposition(|t| matches!(t, Turn::User(_)))
        .expect("merge_turns always starts with a user turn");

    // Python fails only when a lone surrogate reaches the tokenizer, so
    // every text is checked for the stand-ins there and nowhere else.
    let mut stand_ins: Vec<char> = request.lone_surrogate.into_iter().collect();
    let text = |text: Cow<'a, str>, stand_ins: &[char]| {
        if stand_ins.iter().any(|c| text.contains(*c)) {
            return Err(ChatTemplateError::LoneSurrogate);
        }
        Ok(Step::Text(text))
    };
    let control = tokenizer.control();
    let mut steps = vec![Step::Token(control.bos)];
    for (index, turn) in turns.iter().enumerate() {
        match turn {
            Turn::User(content) => {
                let is_last = index == last_user;
                if is_last && !tools.is_empty() {
                    steps.push(Step::Token(control.begin_available_tools));
                    steps.push(text(tools_json(tools).into(), &stand_ins)?);
                    steps.push(Step::Token(control.end_available_tools));
                }
                steps.push(Step::Token(control.begin_inst));
                match system_prompt {
                    Some(prompt) if is_last && !prompt.is_empty() => {
                        steps.push(text(format!("{prompt}\n\n{content}").into(), &stand_ins)?)
                    }
                    _ => steps.push(text(Cow::Borrowed(content), &stand_ins)?),
                }
                steps.push(Step::Token(control.end_inst));
            }
            Turn::Assistant {
                content,
                tool_calls,
            } => {
                if !tool_calls.is_empty() && !content.is_empty() {
                    return Err(ChatTemplateError::AssistantContentAndToolCalls);
                }
                if !tool_calls.is_empty() {
                    steps.push(Step::Token(control.tool_calls));
                    let json = tool_calls_json(tool_calls, &mut stand_ins)?;
                    steps.push(text(json.into(), &stand_ins)?);
                } else if !content.is_empty() {
                    steps.push(text(
                        Cow::Borrowed(content.trim_end_matches(' ')),
                        &stand_ins,
                    )?);
                } else {
                    return Err(malformed("an assistant message has only empty text".into()));
                }
                steps.push(Step::Token(control.eos));
            }
            Turn::Tool(message) => {
                steps.push(Step::Token(control.begin_tool_results));
                let json = tool_result_json(message, &mut stand_ins)?;
                steps.push(text(json.into(), &stand_ins)?);
                steps.push(Step::Token(control.end_tool_results));
            }
        }
    }
    Ok(steps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_regex_dollar_allows_one_trailing_newline() {
        assert!(valid_tool_call_id("abcDEF123"));
        assert!(valid_tool_call_id("abcDEF123\n"));
        assert!(!valid_tool_call_id("abcDEF123\n\n"));
        assert!(!valid_tool_call_id("abcDEF12"));
        assert!(!valid_tool_call_id("abcDEF12_"));
        assert!(valid_function_name("get_weather-2"));
        assert!(!valid_function_name(""));
        assert!(!valid_function_name(&"a".repeat(65)));
    }

    #[test]
    fn join_skips_empty_texts() {
        let content = Content::Chunks(vec!["a", "", "b"]);
        assert_eq!(join_texts(content.texts()), "a\n\nb");
        assert_eq!(join_texts(Content::Chunks(vec!["", ""]).texts()), "");
        assert_eq!(join_texts(Content::Text("").texts()), "");
    }
}
