//! History checkers, one module per checker, as Jepsen and Maelstrom name
//! them. Each returns a serialisable result whose `valid?` field is a
//! [`Validity`]; `results.json` is their composition.

pub mod linearizable;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A checker's verdict: valid, invalid, or unknown (the analysis could not
/// decide, e.g. it ran out of its time budget).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Validity {
    Valid,
    Invalid,
    Unknown,
}

impl Validity {
    /// Combines two verdicts: invalid dominates unknown, which dominates valid.
    pub fn and(self, other: Validity) -> Validity {
        use Validity::*;
        match (self, other) {
            (Invalid, _) | (_, Invalid) => Invalid,
            (Unknown, _) | (_, Unknown) => Unknown,
            _ => Valid,
        }
    }

    /// `Valid` when `ok`, else `Invalid`.
    pub fn from_bool(ok: bool) -> Validity {
        if ok {
            Validity::Valid
        } else {
            Validity::Invalid
        }
    }

    pub fn is_valid(self) -> bool {
        self == Validity::Valid
    }
}

impl std::fmt::Display for Validity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Validity::Valid => "valid",
            Validity::Invalid => "invalid",
            Validity::Unknown => "unknown",
        })
    }
}

/// Serialised as Maelstrom writes `:valid?`: `true`, `false` or `"unknown"`.
impl Serialize for Validity {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Validity::Valid => serializer.serialize_bool(true),
            Validity::Invalid => serializer.serialize_bool(false),
            Validity::Unknown => serializer.serialize_str("unknown"),
        }
    }
}

impl<'de> Deserialize<'de> for Validity {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match serde_json::Value::deserialize(deserializer)? {
            serde_json::Value::Bool(true) => Ok(Validity::Valid),
            serde_json::Value::Bool(false) => Ok(Validity::Invalid),
            serde_json::Value::String(s) if s == "unknown" => Ok(Validity::Unknown),
            other => Err(serde::de::Error::custom(format!(
                "valid? must be true, false or \"unknown\", not {other}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_combine_and_serialise_like_maelstrom() {
        use Validity::*;
        assert_eq!(Valid.and(Unknown), Unknown);
        assert_eq!(Unknown.and(Invalid), Invalid);
        assert_eq!(Valid.and(Valid), Valid);
        assert_eq!(
            serde_json::to_string(&[Valid, Invalid, Unknown]).unwrap(),
            r#"[true,false,"unknown"]"#
        );
        let back: Vec<Validity> = serde_json::from_str(r#"[true,false,"unknown"]"#).unwrap();
        assert_eq!(back, vec![Valid, Invalid, Unknown]);
    }
}
