"""Writes the conformance corpus: chat requests with mistral-common 1.13.1's answers.

    python generate.py [--seed N] [--random N] [--out conformance.jsonl]

Each output line is {"name": ..., "request": "<request JSON text>", "expected":
{"tokens": [...]} | {"error": "..."}}. The request is kept as text so duplicate
keys and number spellings reach both implementations unchanged. Run by hand
(see README.md); the tests only read the result.
"""

import argparse
import json
import math
import random
import struct

from oracle import oracle

SPECIAL_TEXTS = [
    "<s>", "</s>", "<unk>", "[INST]", "[/INST]", "[TOOL_CALLS]", "[AVAILABLE_TOOLS]",
    "[/AVAILABLE_TOOLS]", "[TOOL_RESULTS]", "[/TOOL_RESULTS]", "[IMG]", "[PREFIX]", "[MIDDLE]",
    "[SUFFIX]", "[control_12]", "[REFERENCE_DOC_0]", "[REFERENCE_DOC_19]", "<0x41>", "▁", "▁▁▁",
]

TEXTS = {
    "ascii": "The quick brown fox jumps over the lazy dog.",
    "accented": "Voilà déjà l'été, où naïve Zoë mangea crème brûlée à Ærøskøbing.",
    "cjk": "東京で寿司を食べました。北京欢迎你！한국어 텍스트입니다.",
    "rtl_arabic": "مرحبا بالعالم، كيف حالك اليوم؟",
    "rtl_hebrew": "שלום עולם, מה שלומך?",
    "emoji_zwj": "Family: 👨‍👩‍👧‍👦, flags 🇫🇷🇯🇵, skin 👍🏽, heart ❤️‍🔥",
    "combining": "e\u0301 a\u0308 n\u0303 Z\u0351\u0352\u0353algo",
    "control_chars": "a\x00b\x01c\x07d\x1be\x7ff\x0bg\x0ch",
    "u2581": "▁leading ▁ and▁inside▁▁▁",
    "leading_spaces": "   three leading spaces",
    "trailing_spaces": "trailing spaces   ",
    "repeated_spaces": "a  b   c    d     e      f       g        h",
    "many_spaces": "x" + " " * 40 + "y",
    "only_spaces": "     ",
    "single_space": " ",
    "tabs": "\tcol1\tcol2\t\tcol4\t",
    "crlf": "line one\r\nline two\r\n\r\nline four",
    "newlines": "\n\nstarts with newlines\nand ends\n\n",
    "digits": "Call 0123456789 or 3.14159, 1,000,000 and 2024-11-27T12:00:00Z",
    "mixed_digits_letters": "abc123def4567 x9y8z7 v2.0.1",
    "code": "def f(x):\n    return {'a': [1, 2, 3]}  # comment\n",
    "json_like": '{"key": "value", "n": 1}',
    "special_tokens": " ".join(SPECIAL_TEXTS),
    "special_glued": "".join(SPECIAL_TEXTS),
    "byte_fallback": "\U0001F9EC\U0001FAE0 \u0F3A\u16A0\u2C00 \U00010348 \U0001D11E",
    "private_use": "\ue000\uf8ff\U000F0000",
    "zero_width": "zero\u200bwidth\u200cjoin\u200dnon\ufeffbom",
    "nbsp": "non\u00a0breaking\u2009thin\u3000ideographic",
    "long_word": "Pneumonoultramicroscopicsilicovolcanoconiosis" * 3,
    "empty": "",
}


def req(messages, tools=None, **extra):
    body = {"messages": messages}
    if tools is not None:
        body["tools"] = tools
    body.update(extra)
    return body


def user(content):
    return {"role": "user", "content": content}


def system(content):
    return {"role": "system", "content": content}


def assistant(content=None, tool_calls=None):
    message = {"role": "assistant"}
    if content is not None:
        message["content"] = content
    if tool_calls is not None:
        message["tool_calls"] = tool_calls
    return message


