//! The task file: JSON Lines, one item per line (format: `docs/eval.md`). Parsing checks every
//! field up front, so a bad file fails before any model runs, naming the line and the field.

use std::collections::HashSet;
use std::path::Path;

use serde_json::{Map, Value};

use crate::chat::ChatMessage;
use crate::{Error, Result};

/// How a generated answer is compared with `expected`.
#[derive(Clone, Debug)]
pub enum Match {
    /// Equal after normalisation.
    Exact(Normalize),
    /// Contains `expected` after normalisation.
    Contains(Normalize),
    /// The pattern matches somewhere in the answer.
    Regex(regex::Regex),
    /// The first number in the answer is within `tolerance` of `expected`.
    Number { expected: f64, tolerance: f64 },
}

/// Text normalisation for `exact` and `contains`.
#[derive(Clone, Copy, Debug)]
pub struct Normalize {
    pub case_sensitive: bool,
    pub whitespace: bool,
}

/// How an item is scored.
#[derive(Clone, Debug)]
pub enum Scoring {
    /// Generate, then compare with `expected`.
    Expected { expected: String, kind: Match },
    /// No generation: the choice with the highest log-likelihood wins.
    Choices { choices: Vec<String>, answer: usize },
    /// Generate JSON valid against the schema, with these fields equal. Generation follows
    /// the schema (`source`, its JSON text) unless the eval runs unconstrained.
    JsonSchema {
        source: String,
        schema: Box<jsonschema::Validator>,
        expected: Option<Map<String, Value>>,
    },
    /// Generate code; `prefix + code + test` must exit 0 under Python.
    Test {
        prefix: String,
        test: String,
        timeout_s: f64,
    },
}

/// What the model reads.
#[derive(Clone, Debug)]
pub enum Input {
    Prompt(String),
    Messages(Vec<ChatMessage>),
}

/// One item of a task file.
#[derive(Clone, Debug)]
pub struct Item {
    pub id: String,
    /// 1-based line in the task file.
    pub line: usize,
    pub input: Input,
    pub system: Option<String>,
    /// Render with the model's chat template: `Some` when the item says, else the run's default
    /// (always true for `messages` and `system`).
    pub chat: Option<bool>,
    pub max_tokens: Option<usize>,
    pub stop: Vec<String>,
    pub scoring: Scoring,
    pub meta: Option<Value>,
}

impl Item {
    /// Whether this item generates text (everything but multiple choice).
    pub fn generates(&self) -> bool {
        !matches!(self.scoring, Scoring::Choices { .. })
    }
}

const FIELDS: &[&str] = &[
    "id",
    "prompt",
    "messages",
    "system",
    "chat",
    "max_tokens",
    "stop",
    "meta",
    "expected",
    "match",
    "case_sensitive",
    "normalize_whitespace",
    "tolerance",
    "choices",
    "answer",
    "json_schema",
    "test",
    "test_prefix",
    "timeout_s",
];

/// Read and check a whole task file.
pub fn load(path: &Path) -> Result<Vec<Item>> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text).map_err(|e| match e {
        Error::Task {
            line,
            field,
            reason,
            ..
        } => Error::Task {
            path: path.display().to_string(),
            line,
            field,
            reason,
        },
        other => other,
    })
}

/// Parse task-file text (errors carry an empty path; [`load`] fills it in).
pub fn parse(text: &str) -> Result<Vec<Item>> {
    let mut items = Vec::new();
    let mut ids = HashSet::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let value: Value = serde_json::from_str(line)
            .map_err(|e| task_error(n, "", format!("not valid JSON: {e}")))?;
        let Value::Object(obj) = value else {
            return Err(task_error(n, "", "each line must be a JSON object"));
        };
        let item = parse_item(n, obj)?;
        if !ids.insert(item.id.clone()) {
            return Err(task_error(n, "id", format!("`{}` is used twice", item.id)));
        }
        items.push(item);
    }
    if items.is_empty() {
        return Err(task_error(0, "", "the task file has no items"));
    }
    Ok(items)
}

fn task_error(line: usize, field: &str, reason: impl Into<String>) -> Error {
    Error::Task {
        path: String::new(),
        line,
        field: field.into(),
        reason: reason.into(),
    }
}

