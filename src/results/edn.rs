//! Real Maelstrom writes `results.edn` and `history.edn` in EDN. We read
//! them with the `clojure-reader` crate and turn them into the JSON shape
//! our runner writes, so one set of accessors serves both runners.
//!
//! The translation mirrors how our runner names things: a keyword loses its
//! colon (`:valid?` becomes `"valid?"`), numeric map keys become their
//! decimal text (`{0.5 452}` becomes `{"0.5": 452}`, as in our
//! `stable-latencies`), ratios become floats (Clojure divides integers into
//! ratios, e.g. an `:ok-fraction` of `983/1000`), sets become arrays, and
//! tagged values (`#object[...]`, `#jepsen.history.Op{...}`) become their
//! content, except where the tag carries the meaning (see [`tagged`]).

use std::path::Path;

use anyhow::{Context, Result, bail};
use clojure_reader::edn::{self, Edn};
use serde_json::{Map, Number, Value};

/// Parses one EDN document into JSON.
pub fn parse(text: &str) -> Result<Value> {
    let edn = edn::read_string(text).map_err(|e| anyhow::anyhow!("{}", describe(&e, 0)))?;
    Ok(to_json(&edn))
}

/// Parses every top-level form of `text` (a history file holds one op per
/// line), reporting the line of a form that does not parse.
pub fn parse_all(text: &str) -> Result<Vec<Value>> {
    let mut forms = Vec::new();
    let mut rest = text;
    while !only_whitespace_or_comments(rest) {
        let line = text[..text.len() - rest.len()].matches('\n').count();
        let (form, remaining) =
            edn::read(rest).map_err(|e| anyhow::anyhow!("{}", describe(&e, line)))?;
        forms.push(to_json(&form));
        rest = remaining;
    }
    Ok(forms)
}

/// Reads and parses an EDN file.
pub fn read_file(path: &Path) -> Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse(&text).with_context(|| format!("{} is not valid EDN", path.display()))
}

fn only_whitespace_or_comments(text: &str) -> bool {
    text.lines()
        .map(|l| l.trim_start_matches([' ', '\t', '\r', ',']))
        .all(|l| l.is_empty() || l.starts_with(';'))
}

/// The parser's error with its position made absolute (1-based line).
fn describe(e: &clojure_reader::error::Error, lines_before: usize) -> String {
    match (e.line, e.column) {
        (Some(line), Some(column)) => {
            format!(
                "{:?} at line {}, column {column}",
                e.code,
                line + lines_before
            )
        }
        _ => format!("{:?} (the text ends too early)", e.code),
    }
}

/// The JSON our runner would have written for the same EDN value.
pub fn to_json(edn: &Edn) -> Value {
    match edn {
        Edn::Nil => Value::Null,
        Edn::Bool(b) => Value::Bool(*b),
        Edn::Int(i) => Value::from(*i),
        Edn::Double(d) => float(d.into_inner()),
        Edn::Rational((n, d)) => float(*n as f64 / *d as f64),
        Edn::Str(s) | Edn::Key(s) | Edn::Symbol(s) => Value::String(s.to_string()),
        Edn::Char(c) => Value::String(c.to_string()),
        Edn::Vector(items) | Edn::List(items) => items.iter().map(to_json).collect(),
        Edn::Set(items) => items.iter().map(to_json).collect(),
        Edn::Map(entries) => Value::Object(
            entries
                .iter()
                .map(|(k, v)| (key_text(k), to_json(v)))
                .collect::<Map<_, _>>(),
        ),
        Edn::Tagged(tag, inner) => tagged(tag, inner),
        // The enum is non-exhaustive; anything new is kept as its EDN text.
        other => Value::String(other.to_string()),
    }
}

/// JSON has no NaN or infinity; those become null rather than failing.
fn float(f: f64) -> Value {
    Number::from_f64(f).map_or(Value::Null, Value::Number)
}

