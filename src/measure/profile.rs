//! Parser for callgrind's profile files (`callgrind.out…`, format version 1):
//! per function, the instructions (Ir) executed in its own code (self) and in
//! it and everything it called (inclusive), names as callgrind wrote them
//! (demangled).
//!
//! The format: header lines `key: value` (`events:` names the cost columns,
//! `positions:` how many position columns precede them), then `fn=` opening a
//! function whose cost lines follow, and `calls=` announcing that the next
//! cost line is the inclusive cost of one call from it to `cfn=`. Names may be
//! compressed: `fn=(12) name` defines id 12, a later `fn=(12)` reuses it; `fn`
//! and `cfn` share one table.

use std::collections::BTreeMap;

use serde::Serialize;

use super::MeasureError;

/// One function's instruction counts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FunctionCost {
    /// As callgrind wrote it (demangled).
    pub name: String,
    /// Instructions executed in the function's own code.
    pub self_ir: u64,
    /// Instructions executed in it and in what it called. Calls of a function
    /// to itself are not added again; mutual recursion is, as callgrind's own
    /// annotations do.
    pub inclusive_ir: u64,
}

/// Instruction counts per function of one benchmark (all its threads).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Profile {
    /// Every instruction counted: callgrind's totals.
    pub total_ir: u64,
    /// Largest self count first (then by name).
    pub functions: Vec<FunctionCost>,
}

fn parse_error(line: usize, what: impl std::fmt::Display) -> MeasureError {
    MeasureError::Parse(format!("callgrind profile, line {line}: {what}"))
}

fn count(text: &str, line: usize) -> Result<u64, MeasureError> {
    text.parse()
        .map_err(|_| parse_error(line, format!("'{text}' is not a count")))
}

/// Resolves a compressed name: `(id) name` defines, `(id)` reuses, a bare
/// name stands for itself.
fn name<'a>(
    spec: &'a str,
    table: &mut BTreeMap<&'a str, &'a str>,
    line: usize,
) -> Result<&'a str, MeasureError> {
    let spec = spec.trim();
    // An id is digits in parentheses; valgrind's own names may start with
    // one too ("(below main)").
    let compressed = spec
        .strip_prefix('(')
        .and_then(|rest| rest.split_once(')'))
        .filter(|(id, _)| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()));
    let Some((id, name)) = compressed else {
        return Ok(spec);
    };
    let name = name.trim();
    if name.is_empty() {
        table.get(id).copied().ok_or_else(|| {
            parse_error(
                line,
                format!("name id ({id}) is used before it is defined: is the file cut short?"),
            )
        })
    } else {
        table.insert(id, name);
        Ok(name)
    }
}

/// Parses one callgrind output file.
pub fn parse_profile(text: &str) -> Result<Profile, MeasureError> {
    let mut names: BTreeMap<&str, &str> = BTreeMap::new();
    let mut costs: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    let mut positions = 1;
    let mut ir_column = None;
    let mut totals = None;
    let mut current: Option<&str> = None;
    let mut callee: Option<&str> = None;
    let mut call_pending = false;
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let line = line.trim_end();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let first = line.as_bytes()[0];
        if first.is_ascii_digit() || matches!(first, b'+' | b'-' | b'*') {
            let column = ir_column
                .ok_or_else(|| parse_error(number, "a cost line before the 'events:' line"))?;
            // Missing trailing columns are zero.
            let ir = match line.split_whitespace().nth(positions + column) {
                Some(value) => count(value, number)?,
                None => 0,
            };
            let function =
                current.ok_or_else(|| parse_error(number, "a cost line outside any function"))?;
            let entry = costs.entry(function).or_default();
            if call_pending {
                call_pending = false;
                if callee != Some(function) {
                    entry.1 += ir;
                }
            } else {
                entry.0 += ir;
                entry.1 += ir;
            }
            continue;
        }
        if let Some((key, value)) = line.split_once('=') {
            match key {
                "fn" => {
                    let function = name(value, &mut names, number)?;
                    costs.entry(function).or_default();
                    current = Some(function);
                }
                "cfn" => callee = Some(name(value, &mut names, number)?),
                "calls" => call_pending = true,
                // Files, objects, jumps: not needed for per-function counts.
                _ => {}
            }
            continue;
        }
        if let Some((key, value)) = line.split_once(':') {
            let value = value.trim();
            match key {
                "events" => {
                    ir_column = Some(
                        value
                            .split_whitespace()
                            .position(|e| e == "Ir")
                            .ok_or_else(|| {
                                parse_error(number, format!("no Ir among the events '{value}'"))
                            })?,
                    );
                }
                "positions" => positions = value.split_whitespace().count(),
                "totals" | "summary" => {
                    let column = ir_column.ok_or_else(|| {
                        parse_error(number, format!("'{key}:' before the 'events:' line"))
                    })?;
                    let ir = value.split_whitespace().nth(column).unwrap_or("0");
                    totals = Some(count(ir, number)?);
                }
                _ => {}
            }
            continue;
        }
        return Err(parse_error(number, format!("unrecognised line '{line}'")));
    }
    if ir_column.is_none() {
        return Err(MeasureError::Parse(
            "not a callgrind profile: no 'events:' line (give a callgrind.out file)".into(),
        ));
    }
    let summed: u64 = costs.values().map(|(own, _)| own).sum();
    let functions = costs
        .into_iter()
        .filter(|(_, (own, inclusive))| *own > 0 || *inclusive > 0)
        .map(|(name, (self_ir, inclusive_ir))| FunctionCost {
            name: name.to_owned(),
            self_ir,
            inclusive_ir,
        })
        .collect();
    Ok(Profile::new(totals.unwrap_or(summed), functions))
}