/// Typed access to one line's fields, with errors that name the line and the field.
struct Fields {
    line: usize,
    obj: Map<String, Value>,
}

impl Fields {
    fn err(&self, field: &str, reason: impl Into<String>) -> Error {
        task_error(self.line, field, reason)
    }

    fn has(&self, field: &str) -> bool {
        self.obj.contains_key(field)
    }

    fn string(&self, field: &str) -> Result<Option<String>> {
        match self.obj.get(field) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(self.err(field, "must be a string")),
        }
    }

    fn boolean(&self, field: &str) -> Result<Option<bool>> {
        match self.obj.get(field) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(self.err(field, "must be true or false")),
        }
    }

    fn number(&self, field: &str) -> Result<Option<f64>> {
        match self.obj.get(field) {
            None => Ok(None),
            Some(v) => v
                .as_f64()
                .filter(|x| x.is_finite())
                .map(Some)
                .ok_or_else(|| self.err(field, "must be a number")),
        }
    }

    fn integer(&self, field: &str, range: std::ops::RangeInclusive<u64>) -> Result<Option<usize>> {
        match self.obj.get(field) {
            None => Ok(None),
            Some(v) => match v.as_u64() {
                Some(x) if range.contains(&x) => Ok(Some(x as usize)),
                _ => Err(self.err(
                    field,
                    format!(
                        "must be an integer from {} to {}",
                        range.start(),
                        range.end()
                    ),
                )),
            },
        }
    }

    fn strings(&self, field: &str) -> Result<Option<Vec<String>>> {
        match self.obj.get(field) {
            None => Ok(None),
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .map(Some)
                .ok_or_else(|| self.err(field, "must be an array of strings")),
            Some(_) => Err(self.err(field, "must be an array of strings")),
        }
    }
}

fn parse_item(line: usize, obj: Map<String, Value>) -> Result<Item> {
    let f = Fields { line, obj };
    if let Some(unknown) = f.obj.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(f.err(
            unknown,
            format!("unknown field (known: {})", FIELDS.join(", ")),
        ));
    }
    let id = match f.obj.get("id") {
        None => format!("line {line}"),
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(Value::Number(n)) if n.is_u64() || n.is_i64() => n.to_string(),
        Some(_) => return Err(f.err("id", "must be a non-empty string or an integer")),
    };
    let input = match (f.string("prompt")?, f.obj.get("messages")) {
        (Some(_), Some(_)) => {
            return Err(f.err("messages", "give `prompt` or `messages`, not both"))
        }
        (None, None) => return Err(f.err("prompt", "missing: give `prompt` or `messages`")),
        (Some(p), None) => Input::Prompt(p),
        (None, Some(m)) => Input::Messages(parse_messages(&f, m)?),
    };
    let system = f.string("system")?;
    let chat = f.boolean("chat")?;
    if chat == Some(false) && (system.is_some() || matches!(input, Input::Messages(_))) {
        return Err(f.err(
            "chat",
            "`messages` and `system` need the chat template: drop `chat: false`",
        ));
    }
    Ok(Item {
        id,
        line,
        system,
        chat,
        max_tokens: f.integer("max_tokens", 1..=65536)?,
        stop: f.strings("stop")?.unwrap_or_default(),
        scoring: parse_scoring(&f)?,
        meta: f.obj.get("meta").cloned(),
        input,
    })
}

fn parse_messages(f: &Fields, m: &Value) -> Result<Vec<ChatMessage>> {
    let Value::Array(list) = m else {
        return Err(f.err("messages", "must be an array of {role, content} objects"));
    };
    if list.is_empty() {
        return Err(f.err("messages", "must not be empty"));
    }
    list.iter()
        .enumerate()
        .map(|(i, msg)| {
            let get = |k: &str| msg.get(k).and_then(Value::as_str);
            match (get("role"), get("content")) {
                (Some(role), Some(content)) if !role.is_empty() => {
                    Ok(ChatMessage::new(role, content))
                }
                _ => Err(f.err(
                    "messages",
                    format!("entry {i} needs a string `role` and a string `content`"),
                )),
            }
        })
        .collect()
}