def call(name, arguments, call_id="abcDEF123"):
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def tool_result(content, call_id="abcDEF123", name=None):
    message = {"role": "tool", "tool_call_id": call_id, "content": content}
    if name is not None:
        message["name"] = name
    return message


WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city — in °C",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "City name, e.g. Zürich"},
                "days": {"type": "integer", "minimum": 1, "maximum": 7.5},
            },
            "required": ["city"],
        },
    },
}
SEARCH = {
    "type": "function",
    "function": {"name": "search-docs_2", "parameters": {"type": "object", "properties": {}}},
}


def handcrafted():
    cases = []
    add = lambda name, body: cases.append((name, json.dumps(body, ensure_ascii=False)))
    raw = lambda name, text: cases.append((name, text))

    for name, text in TEXTS.items():
        add(f"text/{name}", req([user(text)]))
        add(f"text_in_assistant/{name}", req([user("q"), assistant(text or "x"), user("next")]))
        add(f"text_in_system/{name}", req([system(text), user("hello")]))
    add("ascii_escaped", req([user(TEXTS["cjk"] + TEXTS["emoji_zwj"])]))
    cases[-1] = (cases[-1][0], json.dumps(json.loads(cases[-1][1]), ensure_ascii=True))

    # Spec payloads.
    add("payload/small", req([user("Hello " * 50)]))
    add("payload/medium", req([user("Test content " * 5000)]))

    # Structure.
    add("multi_turn", req([user("Hi"), assistant("Hello! How can I help?"), user("Tell me a joke")]))
    add("system_first", req([system("You are terse."), user("Hi"), assistant("Hi."), user("Bye")]))
    add("system_middle", req([user("Hi"), system("Be brief."), user("Still there?")]))
    add("system_last", req([user("Hi"), system("late system")]))
    add("system_only", req([system("only a system prompt")]))
    add("two_systems", req([system("one"), system("two"), user("u")]))
    add("system_empty", req([system(""), user("u")]))
    add("system_chunks", req([system([{"type": "text", "text": "a"}, {"type": "text", "text": ""}, {"type": "text", "text": "b"}]), user("u")]))
    add("system_empty_chunk", req([system([{"type": "text", "text": ""}]), user("u")]))
    add("developer_role", req([{"role": "developer", "content": "dev prompt"}, user("u")]))
    add("consecutive_users", req([user("first"), user("second"), user("third")]))
    add("consecutive_users_empty", req([user("first"), user(""), user("third")]))
    add("consecutive_assistants", req([user("q"), assistant("a1"), assistant("a2"), user("q2")]))
    add("assistant_trailing_spaces", req([user("q"), assistant("answer   "), user("q2")]))
    add("assistant_only_spaces", req([user("q"), assistant("   "), user("q2")]))
    add("assistant_first", req([assistant("I start"), user("then user")]))
    add("content_parts", req([user([{"type": "text", "text": "part one"}, {"type": "text", "text": "part two"}])]))
    add("content_parts_extra_keys", req([user([{"type": "text", "text": "p", "cache_control": {"type": "ephemeral"}}])]))
    add("content_parts_empty_list", req([user([]), user("after")]))
    add("empty_user", req([user("")]))
    add("empty_user_list", req([user([])]))
    add("extra_message_keys", req([{"role": "user", "content": "hi", "name": "bob", "foo": 1}]))
    add("extra_request_keys", req([user("hi")], model="mistral", temperature=0.2))
    add("tools_null", req([user("hi")], tools=None) | {"tools": None})

    # Tools.
    add("tools/one", req([user("Weather in Paris?")], tools=[WEATHER]))
    add("tools/two", req([user("Weather in Paris?")], tools=[WEATHER, SEARCH]))
    add("tools/placement_last_user", req([user("a"), assistant("b"), user("c")], tools=[WEATHER]))
    add("tools/with_system", req([system("sys"), user("a")], tools=[SEARCH]))
    add("tools/empty_list", req([user("a")], tools=[]))
    add("tools/no_params", req([user("a")], tools=[{"type": "function", "function": {"name": "ping"}}]))
    add("tools/null_fields", req([user("a")], tools=[{"type": "function", "function": {"name": "ping", "description": None, "parameters": None, "strict": None}}]))
    add("tools/strict", req([user("a")], tools=[{"type": "function", "function": {"name": "ping", "parameters": {}, "strict": True}}]))
    add("tools/no_type", req([user("a")], tools=[{"function": {"name": "ping", "parameters": {}}}]))
    add("tools/unicode_description", req([user("a")], tools=[{"type": "function", "function": {"name": "t", "description": "日本語 🎌 \"quoted\" \\ back\nnew", "parameters": {"type": "object"}}}]))
    add("tools/numbers", req([user("a")], tools=[{"type": "function", "function": {"name": "n", "parameters": {"type": "object", "properties": {"x": {"type": "number", "minimum": -1.5e-7, "maximum": 1e21, "multipleOf": 0.25, "default": 100000000000000000000}}}}}]))
    raw("tools/number_spellings", '{"messages":[{"role":"user","content":"a"}],"tools":[{"type":"function","function":{"name":"n","parameters":{"type":"object","properties":{"x":{"type":"number","minimum":1E2,"maximum":-0,"default":1.50,"examples":[0.1,1e-5,12345678901234567890,3.0e0]}}}}}]}')
    raw("tools/duplicate_keys", '{"messages":[{"role":"user","content":"a"}],"tools":[{"type":"function","function":{"name":"n","parameters":{"type":"object","title":"first","properties":{},"title":"second"}}}]}')
    # Tool calls and results.
    call_w = call("get_weather", '{"city": "Paris"}')
    add("calls/simple", req([user("w?"), assistant(tool_calls=[call_w]), tool_result('{"temp": 21}')], tools=[WEATHER]))
    add("calls/then_answer", req([user("w?"), assistant(tool_calls=[call_w]), tool_result("sunny"), assistant("It is sunny."), user("thanks")], tools=[WEATHER]))
    add("calls/two_parallel", req([user("w?"), assistant(tool_calls=[call_w, call("get_weather", '{"city":"Oslo"}', "xyz987ABC")]), tool_result("1"), tool_result("2", "xyz987ABC")]))
    add("calls/args_dict", req([user("w?"), assistant(tool_calls=[call("get_weather", {"city": "Zürich", "n": 1.0})]), tool_result("ok")]))
    add("calls/args_null", req([user("w?"), assistant(tool_calls=[call("f", None)]), tool_result("ok")]))
    add("calls/args_empty", req([user("w?"), assistant(tool_calls=[call("f", "")]), tool_result("ok")]))
    add("calls/args_not_json", req([user("w?"), assistant(tool_calls=[call("f", "not json {")]), tool_result("ok")]))
    add("calls/args_spacing", req([user("w?"), assistant(tool_calls=[call("f", '{"a":1,"b":[1,2,{"c":null}],"d":"é"}')]), tool_result("ok")]))
    add("calls/args_nan", req([user("w?"), assistant(tool_calls=[call("f", '{"a": NaN, "b": Infinity, "c": -Infinity}')]), tool_result("ok")]))
    add("calls/args_escapes", req([user("w?"), assistant(tool_calls=[call("f", '{"s": "\\u00e9\\n\\t\\u0001\\/"}')]), tool_result("ok")]))
    add("calls/args_scalar", req([user("w?"), assistant(tool_calls=[call("f", "42")]), tool_result("ok")]))
    add("calls/empty_list_with_content", req([user("w?"), assistant("text", tool_calls=[]), user("ok")]))
    add("calls/before_last_user", req([user("w?"), assistant(tool_calls=[call_w]), tool_result("r"), user("and now?")], tools=[WEATHER]))
    add("calls/id_trailing_newline", req([user("w?"), assistant(tool_calls=[call("f", "{}", "abcDEF123\n")]), tool_result("r", "abcDEF123\n")]))
    add("results/json_object", req([user("w?"), assistant(tool_calls=[call_w]), tool_result('{"b": 1, "a": [true, false, null]}')]))
    add("results/json_string", req([user("w?"), assistant(tool_calls=[call_w]), tool_result('"quoted"')]))
    add("results/plain_text", req([user("w?"), assistant(tool_calls=[call_w]), tool_result("plain text result")]))
    add("results/empty", req([user("w?"), assistant(tool_calls=[call_w]), tool_result("")]))
    add("results/chunks", req([user("w?"), assistant(tool_calls=[call_w]), tool_result([{"type": "text", "text": "{\"a\":"}, {"type": "text", "text": "1}"}])]))
    add("results/with_name", req([user("w?"), assistant(tool_calls=[call_w]), tool_result("r", name="get_weather")]))
    add("results/unicode", req([user("w?"), assistant(tool_calls=[call_w]), tool_result("温度 21°C 🌞")]))
    add("results/more_than_calls", req([user("w?"), assistant(tool_calls=[call_w]), tool_result("1"), tool_result("2")]))
    add("results/without_call", req([user("w?"), tool_result("orphan")]))

    # Rejections, one per check.
    add("error/empty_conversation", req([]))
    add("error/unknown_role", req([{"role": "robot", "content": "beep"}]))
    add("error/missing_role", req([{"content": "no role"}]))
    add("error/first_assistant_alone", req([assistant("alone")]))
    add("error/first_tool_alone", req([tool_result("alone")]))
    add("error/last_assistant", req([user("q"), assistant("a")]))
    add("error/order_user_tool", req([user("q"), tool_result("r")]) | {"messages": [user("q"), tool_result("r"), user("x")]})
    add("error/order_system_tool", req([system("s"), tool_result("r"), user("x")]))
    add("error/order_tool_system", req([user("q"), assistant(tool_calls=[call_w]), tool_result("r"), system("s"), user("x")]))
    add("error/order_assistant_system", req([user("q"), assistant("a"), system("s"), user("x")]))
    add("error/call_count", req([user("q"), assistant(tool_calls=[call_w]), assistant("a"), user("x")]))
    add("error/content_and_calls", req([user("q"), assistant("text", tool_calls=[call_w]), tool_result("r")]))
    add("error/neither_content_nor_calls", req([user("q"), assistant(), user("x")]))
    add("error/merged_content_and_calls", req([user("q"), assistant("text"), assistant(tool_calls=[call_w]), tool_result("r")]))
    add("error/assistant_empty_chunk", req([user("q"), assistant([{"type": "text", "text": ""}]), user("x")]))
    add("error/call_id_missing", req([user("q"), assistant(tool_calls=[{"type": "function", "function": {"name": "f", "arguments": "{}"}}]), tool_result("r")]))
    add("error/call_id_short", req([user("q"), assistant(tool_calls=[call("f", "{}", "abc")]), tool_result("r", "abc")]))
    add("error/call_id_symbols", req([user("q"), assistant(tool_calls=[call("f", "{}", "abc_DEF12")]), tool_result("r", "abc_DEF12")]))
    add("error/call_id_null_string", req([user("q"), assistant(tool_calls=[call("f", "{}", "null")]), tool_result("r", "null")]))
    add("error/result_id_bad", req([user("q"), assistant(tool_calls=[call_w]), tool_result("r", "bad id!!")]))
    add("error/result_id_null", req([user("q"), assistant(tool_calls=[call_w]), {"role": "tool", "tool_call_id": None, "content": "r"}]))
    add("error/result_id_missing", req([user("q"), assistant(tool_calls=[call_w]), {"role": "tool", "content": "r"}]))
    add("error/function_name", req([user("q"), assistant(tool_calls=[call("bad name", "{}")]), tool_result("r")]))
    add("error/function_name_long", req([user("q")], tools=[{"type": "function", "function": {"name": "n" * 65, "parameters": {}}}]))
    add("error/tool_message_name", req([user("q"), assistant(tool_calls=[call_w]), tool_result("r", name="bad name")]))
    add("error/schema_type", req([user("q")], tools=[{"type": "function", "function": {"name": "f", "parameters": {"type": "banana"}}}]))
    add("error/schema_required", req([user("q")], tools=[{"type": "function", "function": {"name": "f", "parameters": {"required": "city"}}}]))
    add("error/schema_properties", req([user("q")], tools=[{"type": "function", "function": {"name": "f", "parameters": {"properties": {"a": 5}}}}]))
    add("error/tool_type", req([user("q")], tools=[{"type": "retrieval", "function": {"name": "f"}}]))
    add("error/tool_no_function", req([user("q")], tools=[{"type": "function"}]))
    add("error/tool_not_object", req([user("q")], tools=["f"]))
    add("error/tools_not_list", req([user("q")], tools=5))
    add("error/params_not_object", req([user("q")], tools=[{"type": "function", "function": {"name": "f", "parameters": [1]}}]))
    add("error/strict_not_bool", req([user("q")], tools=[{"type": "function", "function": {"name": "f", "strict": "maybe"}}]))
    add("error/image_chunk", req([user([{"type": "image_url", "image_url": {"url": "https://example.com/x.png"}}])]))
    add("error/audio_chunk", req([user([{"type": "input_audio", "input_audio": {"data": "", "format": "wav"}}])]))
    add("error/unknown_chunk", req([user([{"type": "video", "video": "x"}])]))
    add("error/chunk_no_type", req([user([{"text": "t"}])]))
    add("error/chunk_no_text", req([user([{"type": "text"}])]))
    add("error/chunk_not_object", req([user(["plain string chunk"])]))
    add("error/content_number", req([user(42)]))
    add("error/content_null", req([user(None)]))
    add("error/content_missing", req([{"role": "user"}]))
    add("error/content_object", req([user({"text": "x"})]))
    add("error/reasoning", req([user("q"), {"role": "assistant", "content": "a", "reasoning_content": "thinking"}, user("x")]))
    add("error/tool_calls_not_list", req([user("q"), assistant(tool_calls={"id": "abcDEF123"}), user("x")]))
    add("error/args_list", req([user("q"), assistant(tool_calls=[call("f", [1, 2])]), tool_result("r")]))
    add("error/args_missing", req([user("q"), assistant(tool_calls=[{"id": "abcDEF123", "function": {"name": "f"}}]), tool_result("r")]))
    add("error/messages_not_list", {"messages": {"role": "user", "content": "x"}})
    add("error/messages_missing", {"tools": []})
    add("error/message_not_object", req(["hello"]))
    raw("error/not_json", '{"messages": [')
    raw("error/not_object", '[1, 2, 3]')
    raw("error/trailing_garbage", '{"messages":[{"role":"user","content":"x"}]} extra')
    raw("error/lone_surrogate", '{"messages":[{"role":"user","content":"\\ud800"}]}')
    raw("error/args_huge_int", '{"messages":[{"role":"user","content":"q"},{"role":"assistant","tool_calls":[{"id":"abcDEF123","function":{"name":"f","arguments":"' + "9" * 5000 + '"}}]},{"role":"tool","tool_call_id":"abcDEF123","content":"r"}]}')
    raw("error/empty_line", "")
    return cases