impl Profile {
    /// A profile of `functions` in any order.
    pub fn new(total_ir: u64, mut functions: Vec<FunctionCost>) -> Self {
        functions.sort_by(|a, b| b.self_ir.cmp(&a.self_ir).then_with(|| a.name.cmp(&b.name)));
        Self {
            total_ir,
            functions,
        }
    }

    /// Several files of one benchmark (one per thread) as one profile: counts
    /// of the same function added.
    pub fn combined(parts: &[Profile]) -> Profile {
        let mut costs: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
        for function in parts.iter().flat_map(|p| &p.functions) {
            let entry = costs.entry(&function.name).or_default();
            entry.0 += function.self_ir;
            entry.1 += function.inclusive_ir;
        }
        let functions = costs
            .into_iter()
            .map(|(name, (self_ir, inclusive_ir))| FunctionCost {
                name: name.to_owned(),
                self_ir,
                inclusive_ir,
            })
            .collect();
        Profile::new(parts.iter().map(|p| p.total_ir).sum(), functions)
    }

    /// The `n` functions with the most self instructions and the `n` with the
    /// most inclusive ones; the total stays, so what was left out is
    /// [`Profile::unlisted_ir`].
    pub fn top(&self, n: usize) -> Profile {
        let mut by_inclusive: Vec<&FunctionCost> = self.functions.iter().collect();
        by_inclusive.sort_by(|a, b| {
            b.inclusive_ir
                .cmp(&a.inclusive_ir)
                .then_with(|| a.name.cmp(&b.name))
        });
        let keep: std::collections::BTreeSet<&str> = self
            .functions
            .iter()
            .take(n)
            .chain(by_inclusive.into_iter().take(n))
            .map(|f| f.name.as_str())
            .collect();
        Profile {
            total_ir: self.total_ir,
            functions: self
                .functions
                .iter()
                .filter(|f| keep.contains(f.name.as_str()))
                .cloned()
                .collect(),
        }
    }

    /// Self instructions of the functions not listed (left out by [`Profile::top`]).
    pub fn unlisted_ir(&self) -> u64 {
        let listed: u64 = self.functions.iter().map(|f| f.self_ir).sum();
        self.total_ir.saturating_sub(listed)
    }

    pub fn function(&self, name: &str) -> Option<&FunctionCost> {
        self.functions.iter().find(|f| f.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: &str = "# callgrind format\nversion: 1\ncreator: callgrind-3.19.0\npositions: line\nevents: Ir Dr\nsummary: 120 7\n\nob=(1) /bin/x\nfl=(1) a.rs\nfn=(1) main\n3 10 1\n+1 5\ncfl=(1)\ncfn=(2) helper\ncalls=2 +4\n* 100 3\ncfn=(1)\ncalls=1 0\n* 50\n\nfn=(2)\n7 100 3\njump=1 +2\n* \nfn=(below main)\n\ntotals: 115 6\n";

    #[test]
    fn self_and_inclusive_with_compressed_names() {
        let profile = parse_profile(SMALL).unwrap();
        assert_eq!(profile.total_ir, 115);
        assert_eq!(
            profile.functions,
            vec![
                FunctionCost {
                    name: "helper".into(),
                    self_ir: 100,
                    inclusive_ir: 100
                },
                FunctionCost {
                    name: "main".into(),
                    self_ir: 15,
                    // The call of main to itself is not counted again.
                    inclusive_ir: 115
                },
            ]
        );
        assert_eq!(profile.unlisted_ir(), 0);
    }

    #[test]
    fn malformed_files_say_what_is_wrong() {
        let error = |text| parse_profile(text).unwrap_err().to_string();
        assert!(error("hello").contains("unrecognised line"));
        assert!(error("").contains("give a callgrind.out file"));
        assert!(error("events: Dr\n").contains("no Ir"));
        assert!(error("events: Ir\nfn=(3)\n").contains("used before it is defined"));
        assert!(error("events: Ir\n5 10\n").contains("outside any function"));
        assert!(error("events: Ir\nfn=f\n5 x\n").contains("'x' is not a count"));
    }

    #[test]
    fn top_keeps_the_largest_by_self_and_by_inclusive() {
        let profile = Profile {
            total_ir: 1000,
            functions: vec![
                FunctionCost {
                    name: "a".into(),
                    self_ir: 500,
                    inclusive_ir: 500,
                },
                FunctionCost {
                    name: "b".into(),
                    self_ir: 300,
                    inclusive_ir: 300,
                },
                FunctionCost {
                    name: "root".into(),
                    self_ir: 1,
                    inclusive_ir: 1000,
                },
            ],
        };
        let top = profile.top(1);
        let names: Vec<&str> = top.functions.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["a", "root"]);
        assert_eq!(top.total_ir, 1000);
        assert_eq!(top.unlisted_ir(), 499);
        let both = Profile::combined(&[profile.clone(), top]);
        assert_eq!(both.total_ir, 2000);
        assert_eq!(both.function("a").unwrap().self_ir, 1000);
        assert_eq!(both.function("b").unwrap().self_ir, 300);
    }
}
