//! Contracts are data: a TOML file names the metric, the variants it compares
//! (or the one it bounds), the bound, and the cases with their payloads. A new
//! contract, payload or bound needs no code.

use std::path::Path;

use serde::Deserialize;

use crate::measure::paired::CallerPlacement;
use crate::measure::payload::{CasePayload, PayloadError, PayloadSpec, Variant};
use crate::metric::{Metric, Reference, Shape};

/// The side of the bound the judged figure must stay on.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Bound {
    /// The whole interval must lie under the value.
    AtMost(f64),
    /// The whole interval must lie over the value.
    AtLeast(f64),
}

impl Bound {
    pub fn value(self) -> f64 {
        match self {
            Bound::AtMost(v) | Bound::AtLeast(v) => v,
        }
    }

    /// `at_most` or `at_least`, as stored.
    pub fn kind(self) -> &'static str {
        match self {
            Bound::AtMost(_) => "at_most",
            Bound::AtLeast(_) => "at_least",
        }
    }

    pub fn from_kind(kind: &str, value: f64) -> Option<Self> {
        match kind {
            "at_most" => Some(Bound::AtMost(value)),
            "at_least" => Some(Bound::AtLeast(value)),
            _ => None,
        }
    }
}

/// Which functions a contract runs.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Variants {
    Compare {
        baseline: Variant,
        candidate: Variant,
    },
    Bound {
        variant: Variant,
        reference: Option<Variant>,
    },
}

impl Variants {
    /// The variant whose cost is judged.
    pub fn judged(&self) -> Variant {
        match self {
            Variants::Compare { candidate, .. } => *candidate,
            Variants::Bound { variant, .. } => *variant,
        }
    }