/// A map key as text: keywords and strings bare, numbers as our runner
/// writes quantile keys, anything else (vectors, maps) as EDN.
fn key_text(key: &Edn) -> String {
    match key {
        Edn::Key(s) | Edn::Str(s) | Edn::Symbol(s) => s.to_string(),
        Edn::Int(i) => i.to_string(),
        Edn::Double(d) => d.into_inner().to_string(),
        Edn::Nil => "nil".into(),
        other => other.to_string(),
    }
}

/// A tagged value. Records (`#jepsen.history.Op{...}`, `#knossos.model.
/// CASRegister{...}`) and `#inst`/`#uuid` are their content. A Java object
/// printed as `#object[Class 0x1f2e "text"]` is its class and text, e.g.
/// `"java.io.File /tmp/x"`, since the hash in the middle means nothing
/// outside the JVM that printed it.
fn tagged(tag: &str, inner: &Edn) -> Value {
    match (tag, inner) {
        ("object", Edn::Vector(parts)) => {
            let class = parts.first().map(|c| c.to_string()).unwrap_or_default();
            match parts.last().filter(|_| parts.len() > 2) {
                Some(Edn::Str(text)) => Value::String(format!("{class} {text}")),
                Some(other) => Value::String(format!("{class} {other}")),
                None => Value::String(class),
            }
        }
        _ => to_json(inner),
    }
}

/// Fails unless `value` is a map, naming what it is instead.
pub fn expect_map(value: &Value, what: &str) -> Result<()> {
    if !value.is_object() {
        bail!("{what} should be an EDN map, but is {value}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keywords_numbers_and_collections_read_as_our_json() {
        let value = parse(
            r#"{:valid? :unknown, :count 12, :ok-fraction 983/1000,
                :stable-latencies {0 0, 0.5 452, 0.95 674, 1 798},
                :lost #{}, :lost-count 0, :worst-stale (),
                :by-f {:read {:ok-count 3}}, [0 1] "vector key"}"#,
        )
        .unwrap();
        assert_eq!(value["valid?"], json!("unknown"));
        assert_eq!(value["ok-fraction"], json!(0.983));
        assert_eq!(value["stable-latencies"]["0.5"], json!(452));
        assert_eq!(value["stable-latencies"]["1"], json!(798));
        assert_eq!(value["lost"], json!([]));
        assert_eq!(value["worst-stale"], json!([]));
        assert_eq!(value["by-f"]["read"]["ok-count"], json!(3));
        assert_eq!(value["[0 1]"], json!("vector key"));
    }

    #[test]
    fn tagged_values_keep_their_content() {
        let value = parse(
            r#"{:op #jepsen.history.Op{:index 7, :type :ok, :f :read, :value [1 2]},
                :model #knossos.model.CASRegister{:value nil},
                :file #object[java.io.File 0x1f2e "/tmp/x"],
                :at #inst "2026-11-23T15:00:00.000-00:00"}"#,
        )
        .unwrap();
        assert_eq!(value["op"]["index"], json!(7));
        assert_eq!(value["op"]["value"], json!([1, 2]));
        assert_eq!(value["model"], json!({"value": null}));
        assert_eq!(value["file"], json!("java.io.File /tmp/x"));
        assert_eq!(value["at"], json!("2026-11-23T15:00:00.000-00:00"));
    }

    #[test]
    fn several_forms_parse_one_by_one_and_errors_name_the_line() {
        let forms =
            parse_all("{:index 0, :f :read}\n; a comment\n{:index 1, :f :write}\n").unwrap();
        assert_eq!(forms.len(), 2);
        assert_eq!(forms[1]["f"], json!("write"));
        let err = parse_all("{:index 0}\n{:index 1\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("UnexpectedEOF"), "{err}");
        let err = parse_all("{:a 1}\n{:b 2}\n{:c ]}\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 3"), "{err}");
    }
}