/// Exactly one scoring kind, with only the options that kind takes.
fn parse_scoring(f: &Fields) -> Result<Scoring> {
    let kinds: Vec<&str> = [
        ("expected", f.has("expected") && !f.has("json_schema")),
        ("choices", f.has("choices")),
        ("json_schema", f.has("json_schema")),
        ("test", f.has("test")),
    ]
    .iter()
    .filter(|(_, present)| *present)
    .map(|(k, _)| *k)
    .collect();
    let kind = match kinds.as_slice() {
        [one] => *one,
        [] => {
            return Err(f.err(
                "expected",
                "no scoring: give `expected`, `choices` + `answer`, `json_schema` or `test`",
            ))
        }
        many => {
            return Err(f.err(
                many[1],
                format!("give one way to score an item, not {}", many.join(" and ")),
            ))
        }
    };
    let only = |allowed: &[&str]| -> Result<()> {
        const OPTIONS: &[&str] = &[
            "match",
            "case_sensitive",
            "normalize_whitespace",
            "tolerance",
            "answer",
            "test_prefix",
            "timeout_s",
        ];
        match OPTIONS.iter().find(|o| f.has(o) && !allowed.contains(o)) {
            Some(o) => Err(f.err(o, format!("does not apply to `{kind}` scoring"))),
            None => Ok(()),
        }
    };
    match kind {
        "expected" => {
            let expected = match &f.obj["expected"] {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => return Err(f.err("expected", "must be a string or a number")),
            };
            let m = f.string("match")?.unwrap_or_else(|| "exact".into());
            let norm = Normalize {
                case_sensitive: f.boolean("case_sensitive")?.unwrap_or(false),
                whitespace: f.boolean("normalize_whitespace")?.unwrap_or(true),
            };
            let kind = match m.as_str() {
                "exact" | "contains" => {
                    only(&["match", "case_sensitive", "normalize_whitespace"])?;
                    if m == "exact" {
                        Match::Exact(norm)
                    } else {
                        Match::Contains(norm)
                    }
                }
                "regex" => {
                    only(&["match", "case_sensitive"])?;
                    let pattern = if norm.case_sensitive {
                        expected.clone()
                    } else {
                        format!("(?i){expected}")
                    };
                    let re = regex::Regex::new(&pattern)
                        .map_err(|e| f.err("expected", format!("invalid regex: {e}")))?;
                    Match::Regex(re)
                }
                "number" => {
                    only(&["match", "tolerance"])?;
                    let value = expected
                        .trim()
                        .replace(',', "")
                        .parse::<f64>()
                        .ok()
                        .filter(|x| x.is_finite())
                        .ok_or_else(|| {
                            f.err("expected", "must be a number for `number` matching")
                        })?;
                    let tolerance = f.number("tolerance")?.unwrap_or(1e-6);
                    if tolerance < 0.0 {
                        return Err(f.err("tolerance", "must not be negative"));
                    }
                    Match::Number {
                        expected: value,
                        tolerance,
                    }
                }
                other => {
                    return Err(f.err(
                        "match",
                        format!("`{other}`: use exact, contains, regex or number"),
                    ))
                }
            };
            Ok(Scoring::Expected { expected, kind })
        }
        "choices" => {
            only(&["answer"])?;
            let choices = f.strings("choices")?.unwrap_or_default();
            if choices.len() < 2 {
                return Err(f.err("choices", "needs at least two choices"));
            }
            if choices.iter().any(String::is_empty) {
                return Err(f.err("choices", "a choice is empty"));
            }
            let answer = f
                .integer("answer", 0..=choices.len() as u64 - 1)?
                .ok_or_else(|| f.err("answer", "missing: the 0-based index of the right choice"))?;
            Ok(Scoring::Choices { choices, answer })
        }
        "json_schema" => {
            only(&[])?;
            let schema = &f.obj["json_schema"];
            if !schema.is_object() && !schema.is_boolean() {
                return Err(f.err("json_schema", "must be a JSON Schema object"));
            }
            let validator = jsonschema::validator_for(schema)
                .map_err(|e| f.err("json_schema", format!("invalid schema: {e}")))?;
            let expected = match f.obj.get("expected") {
                None => None,
                Some(Value::Object(m)) => Some(m.clone()),
                Some(_) => {
                    return Err(f.err(
                        "expected",
                        "with `json_schema`, must be an object of expected field values",
                    ))
                }
            };
            Ok(Scoring::JsonSchema {
                source: schema.to_string(),
                schema: Box::new(validator),
                expected,
            })
        }
        _ => {
            only(&["test_prefix", "timeout_s"])?;
            let test = f.string("test")?.unwrap_or_default();
            let timeout_s = f.number("timeout_s")?.unwrap_or(10.0);
            if !(0.0..=3600.0).contains(&timeout_s) || timeout_s == 0.0 {
                return Err(f.err("timeout_s", "must be more than 0 and at most 3600 seconds"));
            }
            Ok(Scoring::Test {
                prefix: f.string("test_prefix")?.unwrap_or_default(),
                test,
                timeout_s,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(text: &str) -> (usize, String) {
        match parse(text) {
            Err(Error::Task { line, field, .. }) => (line, field),
            other => panic!("expected a task error, got {other:?}"),
        }
    }

    #[test]
    fn every_scoring_kind_parses() {
        let text = r#"
{"id": "a", "prompt": "x", "expected": "Paris", "match": "contains"}
{"prompt": "x", "expected": 42, "match": "number", "tolerance": 0.5}
{"prompt": "x", "expected": "^ab+", "match": "regex"}
{"prompt": "x", "choices": [" a", " b"], "answer": 1}
{"prompt": "x", "json_schema": {"type": "object"}, "expected": {"k": 1}}
{"messages": [{"role": "user", "content": "hi"}], "test": "assert True", "timeout_s": 2}
"#;
        let items = parse(text).unwrap();
        assert_eq!(items.len(), 6);
        assert_eq!(items[0].id, "a");
        assert_eq!(items[1].id, "line 3");
        assert!(matches!(
            items[1].scoring,
            Scoring::Expected { kind: Match::Number { expected, tolerance }, .. } if expected == 42.0 && tolerance == 0.5
        ));
        assert!(!items[3].generates());
        assert!(matches!(items[5].input, Input::Messages(ref m) if m.len() == 1));
    }

    #[test]
    fn errors_name_the_line_and_the_field() {
        let ok = r#"{"prompt": "x", "expected": "y"}"#;
        assert_eq!(field_of(&format!("{ok}\nnot json")), (2, "".into()));
        assert_eq!(
            field_of(r#"{"prompt": "x", "expectd": "y"}"#),
            (1, "expectd".into())
        );
        assert_eq!(
            field_of(r#"{"prompt": "x", "messages": [], "expected": "y"}"#),
            (1, "messages".into())
        );
        assert_eq!(field_of(r#"{"expected": "y"}"#), (1, "prompt".into()));
        assert_eq!(
            field_of(r#"{"prompt": "x", "choices": ["a", "b"], "answer": 2}"#),
            (1, "answer".into())
        );
        assert_eq!(
            field_of(r#"{"prompt": "x", "choices": ["a"], "answer": 0}"#),
            (1, "choices".into())
        );
        assert_eq!(
            field_of(r#"{"prompt": "x", "expected": "(", "match": "regex"}"#),
            (1, "expected".into())
        );
        assert_eq!(
            field_of(r#"{"prompt": "x", "json_schema": {"type": 12}}"#),
            (1, "json_schema".into())
        );
        assert_eq!(
            field_of(r#"{"prompt": "x", "expected": "y", "max_tokens": 0}"#),
            (1, "max_tokens".into())
        );
        assert_eq!(
            field_of(r#"{"prompt": "x", "match": "exact"}"#),
            (1, "expected".into())
        );
        assert_eq!(
            field_of(r#"{"prompt": "x", "expected": "y", "tolerance": 1}"#),
            (1, "tolerance".into())
        );
        assert_eq!(
            field_of(r#"{"messages": [{"role": "user"}], "expected": "y"}"#),
            (1, "messages".into())
        );
        assert_eq!(field_of("\n\n"), (0, "".into()));
    }

    #[test]
    fn duplicate_ids_are_rejected() {
        let text = "{\"id\": 1, \"prompt\": \"x\", \"expected\": \"y\"}\n{\"id\": \"1\", \"prompt\": \"x\", \"expected\": \"y\"}";
        assert_eq!(field_of(text), (2, "id".into()));
    }
}
