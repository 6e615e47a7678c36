//! The Draft 7 meta-schema check mistral-common runs on every tool's
//! `parameters` (`jsonschema.Draft7Validator.check_schema`): each keyword's
//! value must have the type the meta-schema gives it, and every regular
//! expression must compile with Python's `re`.

use std::collections::HashSet;

use super::pyjson::PyValue;
use super::pyre::check_python_regex;

const SIMPLE_TYPES: [&str; 7] = [
    "array", "boolean", "integer", "null", "number", "object", "string",
];

/// Checks that `schema` is a valid Draft 7 schema; the error names the keyword.
pub fn check_draft7(schema: &PyValue) -> Result<(), String> {
    check_schema(schema, "parameters", FRAME_BUDGET)
}

/// jsonschema checks a schema recursively, and Python stops it with a
/// `RecursionError` (the request is refused) when its 1000 frames run out.
/// Each keyword costs the frames jsonschema spends descending through it
/// ([`descent_frames`]); a path of schemas may spend this many. Measured
/// with `harness/corpus/oracle.py`: paths costing 982 frames pass, 984 fail
/// (e.g. 245 nested `not` pass and 246 fail; 163 nested `properties` pass).
/// See `docs/limits.md`.
const FRAME_BUDGET: usize = 982;

/// The Python frames jsonschema's meta-schema check spends to descend
/// through `keyword` into a subschema (measured, see [`FRAME_BUDGET`]).
fn descent_frames(keyword: &str, into_array: bool) -> usize {
    match keyword {
        "items" if into_array => 10,
        "items" | "properties" | "definitions" | "patternProperties" => 6,
        "allOf" | "anyOf" | "oneOf" | "dependencies" => 8,
        _ => 4,
    }
}

fn is_number(v: &PyValue) -> bool {
    matches!(v, PyValue::Int(_) | PyValue::Float(_))
}

fn is_non_negative_integer(v: &PyValue) -> bool {
    match v {
        PyValue::Int(digits) => !digits.starts_with('-'),
        // jsonschema counts 3.0 as an integer.
        PyValue::Float(f) => f.fract() == 0.0 && *f >= 0.0,
        _ => false,
    }
}

