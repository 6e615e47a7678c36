//! The Draft 7 meta-schema check mistral-common runs on every tool's
//! `parameters` (`jsonschema.Draft7Validator.check_schema`): each keyword's
//! value must have the type the meta-schema gives it.

use super::pyjson::PyValue;

const SIMPLE_TYPES: [&str; 7] = [
    "array", "boolean", "integer", "null", "number", "object", "string",
];

/// Checks that `schema` is a valid Draft 7 schema; the error names the keyword.
pub fn check_draft7(schema: &PyValue) -> Result<(), String> {
    check_schema(schema, "parameters", 0)
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

fn check_schema(schema: &PyValue, at: &str, depth: usize) -> Result<(), String> {
    if depth > super::pyjson::MAX_DEPTH {
        return Err(format!("{at} is nested too deeply"));
    }
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
        match key.as_str() {
            "$id" | "$schema" | "$ref" | "$comment" | "title" | "description" | "format"
            | "contentMediaType" | "contentEncoding" | "pattern" => {
                need(matches!(value, PyValue::Str(_)), key, "a string", value)?
            }
            "readOnly" | "uniqueItems" => {
                need(matches!(value, PyValue::Bool(_)), key, "a boolean", value)?
            }
            "examples" | "enum" => need(matches!(value, PyValue::List(_)), key, "an array", value)?,
            "multipleOf" => {
                let positive = match value {
                    PyValue::Int(d) => !d.starts_with('-') && d != "0",
                    PyValue::Float(f) => *f > 0.0,
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
            | "not" => check_schema(value, &sub(""), depth + 1)?,
            "items" => match value {
                PyValue::List(items) => {
                    for (i, item) in items.iter().enumerate() {
                        check_schema(item, &sub(&format!("[{i}]")), depth + 1)?;
                    }
                }
                other => check_schema(other, &sub(""), depth + 1)?,
            },
            "allOf" | "anyOf" | "oneOf" => match value {
                PyValue::List(items) if !items.is_empty() => {
                    for (i, item) in items.iter().enumerate() {
                        check_schema(item, &sub(&format!("[{i}]")), depth + 1)?;
                    }
                }
                other => return fail(key, "a non-empty array of schemas", other),
            },
            "definitions" | "properties" | "patternProperties" => match value {
                PyValue::Dict(props) => {
                    for (name, prop) in props {
                        check_schema(prop, &sub(&format!(".{name}")), depth + 1)?;
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
                            other => check_schema(other, &sub(&format!(".{name}")), depth + 1)?,
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
                        && unique(names),
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

fn unique(items: &[PyValue]) -> bool {
    items
        .iter()
        .enumerate()
        .all(|(i, a)| items[..i].iter().all(|b| a != b))
}

fn string_array_unique(items: &[PyValue]) -> bool {
    items.iter().all(|v| matches!(v, PyValue::Str(_))) && unique(items)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::pyjson::loads;

    #[test]
    fn accepts_ordinary_schemas() {
        let schema = loads(r#"{"type":"object","properties":{"city":{"type":"string","description":"x"},"n":{"type":["integer","null"],"minimum":0}},"required":["city"]}"#).unwrap();
        check_draft7(&schema).unwrap();
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
        ] {
            assert!(check_draft7(&loads(bad).unwrap()).is_err(), "{bad}");
        }
    }
}
