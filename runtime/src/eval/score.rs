//! Scoring a generated answer against an item: text matches, numbers, JSON Schema, Python tests.
//! Each returns pass/fail and, when it fails, a short reason for `--out`.

use serde_json::{Map, Value};

use super::sandbox;
use super::task::{Match, Normalize};

/// The outcome of scoring one answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    pub pass: bool,
    /// Why it failed (or what was read, for numbers); empty when there is nothing to say.
    pub detail: String,
}

impl Verdict {
    fn new(pass: bool, detail: impl Into<String>) -> Verdict {
        Verdict {
            pass,
            detail: detail.into(),
        }
    }
}

/// Score `answer` against `expected` with `kind`.
pub fn expected(answer: &str, expected: &str, kind: &Match) -> Verdict {
    match kind {
        Match::Exact(n) => Verdict::new(normalize(answer, *n) == normalize(expected, *n), ""),
        Match::Contains(n) => {
            Verdict::new(normalize(answer, *n).contains(&normalize(expected, *n)), "")
        }
        Match::Regex(re) => Verdict::new(re.is_match(answer), ""),
        Match::Number {
            expected,
            tolerance,
        } => match first_number(answer) {
            Some(x) => Verdict::new((x - expected).abs() <= *tolerance, format!("read {x}")),
            None => Verdict::new(false, "no number in the answer"),
        },
    }
}

fn normalize(s: &str, n: Normalize) -> String {
    let s = if n.whitespace {
        s.split_whitespace().collect::<Vec<_>>().join(" ")
    } else {
        s.to_owned()
    };
    if n.case_sensitive {
        s
    } else {
        s.to_lowercase()
    }
}

/// The first number in `text`: an optional minus, digits with optional thousands commas, an
/// optional fraction and exponent (`-1,234.5`, `3e-2`).
pub fn first_number(text: &str) -> Option<f64> {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_digit() {
            let start = if i > 0 && b[i - 1] == b'-' { i - 1 } else { i };
            let mut end = i;
            // Digits and thousands commas (dropped below), as the regex `-?\d[\d,]*`.
            while end < b.len() && (b[end].is_ascii_digit() || b[end] == b',') {
                end += 1;
            }
            if end + 1 < b.len() && b[end] == b'.' && b[end + 1].is_ascii_digit() {
                end += 1;
                while end < b.len() && b[end].is_ascii_digit() {
                    end += 1;
                }
            }
            if end < b.len() && (b[end] == b'e' || b[end] == b'E') {
                let mut e = end + 1;
                if e < b.len() && (b[e] == b'+' || b[e] == b'-') {
                    e += 1;
                }
                if e < b.len() && b[e].is_ascii_digit() {
                    while e < b.len() && b[e].is_ascii_digit() {
                        e += 1;
                    }
                    end = e;
                }
            }
            return text[start..end].replace(',', "").parse().ok();
        }
        i += 1;
    }
    None
}

/// The JSON an answer holds: the whole answer, else its first fenced code block, else the span
/// from the first `{` or `[` to the last `}` or `]`.
pub fn extract_json(answer: &str) -> Option<Value> {
    let parse = |s: &str| serde_json::from_str::<Value>(s.trim()).ok();
    if let Some(v) = parse(answer) {
        return Some(v);
    }
    if let Some(v) = fenced_block(answer).and_then(parse) {
        return Some(v);
    }
    let start = answer.find(['{', '['])?;
    let end = answer.rfind(['}', ']'])?;
    (end > start).then(|| parse(&answer[start..=end])).flatten()
}

/// Score a JSON answer: valid against the schema, and every expected field equal.
pub fn json_schema(
    answer: &str,
    schema: &jsonschema::Validator,
    expected: Option<&Map<String, Value>>,
) -> Verdict {
    let Some(value) = extract_json(answer) else {
        return Verdict::new(false, "no JSON in the answer");
    };
    if let Some(err) = schema.iter_errors(&value).next() {
        return Verdict::new(false, format!("schema: {err} at `{}`", err.instance_path()));
    }
    for (key, want) in expected.into_iter().flatten() {
        match value.get(key) {
            Some(got) if json_equal(got, want) => {}
            Some(got) => return Verdict::new(false, format!("`{key}` is {got}, expected {want}")),
            None => return Verdict::new(false, format!("`{key}` is missing")),
        }
    }
    Verdict::new(true, "")
}