def tool_with(parameters):
    return {"type": "function", "function": {"name": "f", "parameters": parameters}}


def call_result(arguments, result="r"):
    return [user("q"), assistant(tool_calls=[call("f", arguments)]), tool_result(result)]


def adversarial():
    """Hostile JSON, Unicode and tool schemas: each case is a class of input
    where perfwarden and mistral-common once disagreed, or could."""
    cases = []
    add = lambda name, body: cases.append((name, json.dumps(body, ensure_ascii=False)))
    # Escaped with ensure_ascii, so lone surrogates survive as \uXXXX.
    escaped = lambda name, body: cases.append((name, json.dumps(body)))
    raw = lambda name, text: cases.append((name, text))

    # Floats on a rounding tie: Python's repr keeps the even digit.
    add("float/tie_in_tool", req([user("")], tools=[{"function": {"name": "f", "parameters": {"x": 1000000000000000.2}}}]))
    add("float/tie_in_result", req(call_result("{}", "123456789012345.625")))
    add("float/tie_in_arguments", req(call_result('{"x": 4503599627370497.5, "y": 123456789012345.625}')))
    add("float/extremes", req([user("")], tools=[tool_with({"default": [5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, 9007199254740993.0, 0.1, 1e16, 1e-5, 0.0001, 123e300]})]))

    # Lone surrogates count only where the text reaches the tokenizer.
    escaped("surrogate/ignored_key_value", {"messages": [user("")], "": "\ud800"})
    escaped("surrogate/ignored_key_name", {"messages": [user("x")], "\udfff": 1})
    raw("surrogate/overwritten_duplicate", '{"messages":[{"role":"user","content":"ok"}],"x":"\\ud800","x":1}')
    raw("surrogate/overwritten_in_message", '{"messages":[{"role":"user","content":"\\udc00","content":"fine"}]}')
    escaped("surrogate/ignored_message_key", {"messages": [{"role": "user", "content": "x", "note": "\ud83d"}]})
    escaped("surrogate/in_content", {"messages": [user("a\ud800b")]})
    escaped("surrogate/in_system", {"messages": [system("\udbff"), user("x")]})
    escaped("surrogate/in_description", {"messages": [user("x")], "tools": [{"type": "function", "function": {"name": "f", "description": "\ud800", "parameters": {}}}]})
    escaped("surrogate/in_schema_key", {"messages": [user("x")], "tools": [tool_with({"properties": {"\ud800": {}}})]})
    escaped("surrogate/in_result", {"messages": call_result("{}", "r\ud800")})
    add("surrogate/escaped_in_arguments", req(call_result('{"a": "\\ud800"}')))
    add("surrogate/overwritten_in_arguments", req(call_result('{"a": "\\ud800", "a": 1}')))
    add("surrogate/overwritten_in_result", req(call_result("{}", '{"a": "\\udc00", "a": 2}')))
    add("surrogate/escaped_in_result", req(call_result("{}", '["\\ud800"]')))
    escaped("surrogate/pair_is_fine", {"messages": [user("\ud83d\ude00")]})
    escaped("surrogate/stand_in_collision", {"messages": [user("\U0010fffd \U0010fffc")], "x": "\ud800"})

    # Schema keywords.
    add("schema/multiple_of_nan", req([user("x")], tools=[tool_with({"multipleOf": float("nan")})]))
    add("schema/multiple_of_inf", req([user("x")], tools=[tool_with({"multipleOf": float("inf")})]))
    add("schema/multiple_of_neg_inf", req([user("x")], tools=[tool_with({"multipleOf": float("-inf")})]))
    add("schema/items_empty", req([user("x")], tools=[tool_with({"items": []})]))
    add("schema/items_empty_nested", req([user("x")], tools=[tool_with({"properties": {"a": {"items": [{"items": []}]}}})]))
    add("schema/items_list", req([user("x")], tools=[tool_with({"items": [{"type": "string"}, True]})]))
    add("schema/required_many", req([user("x")], tools=[tool_with({"required": [f"n{i}" for i in range(2000)]})]))
    add("schema/required_duplicate_far", req([user("x")], tools=[tool_with({"required": [f"n{i}" for i in range(2000)] + ["n7"]})]))
    for i, pattern in enumerate(["[", "(?<n>a)", "\\p{L}", "a{2,1}", "*a", "a**", "x(?i)", "(?<=a+)b", "\\1", "(?P<1>x)", "[z-a]", "(?P=q)", "a)"]):
        add(f"schema/pattern_invalid_{i}", req([user("x")], tools=[tool_with({"pattern": pattern})]))
        add(f"schema/pattern_properties_invalid_{i}", req([user("x")], tools=[tool_with({"patternProperties": {pattern: {}}})]))
    for i, pattern in enumerate(["(?P<n>a)(?P=n)", "(?i)abc", "(?i:a)b", "\\d{2,}$", "a{,3}", "(?>a+)b", "a++", "(?<=ab|cd)x", "[]a]", "\\u00e9\\x41", "(?#note)x", "(a)(?(1)b|c)", "(?x) a b # c", "x{", "^[a-zA-Z0-9_-]{1,64}$", "\\Z\\A\\b"]):
        add(f"schema/pattern_valid_{i}", req([user("x")], tools=[tool_with({"pattern": pattern})]))
        add(f"schema/pattern_properties_valid_{i}", req([user("x")], tools=[tool_with({"patternProperties": {pattern: {"type": "string"}}})]))

    # Nesting, away from the exact limits (they move with the caller's stack).
    nest = lambda opening, leaf, closing, n: json.loads(opening * n + leaf + closing * n)
    add("depth/json_ignored_900", req([user("x")]) | {"pad": nest("[", "", "]", 900)})
    raw("depth/json_ignored_1100", '{"messages":[{"role":"user","content":"x"}],"pad":' + "[" * 1100 + "]" * 1100 + "}")
    add("depth/arguments_900", req(call_result("[" * 900 + "]" * 900)))
    add("depth/arguments_1100", req(call_result("[" * 1100 + "]" * 1100)))
    add("depth/schema_not_200", req([user("x")], tools=[tool_with(nest('{"not":', "{}", "}", 200))]))
    add("depth/schema_not_300", req([user("x")], tools=[tool_with(nest('{"not":', "{}", "}", 300))]))
    add("depth/schema_properties_130", req([user("x")], tools=[tool_with(nest('{"properties":{"a":', "{}", "}}", 130))]))
    add("depth/schema_properties_200", req([user("x")], tools=[tool_with(nest('{"properties":{"a":', "{}", "}}", 200))]))
    add("depth/schema_value_500", req([user("x")], tools=[tool_with({"default": nest("[", "", "]", 500)})]))

    # Whitespace, long words and digits (the tokenizer's slow paths once).
    add("text/space_run_5000", req([user("a" + " " * 5000 + "b")]))
    add("text/space_runs_varied", req([user("".join("x" + " " * n for n in range(1, 300)))]))
    add("text/long_word_8000", req([user("".join(random.Random(7).choice("abcdefghij") for _ in range(8000)))]))
    add("text/one_letter_run", req([user("a" * 5000)]))
    add("text/digits_5000", req([user("0123456789" * 500)]))
    add("text/u2581_run", req([user("\u2581" * 2000)]))
    add("text/newline_run", req([user("\n" * 3000 + "x")]))
    add("text/tab_space_mix", req([user(" \t" * 2000)]))
    return cases