fn check_schema(schema: &PyValue, at: &str, frames_left: usize) -> Result<(), String> {
    let entries = match schema {
        PyValue::Bool(_) => return Ok(()),
        PyValue::Dict(entries) => entries,
        other => {
            return Err(format!(
                "{} is not of type 'object', 'boolean' (at {at})",
                other.dumps()
            ));
        }
    };
    let fail = |key: &str, want: &str, value: &PyValue| {
        Err(format!(
            "{} is not valid under the meta-schema: '{key}' must be {want} (at {at})",
            value.dumps()
        ))
    };
    let need = |ok: bool, key: &str, want: &str, value: &PyValue| {
        if ok { Ok(()) } else { fail(key, want, value) }
    };
    for (key, value) in entries {
        let sub = |name: &str| format!("{at}.{key}{name}");
        let descend = |into_array: bool| {
            frames_left
                .checked_sub(descent_frames(key, into_array))
                .ok_or_else(|| {
                    format!("{at}.{key} is nested too deeply (maximum recursion depth exceeded)")
                })
        };
        match key.as_str() {
            "$id" | "$schema" | "$ref" | "$comment" | "title" | "description" | "format"
            | "contentMediaType" | "contentEncoding" => {
                need(matches!(value, PyValue::Str(_)), key, "a string", value)?
            }
            "pattern" => match value {
                PyValue::Str(pattern) => check_python_regex(pattern).map_err(|why| {
                    format!("{} is not a 'regex': {why} (at {at})", value.dumps())
                })?,
                other => return fail(key, "a string", other),
            },
            "readOnly" | "uniqueItems" => {
                need(matches!(value, PyValue::Bool(_)), key, "a boolean", value)?
            }
            "examples" | "enum" => need(matches!(value, PyValue::List(_)), key, "an array", value)?,
            "multipleOf" => {
                // `exclusiveMinimum: 0` fails only when `value <= 0`, which
                // NaN never is.
                let positive = match value {
                    PyValue::Int(d) => !d.starts_with('-') && d != "0",
                    PyValue::Float(f) => f.is_nan() || *f > 0.0,
                    _ => false,
                };
                if !positive {
                    return fail(key, "a number greater than 0", value);
                }
            }
            "maximum" | "exclusiveMaximum" | "minimum" | "exclusiveMinimum" => {
                need(is_number(value), key, "a number", value)?
            }
            "maxLength" | "minLength" | "maxItems" | "minItems" | "maxProperties"
            | "minProperties" => need(
                is_non_negative_integer(value),
                key,
                "a non-negative integer",
                value,
            )?,
            "additionalItems"
            | "contains"
            | "additionalProperties"
            | "propertyNames"
            | "if"
            | "then"
            | "else"
            | "not" => check_schema(value, &sub(""), descend(false)?)?,
            // Draft 7's schemaArray has `minItems: 1`.
            "items" | "allOf" | "anyOf" | "oneOf" => match value {
                PyValue::List(items) if !items.is_empty() => {
                    for (i, item) in items.iter().enumerate() {
                        check_schema(item, &sub(&format!("[{i}]")), descend(true)?)?;
                    }
                }
                PyValue::List(_) => return fail(key, "a non-empty array of schemas", value),
                other if key == "items" => check_schema(other, &sub(""), descend(false)?)?,
                other => return fail(key, "a non-empty array of schemas", other),
            },
            "definitions" | "properties" | "patternProperties" => match value {
                PyValue::Dict(props) => {
                    for (name, prop) in props {
                        if key == "patternProperties" {
                            check_python_regex(name).map_err(|why| {
                                format!("'{name}' is not a 'regex': {why} (at {at}.{key})")
                            })?;
                        }
                        check_schema(prop, &sub(&format!(".{name}")), descend(false)?)?;
                    }
                }
                other => return fail(key, "an object", other),
            },
            "dependencies" => match value {
                PyValue::Dict(deps) => {
                    for (name, dep) in deps {
                        match dep {
                            PyValue::List(names) => {
                                if !string_array_unique(names) {
                                    return fail(key, "schemas or arrays of unique strings", dep);
                                }
                            }
                            other => {
                                check_schema(other, &sub(&format!(".{name}")), descend(false)?)?
                            }
                        }
                    }
                }
                other => return fail(key, "an object", other),
            },
            "required" => match value {
                PyValue::List(names) if string_array_unique(names) => {}
                other => return fail(key, "an array of unique strings", other),
            },
            "type" => {
                let valid = match value {
                    PyValue::Str(name) => SIMPLE_TYPES.contains(&name.as_str()),
                    PyValue::List(names) => !names.is_empty()
                        && names.iter().all(
                            |n| matches!(n, PyValue::Str(s) if SIMPLE_TYPES.contains(&s.as_str())),
                        )
                        && string_array_unique(names),
                    _ => false,
                };
                if !valid {
                    return fail(
                        key,
                        "a simple type or a non-empty array of unique simple types",
                        value,
                    );
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// An array of distinct strings (`uniqueItems`), in linear time: a tool may
/// list 100,000 `required` names.
fn string_array_unique(items: &[PyValue]) -> bool {
    let mut seen = HashSet::with_capacity(items.len());
    items.iter().all(|v| match v {
        PyValue::Str(s) => seen.insert(s.as_str()),
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::pyjson::loads;

    #[test]
    fn accepts_ordinary_schemas() {
        let schema = loads(r#"{"type":"object","properties":{"city":{"type":"string","description":"x"},"n":{"type":["integer","null"],"minimum":0}},"required":["city"]}"#).unwrap();
        check_draft7(&schema.value).unwrap();
        // `exclusiveMinimum: 0` lets NaN through, as in jsonschema.
        check_draft7(&loads(r#"{"multipleOf":NaN}"#).unwrap().value).unwrap();
    }

    #[test]
    fn rejects_bad_keywords() {
        for bad in [
            r#"{"type":"foo"}"#,
            r#"{"required":"city"}"#,
            r#"{"properties":{"a":1}}"#,
            r#"{"minLength":-1}"#,
            r#"{"anyOf":[]}"#,
            r#"{"type":["string","string"]}"#,
            r#"{"items":[]}"#,
            r#"{"properties":{"a":{"items":[{"items":[]}]}}}"#,
            r#"{"multipleOf":-Infinity}"#,
            r#"{"required":["a","b","a"]}"#,
        ] {
            assert!(check_draft7(&loads(bad).unwrap().value).is_err(), "{bad}");
        }
    }

    fn nested(open: &str, leaf: &str, close: &str, levels: usize) -> PyValue {
        let text = format!("{}{leaf}{}", open.repeat(levels), close.repeat(levels));
        loads(&text).unwrap().value
    }

    #[test]
    fn nesting_stops_where_pythons_recursion_limit_does() {
        // The deepest paths mistral-common's check accepts, and one more.
        for (open, close, deepest) in [
            (r#"{"not":"#, "}", 245),
            (r#"{"properties":{"a":"#, "}}", 163),
            (r#"{"items":["#, "]}", 98),
            (r#"{"anyOf":["#, "]}", 122),
            (r#"{"not":{"anyOf":["#, "]}}", 81),
        ] {
            check_draft7(&nested(open, "{}", close, deepest)).unwrap();
            assert!(check_draft7(&nested(open, "{}", close, deepest + 1)).is_err());
        }
    }

    #[test]
    fn a_long_required_list_is_checked_in_one_pass() {
        let names: Vec<String> = (0..100_000).map(|i| format!("\"n{i}\"")).collect();
        let schema = loads(&format!(r#"{{"required":[{}]}}"#, names.join(","))).unwrap();
        check_draft7(&schema.value).unwrap();
    }
}