/// JSON equality with numbers compared by value, as Python's `==` compares `json.loads` output:
/// `1` equals `1.0` (serde_json keeps them apart as integer and float).
fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x == y,
            _ => x.as_f64() == y.as_f64(),
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| json_equal(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => a == b,
    }
}

/// The content of the first fenced code block (```lang ... ```), if the text has one.
pub fn fenced_block(text: &str) -> Option<&str> {
    let open = text.find("```")?;
    let after = &text[open + 3..];
    // Skip the info string (`python`, `json`...) up to the end of the line.
    let body_start = after.find('\n').map_or(after.len(), |i| i + 1);
    let body = &after[body_start..];
    Some(body.find("```").map_or(body, |close| &body[..close]))
}

/// Run `prefix + code + test` under Python; pass when it exits 0 within the time limit.
pub fn python_test(answer: &str, prefix: &str, test: &str, timeout_s: f64) -> Verdict {
    let code = fenced_block(answer).unwrap_or(answer);
    let program = format!("{prefix}\n{code}\n\n{test}\n");
    match sandbox::run_python(&program, timeout_s) {
        Ok(out) if out.success => Verdict::new(true, ""),
        Ok(out) => Verdict::new(false, out.reason),
        Err(e) => Verdict::new(false, format!("could not run python: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_number_reads_signs_commas_fractions_and_exponents() {
        assert_eq!(first_number("The answer is 42."), Some(42.0));
        assert_eq!(first_number("x = -1,234.5 apples"), Some(-1234.5));
        assert_eq!(first_number("3e-2 and 7"), Some(0.03));
        assert_eq!(first_number("1, 2, 3"), Some(1.0));
        assert_eq!(first_number("version 2.x"), Some(2.0));
        assert_eq!(first_number("no digits"), None);
    }

    #[test]
    fn text_matches_normalise_whitespace_and_case() {
        let n = Normalize {
            case_sensitive: false,
            whitespace: true,
        };
        assert!(expected("  Paris \n", "paris", &Match::Exact(n)).pass);
        assert!(!expected("Paris, France", "paris", &Match::Exact(n)).pass);
        assert!(expected("It is  Paris, France", "is paris", &Match::Contains(n)).pass);
        let strict = Normalize {
            case_sensitive: true,
            whitespace: false,
        };
        assert!(!expected("paris", "Paris", &Match::Exact(strict)).pass);
    }

    #[test]
    fn json_is_found_in_fences_and_prose() {
        assert_eq!(
            extract_json(" {\"a\": 1} "),
            Some(serde_json::json!({"a": 1}))
        );
        assert_eq!(
            extract_json("Here:\n```json\n[1, 2]\n```\nDone"),
            Some(serde_json::json!([1, 2]))
        );
        assert_eq!(
            extract_json("The object {\"k\": \"v\"} is it."),
            Some(serde_json::json!({"k": "v"}))
        );
        assert_eq!(extract_json("nothing here"), None);
    }

    #[test]
    fn json_schema_checks_types_and_expected_fields() {
        let schema = serde_json::json!({"type": "object", "required": ["age"],
            "properties": {"age": {"type": "integer", "minimum": 0}}});
        let v = jsonschema::validator_for(&schema).unwrap();
        assert!(json_schema("{\"age\": 3}", &v, None).pass);
        assert!(!json_schema("{\"age\": -3}", &v, None).pass);
        assert!(!json_schema("{\"name\": \"x\"}", &v, None).pass);
        let want = serde_json::json!({"age": 4});
        let want = want.as_object();
        assert!(!json_schema("{\"age\": 3}", &v, want).pass);
        assert!(json_schema("{\"age\": 4}", &v, want).pass);
        let want = serde_json::json!({"age": 4.0});
        assert!(json_schema("{\"age\": 4}", &v, want.as_object()).pass);
        assert!(json_equal(
            &serde_json::json!([1, {"a": 2.0}]),
            &serde_json::json!([1.0, {"a": 2}])
        ));
        assert!(!json_equal(
            &serde_json::json!({"a": 1}),
            &serde_json::json!({"a": 1, "b": 2})
        ));
    }
}
