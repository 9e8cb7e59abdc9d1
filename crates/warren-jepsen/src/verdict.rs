//! What a checker concludes.

use std::fmt;

/// A checker's conclusion about one property.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The property holds; the text says what was checked.
    Pass(String),
    /// The property is violated: one line per violation found (bounded).
    Fail(Vec<String>),
    /// The checker could not decide (a search bound was hit, or the run did not give it
    /// what it needs); the text says why.
    Unknown(String),
}

/// At most this many violations are kept per checker; the rest are counted.
pub const VIOLATIONS_SHOWN: usize = 20;

impl Verdict {
    /// `Pass` when `violations` is empty, else `Fail` with at most [`VIOLATIONS_SHOWN`]
    /// of them and a count of the rest.
    pub fn from_violations(mut violations: Vec<String>, checked: String) -> Verdict {
        if violations.is_empty() {
            return Verdict::Pass(checked);
        }
        let more = violations.len().saturating_sub(VIOLATIONS_SHOWN);
        violations.truncate(VIOLATIONS_SHOWN);
        if more > 0 {
            violations.push(format!("... and {more} more"));
        }
        Verdict::Fail(violations)
    }

    /// Whether this is a violation.
    pub fn is_fail(&self) -> bool {
        matches!(self, Verdict::Fail(_))
    }

    /// Whether the property was shown to hold.
    pub fn is_pass(&self) -> bool {
        matches!(self, Verdict::Pass(_))
    }

    /// Combines verdicts of parts (per znode, per server): any Fail fails, else any Unknown
    /// is unknown, else pass.
    pub fn all(parts: Vec<Verdict>, checked: String) -> Verdict {
        let mut fails = Vec::new();
        let mut unknown = Vec::new();
        for v in parts {
            match v {
                Verdict::Pass(_) => {}
                Verdict::Fail(f) => fails.extend(f),
                Verdict::Unknown(u) => unknown.push(u),
            }
        }
        if !fails.is_empty() {
            return Verdict::from_violations(fails, checked);
        }
        if !unknown.is_empty() {
            return Verdict::Unknown(unknown.join("; "));
        }
        Verdict::Pass(checked)
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Pass(s) => write!(f, "PASS     {s}"),
            Verdict::Unknown(s) => write!(f, "UNKNOWN  {s}"),
            Verdict::Fail(v) => {
                write!(f, "FAIL     {}", v.first().map_or("", String::as_str))?;
                for line in v.iter().skip(1) {
                    write!(f, "\n{:31}{line}", "")?;
                }
                Ok(())
            }
        }
    }
}

/// One checker's result in a run's report.
#[derive(Debug, Clone)]
pub struct Check {
    /// The property, as the report names it.
    pub name: String,
    /// Its verdict.
    pub verdict: Verdict,
}