def float_fuzz(rng, count):
    """Requests full of doubles printed by Python's repr: random bit patterns,
    large numbers with short fractions (ties), subnormals."""
    cases = []
    for i in range(count):
        values = []
        for _ in range(40):
            roll = rng.random()
            if roll < 0.4:
                value = struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0]
            elif roll < 0.8:
                value = float(f"{rng.randrange(10**12, 10**16)}.{rng.randrange(1000):03d}"[: rng.randint(15, 21)])
            elif roll < 0.9:
                value = struct.unpack("<d", rng.getrandbits(52).to_bytes(8, "little"))[0]
            else:
                value = rng.randrange(1 << 53) + rng.choice([0.5, 0.25, 0.125, 0.75])
            if math.isfinite(value):
                values.append(value)
        body = req(call_result(json.dumps({"v": values[:20]}), json.dumps(values[20:])), tools=[tool_with({"default": values})])
        cases.append((f"float_fuzz/{i}", json.dumps(body)))
    return cases


# Random text, weighted toward the characters that trip tokenizers.
POOLS = [
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "0123456789",
    "     ",
    "\t\n\r",
    ".,;:!?'\"()[]{}<>/\\|-_=+*&^%$#@~`",
    "àáâäæçèéêëìíîïñòóôöùúûüÿœßØÅ",
    "你好世界東京日本語한국어",
    "مرحباשלום",
    "😀👍🏽👨‍👩‍👧🇫🇷❤️‍🔥",
    "\u0301\u0308\u0303\u200b\u200d\ufeff",
    "\x00\x01\x1b\x7f",
    "▁",
    "\U0001F9EC\u0F3A\u16A0\U00010348",
]


