//! Contracts are data: a TOML file names the cases, the baseline and the
//! candidate, the metric and the limit. A new contract needs no code.

use std::path::Path;

use serde::Deserialize;

use crate::measure::payload::{Payload, Variant};

/// What a contract is judged on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Paired, interleaved wall-clock samples, judged with a confidence interval.
    WallClock,
    /// Callgrind instruction counts (deterministic: no interval).
    Instructions,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Case {
    pub name: String,
    pub payload: Payload,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Contract {
    pub id: String,
    pub title: String,
    pub baseline: Variant,
    pub candidate: Variant,
    pub metric: Metric,
    /// Largest allowed overhead, as a fraction (0.05 = 5%).
    pub limit: f64,
    pub confidence: f64,
    pub cases: Vec<Case>,
    /// SHA-256 (hex) of everything above, as parsed: a stored verdict is
    /// reused only for the same hash, so an edited limit is judged anew while
    /// comments and layout do not count.
    pub hash: String,
}

/// A contract file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ContractError {
    #[error("cannot read the contract {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("the contract {path} is not valid TOML: {message}")]
    Syntax { path: String, message: String },
    #[error("the contract {path} is invalid: {problem}")]
    Invalid { path: String, problem: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCase {
    name: String,
    payload: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawContract {
    id: String,
    title: Option<String>,
    baseline: String,
    candidate: String,
    metric: Metric,
    limit: f64,
    confidence: Option<f64>,
    cases: Vec<RawCase>,
}

fn variant(name: &str, role: &str) -> Result<Variant, String> {
    Variant::from_name(name).ok_or_else(|| {
        format!("{role} '{name}' is not a function perfwarden measures (use \"sync\" or \"async\")")
    })
}

impl Contract {
    /// Parses and validates a contract; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, ContractError> {
        let raw: RawContract = toml::from_str(text).map_err(|e| ContractError::Syntax {
            path: origin.to_owned(),
            message: e.to_string(),
        })?;
        Self::validate(raw).map_err(|problem| ContractError::Invalid {
            path: origin.to_owned(),
            problem,
        })
    }

    pub fn load(path: &Path) -> Result<Self, ContractError> {
        let text = std::fs::read_to_string(path).map_err(|source| ContractError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    fn validate(raw: RawContract) -> Result<Self, String> {
        if raw.id.trim().is_empty() {
            return Err("`id` is empty".into());
        }
        let baseline = variant(&raw.baseline, "baseline")?;
        let candidate = variant(&raw.candidate, "candidate")?;
        if baseline == candidate {
            return Err(format!(
                "baseline and candidate are both '{}'",
                raw.baseline
            ));
        }
        if !(raw.limit > 0.0 && raw.limit < 1.0) {
            return Err(format!(
                "limit {} is out of range: give the largest allowed overhead as a fraction between 0 and 1 (0.05 = 5%)",
                raw.limit
            ));
        }
        let confidence = raw.confidence.unwrap_or(0.95);
        if !(0.5..1.0).contains(&confidence) {
            return Err(format!("confidence {confidence} is out of range [0.5, 1)"));
        }
        if raw.cases.is_empty() {
            return Err("it has no [[cases]]".into());
        }
        let mut cases: Vec<Case> = Vec::with_capacity(raw.cases.len());
        for case in raw.cases {
            let payload = Payload::from_name(&case.payload).ok_or_else(|| {
                format!(
                    "case '{}' uses unknown payload '{}' (known: small, medium, large)",
                    case.name, case.payload
                )
            })?;
            if cases.iter().any(|c| c.name == case.name) {
                return Err(format!("two cases are named '{}'", case.name));
            }
            cases.push(Case {
                name: case.name,
                payload,
            });
        }
        let mut contract = Self {
            title: raw.title.unwrap_or_else(|| raw.id.clone()),
            id: raw.id,
            baseline,
            candidate,
            metric: raw.metric,
            limit: raw.limit,
            confidence,
            cases,
            hash: String::new(),
        };
        let content = serde_json::to_string(&contract).expect("a contract serializes");
        contract.hash = crate::chat::acquire::sha256_hex(content.as_bytes());
        Ok(contract)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHIPPED: &str = include_str!("../../harness/contracts/performance-001.toml");

    #[test]
    fn the_shipped_contract_loads() {
        let contract = Contract::parse(SHIPPED, "performance-001.toml").unwrap();
        assert_eq!(contract.id, "performance-001");
        assert_eq!(contract.limit, 0.05);
        assert_eq!(contract.baseline, Variant::Sync);
        assert_eq!(contract.candidate, Variant::Async);
        assert_eq!(contract.metric, Metric::WallClock);
        let payloads: Vec<Payload> = contract.cases.iter().map(|c| c.payload).collect();
        assert_eq!(payloads, Payload::ALL);
    }

    #[test]
    fn a_second_contract_needs_no_code() {
        let text = r#"
            id = "instructions-002"
            baseline = "sync"
            candidate = "async"
            metric = "instructions"
            limit = 0.01
            [[cases]]
            name = "big"
            payload = "large"
        "#;
        let contract = Contract::parse(text, "second.toml").unwrap();
        assert_eq!(contract.metric, Metric::Instructions);
        assert_eq!(contract.title, "instructions-002");
        assert_eq!(contract.confidence, 0.95);
    }

    #[test]
    fn the_hash_follows_the_content_not_the_layout() {
        let shipped = Contract::parse(SHIPPED, "a.toml").unwrap();
        let commented = format!("# a comment\n\n{SHIPPED}\n");
        assert_eq!(
            Contract::parse(&commented, "b.toml").unwrap().hash,
            shipped.hash
        );
        let stricter = SHIPPED.replace("limit = 0.05", "limit = 0.001");
        assert_ne!(
            Contract::parse(&stricter, "c.toml").unwrap().hash,
            shipped.hash
        );
        assert_eq!(shipped.hash.len(), 64);
    }

    #[test]
    fn bad_contracts_say_what_is_wrong() {
        let cases = [
            (SHIPPED.replace("payload = \"small\"", "payload = \"huge\""), "unknown payload 'huge'"),
            (SHIPPED.replace("limit = 0.05", "limit = 5"), "limit 5 is out of range"),
            (SHIPPED.replace("limit = 0.05", "limit = 0"), "out of range"),
            (SHIPPED.replace("candidate = \"async\"", "candidate = \"sync\""), "both 'sync'"),
            (SHIPPED.replace("baseline = \"sync\"", "baseline = \"blocking\""), "baseline 'blocking'"),
            (SHIPPED.replace("metric = \"wall_clock\"", "metric = \"vibes\""), "vibes"),
            (SHIPPED.replace("confidence = 0.95", "confidence = 1.5"), "confidence 1.5"),
            (SHIPPED.replace("name = \"medium\"", "name = \"small\""), "two cases are named 'small'"),
            (SHIPPED.replace("id = ", "identifier = "), "identifier"),
            ("id = \"x\"\nbaseline = \"sync\"\ncandidate = \"async\"\nmetric = \"wall_clock\"\nlimit = 0.05\ncases = []".to_string(), "no [[cases]]"),
        ];
        for (text, expected) in cases {
            let error = Contract::parse(&text, "bad.toml").unwrap_err().to_string();
            assert!(
                error.contains(expected),
                "expected '{expected}' in: {error}"
            );
            assert!(error.contains("bad.toml"), "{error}");
        }
    }
}