    /// The variant it is compared with or shown beside, if any.
    pub fn other(&self) -> Option<Variant> {
        match self {
            Variants::Compare { baseline, .. } => Some(*baseline),
            Variants::Bound { reference, .. } => *reference,
        }
    }
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Case {
    pub name: String,
    pub payload: CasePayload,
    /// The contract's bound, or this case's own.
    pub bound: Bound,
    /// Where the sampler's caller runs; left out of the hash when it is the
    /// default, so contracts written before it keep their stored verdicts.
    #[serde(skip_serializing_if = "is_debiased")]
    pub caller: CallerPlacement,
}

fn is_debiased(caller: &CallerPlacement) -> bool {
    *caller == CallerPlacement::Debiased
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Contract {
    pub id: String,
    pub title: String,
    pub metric: Metric,
    pub variants: Variants,
    /// The payload a bounded metric's figures are set against.
    pub reference_payload: Option<CasePayload>,
    pub bound: Bound,
    pub confidence: f64,
    pub cases: Vec<Case>,
    /// SHA-256 (hex) of everything above, as parsed (payload files by their
    /// content): a stored verdict is reused only for the same hash, so an
    /// edited limit or payload is judged anew while comments and layout do
    /// not count.
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
    #[error("cannot list the contracts in {path}: {source}")]
    List {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} holds no contract (*.toml); give one with --contract PATH")]
    NoContracts { path: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCase {
    name: String,
    payload: PayloadSpec,
    limit: Option<f64>,
    at_least: Option<f64>,
    caller: Option<CallerPlacement>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawContract {
    id: String,
    title: Option<String>,
    metric: String,
    baseline: Option<String>,
    candidate: Option<String>,
    variant: Option<String>,
    reference: Option<String>,
    reference_payload: Option<PayloadSpec>,
    limit: Option<f64>,
    at_least: Option<f64>,
    confidence: Option<f64>,
    cases: Vec<RawCase>,
}

fn variant(name: &str, role: &str) -> Result<Variant, String> {
    Variant::from_name(name).ok_or_else(|| {
        format!("{role} '{name}' is not a function perfwarden measures (use \"sync\" or \"async\")")
    })
}

/// `limit` (an upper bound) or `at_least` (a lower one), not both.
fn bound(
    limit: Option<f64>,
    at_least: Option<f64>,
    metric: Metric,
    whose: &str,
) -> Result<Option<Bound>, String> {
    let bound = match (limit, at_least) {
        (Some(_), Some(_)) => {
            return Err(format!(
                "{whose} gives both `limit` and `at_least`; keep one"
            ));
        }
        (Some(v), None) => Bound::AtMost(v),
        (None, Some(v)) => Bound::AtLeast(v),
        (None, None) => return Ok(None),
    };
    metric
        .check_bound(bound)
        .map_err(|problem| format!("{whose}: {problem}"))?;
    Ok(Some(bound))
}

impl Contract {
    /// Parses and validates a contract; `origin` names it in errors and
    /// `dir` is where payload files are looked up.
    pub fn parse(text: &str, origin: &str, dir: &Path) -> Result<Self, ContractError> {
        let raw: RawContract = toml::from_str(text).map_err(|e| ContractError::Syntax {
            path: origin.to_owned(),
            message: e.to_string(),
        })?;
        Self::validate(raw, dir).map_err(|problem| ContractError::Invalid {
            path: origin.to_owned(),
            problem,
        })
    }

    pub fn load(path: &Path) -> Result<Self, ContractError> {
        let text = std::fs::read_to_string(path).map_err(|source| ContractError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let dir = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, &path.display().to_string(), dir)
    }

    /// Every `*.toml` in `dir`, by file name.
    pub fn load_dir(dir: &Path) -> Result<Vec<Self>, ContractError> {
        let listed = std::fs::read_dir(dir).map_err(|source| ContractError::List {
            path: dir.display().to_string(),
            source,
        })?;
        let mut paths: Vec<_> = listed
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        paths.sort();
        if paths.is_empty() {
            return Err(ContractError::NoContracts {
                path: dir.display().to_string(),
            });
        }
        paths.iter().map(|p| Self::load(p)).collect()
    }

    fn validate(raw: RawContract, dir: &Path) -> Result<Self, String> {
        if raw.id.trim().is_empty() {
            return Err("`id` is empty".into());
        }
        let metric = Metric::parse(&raw.metric).ok_or_else(|| {
            let known: Vec<_> = Metric::ALL.iter().map(|m| m.name()).collect();
            format!(
                "unknown metric '{}' (known: {})",
                raw.metric,
                known.join(", ")
            )
        })?;
        let payload = |spec: PayloadSpec| -> Result<CasePayload, String> {
            CasePayload::resolve(spec, dir).map_err(|e: PayloadError| e.to_string())
        };
        let unused = |field: &str, value: bool| -> Result<(), String> {
            if value {
                Err(format!(
                    "`{field}` does not apply to the metric {}",
                    metric.name()
                ))
            } else {
                Ok(())
            }
        };
        let (variants, reference_payload) = match metric.shape() {
            Shape::Compare => {
                unused("variant", raw.variant.is_some())?;
                unused("reference", raw.reference.is_some())?;
                unused("reference_payload", raw.reference_payload.is_some())?;
                let (Some(b), Some(c)) = (&raw.baseline, &raw.candidate) else {
                    return Err(format!(
                        "the metric {} compares two functions: give `baseline` and `candidate`",
                        metric.name()
                    ));
                };
                let baseline = variant(b, "baseline")?;
                let candidate = variant(c, "candidate")?;
                if baseline == candidate {
                    return Err(format!("baseline and candidate are both '{b}'"));
                }
                (
                    Variants::Compare {
                        baseline,
                        candidate,
                    },
                    None,
                )
            }
            Shape::Bound { reference } => {
                unused("baseline", raw.baseline.is_some())?;
                unused("candidate", raw.candidate.is_some())?;
                let Some(v) = &raw.variant else {
                    return Err(format!(
                        "the metric {} bounds one function: give `variant`",
                        metric.name()
                    ));
                };
                let judged = variant(v, "variant")?;
                let reference_variant = match reference {
                    Reference::Variant => raw
                        .reference
                        .as_deref()
                        .map(|r| variant(r, "reference"))
                        .transpose()?,
                    _ => {
                        unused("reference", raw.reference.is_some())?;
                        None
                    }
                };
                let reference_payload = match reference {
                    Reference::Variant => {
                        unused("reference_payload", raw.reference_payload.is_some())?;
                        None
                    }
                    Reference::Payload => raw.reference_payload.map(payload).transpose()?,
                    Reference::PayloadRequired => Some(payload(raw.reference_payload.ok_or_else(
                        || format!("the metric {} needs `reference_payload`, the payload its cost is set against", metric.name()),
                    )?)?),
                };
                (
                    Variants::Bound {
                        variant: judged,
                        reference: reference_variant,
                    },
                    reference_payload,
                )
            }
        };
        let contract_bound = bound(raw.limit, raw.at_least, metric, "the contract")?;
        let confidence = raw.confidence.unwrap_or(0.95);
        if !(0.5..1.0).contains(&confidence) {
            return Err(format!("confidence {confidence} is out of range [0.5, 1)"));
        }
        if raw.cases.is_empty() {
            return Err("it has no [[cases]]".into());
        }
        let mut cases: Vec<Case> = Vec::with_capacity(raw.cases.len());
        for case in raw.cases {
            if cases.iter().any(|c| c.name == case.name) {
                return Err(format!("two cases are named '{}'", case.name));
            }
            let whose = format!("case '{}'", case.name);
            let bound = bound(case.limit, case.at_least, metric, &whose)?
                .or(contract_bound)
                .ok_or_else(|| format!("{whose} has no bound: give `limit` (or `at_least`) for the contract or the case"))?;
            let caller = case.caller.unwrap_or_default();
            if caller != CallerPlacement::Debiased
                && !matches!(metric, Metric::WallClock | Metric::CpuTime)
            {
                return Err(format!(
                    "{whose}: `caller` applies to the paired wall_clock and cpu_time metrics only; remove it"
                ));
            }
            cases.push(Case {
                payload: payload(case.payload).map_err(|e| format!("{whose}: {e}"))?,
                name: case.name,
                bound,
                caller,
            });
        }
        let mut contract = Self {
            title: raw.title.unwrap_or_else(|| raw.id.clone()),
            id: raw.id,
            metric,
            variants,
            reference_payload,
            bound: contract_bound.unwrap_or(cases[0].bound),
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
    use crate::measure::payload::Payload;

    const SHIPPED: &str = include_str!("../../harness/contracts/performance-001.toml");

    fn parse(text: &str, origin: &str) -> Result<Contract, ContractError> {
        Contract::parse(text, origin, Path::new("harness/contracts"))
    }

    #[test]
    fn the_shipped_contract_loads() {
        let contract = parse(SHIPPED, "performance-001.toml").unwrap();
        assert_eq!(contract.id, "performance-001");
        assert_eq!(contract.bound, Bound::AtMost(0.05));
        assert_eq!(
            contract.variants,
            Variants::Compare {
                baseline: Variant::Sync,
                candidate: Variant::Async
            }
        );
        assert_eq!(contract.metric, Metric::WallClock);
        let payloads: Vec<Option<Payload>> =
            contract.cases.iter().map(|c| c.payload.as_spec()).collect();
        // The spec's three, then medium and large as a user's program calls.
        let [small, medium, large] = Payload::ALL.map(Some);
        assert_eq!(payloads, [small, medium, large, medium, large]);
    }

    #[test]
    fn an_unpinned_case_keeps_its_samples_apart_and_the_default_leaves_the_hash_alone() {
        let contract = parse(SHIPPED, "performance-001.toml").unwrap();
        let unpinned = contract
            .cases
            .iter()
            .find(|c| c.name == "medium-unpinned")
            .unwrap();
        let pinned = contract.cases.iter().find(|c| c.name == "medium").unwrap();
        assert_eq!(unpinned.caller, CallerPlacement::Unpinned);
        assert_eq!(pinned.caller, CallerPlacement::Debiased);
        let keys = |case| crate::metric::sample_keys(&contract, case);
        assert_eq!(keys(pinned).0, "medium/async");
        assert_eq!(keys(unpinned).0, "medium@unpinned/async");
        let spelled_out = SHIPPED.replace(
            "name = \"small\"\npayload = \"small\"",
            "name = \"small\"\npayload = \"small\"\ncaller = \"debiased\"",
        );
        assert_ne!(spelled_out, SHIPPED);
        assert_eq!(parse(&spelled_out, "b.toml").unwrap().hash, contract.hash);
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
        let contract = parse(text, "second.toml").unwrap();
        assert_eq!(contract.metric, Metric::Instructions);
        assert_eq!(contract.title, "instructions-002");
        assert_eq!(contract.confidence, 0.95);
    }

    #[test]
    fn the_hash_follows_the_content_not_the_layout() {
        let shipped = parse(SHIPPED, "a.toml").unwrap();
        let commented = format!("# a comment\n\n{SHIPPED}\n");
        assert_eq!(parse(&commented, "b.toml").unwrap().hash, shipped.hash);
        let stricter = SHIPPED.replace("limit = 0.05", "limit = 0.001");
        assert_ne!(parse(&stricter, "c.toml").unwrap().hash, shipped.hash);
        assert_eq!(shipped.hash.len(), 64);
    }

    #[test]
    fn bad_contracts_say_what_is_wrong() {
        let cases = [
            (SHIPPED.replace("payload = \"small\"", "payload = \"huge\""), "unknown payload 'huge'"),
            (SHIPPED.replace("limit = 0.05", "limit = 500"), "limit 500 does not fit the metric wall_clock"),
            (SHIPPED.replace("limit = 0.05", "limit = 0"), "does not fit"),
            (SHIPPED.replace("limit = 0.05", "at_least = 0.9"), "at_least 0.9 does not fit"),
            (SHIPPED.replace("limit = 0.05", "limit = 0.05\nat_least = 0.9"), "both `limit` and `at_least`"),
            (SHIPPED.replace("limit = 0.05", ""), "has no bound"),
            (SHIPPED.replace("candidate = \"async\"", ""), "give `baseline` and `candidate`"),
            (SHIPPED.replace("candidate = \"async\"", "variant = \"async\""), "`variant` does not apply to the metric wall_clock"),
            (SHIPPED.replace("metric = \"wall_clock\"", "metric = \"event_loop_stall\""), "does not apply to the metric event_loop_stall"),
            (SHIPPED.replace("candidate = \"async\"", "candidate = \"sync\""), "both 'sync'"),
            (SHIPPED.replace("baseline = \"sync\"", "baseline = \"blocking\""), "baseline 'blocking'"),
            (SHIPPED.replace("metric = \"wall_clock\"", "metric = \"vibes\""), "unknown metric 'vibes'"),
            (SHIPPED.replace("confidence = 0.95", "confidence = 1.5"), "confidence 1.5"),
            (SHIPPED.replace("name = \"medium\"", "name = \"small\""), "two cases are named 'small'"),
            (SHIPPED.replace("metric = \"wall_clock\"", "metric = \"instructions\""), "`caller` applies to the paired wall_clock and cpu_time metrics only"),
            (SHIPPED.replace("caller = \"unpinned\"", "caller = \"floating\""), "unknown variant `floating`"),
            (SHIPPED.replace("id = ", "identifier = "), "identifier"),
            ("id = \"x\"\nbaseline = \"sync\"\ncandidate = \"async\"\nmetric = \"wall_clock\"\nlimit = 0.05\ncases = []".to_string(), "no [[cases]]"),
        ];
        for (text, expected) in cases {
            let error = parse(&text, "bad.toml").unwrap_err().to_string();
            assert!(
                error.contains(expected),
                "expected '{expected}' in: {error}"
            );
            assert!(error.contains("bad.toml"), "{error}");
        }
    }

    #[test]
    fn every_shipped_contract_loads() {
        let contracts = Contract::load_dir(Path::new("harness/contracts")).unwrap();
        let ids: Vec<&str> = contracts.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "performance-001",
                "performance-002",
                "performance-003",
                "performance-004",
                "performance-005-cost",
                "performance-005-memory"
            ]
        );
        let metrics: Vec<Metric> = contracts.iter().map(|c| c.metric).collect();
        assert_eq!(
            metrics,
            [
                Metric::WallClock,
                Metric::CpuTime,
                Metric::EventLoopStall,
                Metric::Throughput,
                Metric::CostPerByte,
                Metric::PeakMemory
            ]
        );
    }

    #[test]
    fn bounded_contracts_name_one_variant_and_their_reference() {
        let text = r#"
            id = "worst"
            metric = "cost_per_byte"
            variant = "sync"
            reference_payload = "large"
            limit = 10
            [[cases]]
            name = "spaces"
            payload = { generator = "spaces", size = 1000 }
            [[cases]]
            name = "word"
            payload = { generator = "unbroken_word", size = 1000 }
            limit = 12
        "#;
        let contract = parse(text, "worst.toml").unwrap();
        assert_eq!(contract.variants.judged(), Variant::Sync);
        assert_eq!(
            contract
                .reference_payload
                .as_ref()
                .and_then(|p| p.as_spec()),
            Some(Payload::Large)
        );
        assert_eq!(contract.cases[0].bound, Bound::AtMost(10.0));
        assert_eq!(contract.cases[1].bound, Bound::AtMost(12.0));
        let missing = text.replace("reference_payload = \"large\"", "");
        let error = parse(&missing, "worst.toml").unwrap_err().to_string();
        assert!(error.contains("needs `reference_payload`"), "{error}");
    }
}