def random_text(rng, max_len):
    out = []
    for _ in range(rng.randint(0, max_len)):
        if rng.random() < 0.08:
            out.append(rng.choice(SPECIAL_TEXTS))
        else:
            out.append(rng.choice(rng.choice(POOLS)))
    return "".join(out)


def random_id(rng):
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    if rng.random() < 0.05:
        return rng.choice(["short", "bad_id!!!", "null", ""])
    return "".join(rng.choice(alphabet) for _ in range(9))


def random_conversation(rng):
    """A random, usually valid, conversation; sometimes broken on purpose."""
    messages = []
    if rng.random() < 0.3:
        messages.append(system(random_text(rng, 30)))
    for _ in range(rng.randint(1, 4)):
        messages.append(user(random_text(rng, 60) if rng.random() < 0.8 else [
            {"type": "text", "text": random_text(rng, 20)} for _ in range(rng.randint(0, 3))
        ]))
        roll = rng.random()
        if roll < 0.4:
            messages.append(assistant(random_text(rng, 60) or "ok"))
        elif roll < 0.6:
            ids = [random_id(rng) for _ in range(rng.randint(1, 2))]
            messages.append(assistant(tool_calls=[
                call(rng.choice(["get_weather", "search-docs_2", "f"]),
                     json.dumps({"q": random_text(rng, 15), "n": rng.randint(-5, 10**6)}, ensure_ascii=rng.random() < 0.5), i)
                for i in ids
            ]))
            for i in ids:
                messages.append(tool_result(random_text(rng, 30) if rng.random() < 0.5 else json.dumps({"r": random_text(rng, 10)}), i))
            if rng.random() < 0.5:
                messages.append(assistant(random_text(rng, 30) or "done"))
    if messages[-1]["role"] == "assistant" and rng.random() < 0.9:
        messages.append(user(random_text(rng, 20)))
    tools = None
    if rng.random() < 0.3:
        tools = rng.sample([WEATHER, SEARCH], rng.randint(1, 2))
    if rng.random() < 0.1 and len(messages) > 1:
        rng.shuffle(messages)  # usually breaks the order rules
    return req(messages, tools)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=2581)
    parser.add_argument("--random", type=int, default=200, help="random requests to add")
    parser.add_argument("--no-handcrafted", action="store_true")
    parser.add_argument("--float-fuzz", type=int, default=40, help="requests of random doubles to add")
    parser.add_argument("--out", default="conformance.jsonl")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    cases = [] if args.no_handcrafted else handcrafted() + adversarial()
    for i in range(args.random):
        if i % 2:
            body = req([user(random_text(rng, 200))])
        else:
            body = random_conversation(rng)
        cases.append((f"random/{args.seed}/{i}", json.dumps(body, ensure_ascii=rng.random() < 0.3)))
    # A second generator, so the cases above stay the same for a given seed.
    cases += float_fuzz(random.Random(args.seed + 1), args.float_fuzz)
    with open(args.out, "w", encoding="utf-8") as out:
        for name, text in cases:
            line = {"name": name, "request": text, "expected": oracle(text.encode("utf-8", "surrogatepass"))}
            out.write(json.dumps(line, ensure_ascii=False) + "\n")
    errors = sum(1 for _, t in cases if "error" in oracle(t.encode("utf-8", "surrogatepass")))
    print(f"wrote {len(cases)} cases ({errors} rejected) to {args.out}")


if __name__ == "__main__":
    main()
