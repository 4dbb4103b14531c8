//! `--format`: the part of Go's text/template that people pass to
//! `docker inspect` and `docker ps`: literal text with `{{.Path.To.Field}}`,
//! `{{json .Path}}` and `{{.}}` actions, `\t` and `\n` escapes, and the
//! `table` prefix of `ps --format`. Values come from a JSON tree: strings
//! print bare, numbers and booleans as text, objects and arrays as JSON
//! (Go would print `map[...]`; JSON is what scripts parse).

use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Field { path: Vec<String>, json: bool },
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pieces: Vec<Piece>,
    /// `table …`: print a header line of the field names first.
    pub table: bool,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FormatError {
    #[error("template: unclosed action: {0:?}")]
    Unclosed(String),
    #[error(
        "template: unsupported action {{{{{0}}}}}: use {{{{.Field.Sub}}}} or {{{{json .Field}}}}"
    )]
    Unsupported(String),
    #[error("template: {path}: no such field (known here: {known})")]
    NoField { path: String, known: String },
}

impl Template {
    pub fn parse(text: &str) -> Result<Template, FormatError> {
        let (table, text) = match text.strip_prefix("table") {
            Some(rest) if rest.is_empty() || rest.starts_with(char::is_whitespace) => {
                (true, rest.trim_start())
            }
            _ => (false, text),
        };
        let text = text.replace("\\t", "\t").replace("\\n", "\n");
        let mut pieces = Vec::new();
        let mut rest = text.as_str();
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                pieces.push(Piece::Text(rest[..open].to_string()));
            }
            let after = &rest[open + 2..];
            let close = after
                .find("}}")
                .ok_or_else(|| FormatError::Unclosed(rest[open..].to_string()))?;
            pieces.push(Self::action(after[..close].trim())?);
            rest = &after[close + 2..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_string()));
        }
        Ok(Template { pieces, table })
    }

    fn action(a: &str) -> Result<Piece, FormatError> {
        let (json, expr) = match a.strip_prefix("json ") {
            Some(e) => (true, e.trim()),
            None => (false, a),
        };
        if expr == "." {
            return Ok(Piece::Field {
                path: Vec::new(),
                json,
            });
        }
        let Some(path) = expr.strip_prefix('.') else {
            return Err(FormatError::Unsupported(a.to_string()));
        };
        let parts: Vec<String> = path.split('.').map(str::to_string).collect();
        if parts
            .iter()
            .any(|p| p.is_empty() || !p.chars().all(|c| c.is_alphanumeric() || c == '_'))
        {
            return Err(FormatError::Unsupported(a.to_string()));
        }
        Ok(Piece::Field { path: parts, json })
    }

    /// The header line of a `table` template: each field's last name.
    pub fn header(&self) -> String {
        self.header_named(&[])
    }

    /// The header line, with the column titles `names` gives for some
    /// fields (Docker's `CPU %` for `CPUPerc`), the others upper-cased.
    pub fn header_named(&self, names: &[(&str, &str)]) -> String {
        self.pieces
            .iter()
            .map(|p| match p {
                Piece::Text(t) => t.clone(),
                Piece::Field { path, .. } => {
                    let last = path.last().map(String::as_str).unwrap_or_default();
                    match names.iter().find(|(f, _)| *f == last) {
                        Some((_, title)) => title.to_string(),
                        None => last.to_uppercase(),
                    }
                }
            })
            .collect()
    }

    pub fn render(&self, value: &Value) -> Result<String, FormatError> {
        let mut out = String::new();
        for p in &self.pieces {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Field { path, json } => {
                    let mut v = value;
                    for (i, name) in path.iter().enumerate() {
                        v = v.get(name).ok_or_else(|| FormatError::NoField {
                            path: format!(".{}", path[..=i].join(".")),
                            known: v
                                .as_object()
                                .map(|o| o.keys().cloned().collect::<Vec<_>>().join(", "))
                                .unwrap_or_else(|| "nothing: not an object".into()),
                        })?;
                    }
                    match (json, v) {
                        (false, Value::String(s)) => out.push_str(s),
                        (false, Value::Null) => out.push_str("<no value>"),
                        _ => out.push_str(&v.to_string()),
                    }
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_json_and_literal_text() {
        let v = json!({"State": {"Status": "running", "Pid": 42, "Running": true},
                       "Config": {"Cmd": ["sh", "-c", "x"]}, "Name": "/web"});
        let t =
            Template::parse("{{.Name}} {{.State.Status}} pid={{.State.Pid}} {{.State.Running}}")
                .unwrap();
        assert_eq!(t.render(&v).unwrap(), "/web running pid=42 true");
        let t = Template::parse("{{json .Config.Cmd}}\\t{{ .State.Status }}").unwrap();
        assert_eq!(t.render(&v).unwrap(), "[\"sh\",\"-c\",\"x\"]\trunning");
        assert_eq!(
            Template::parse("{{json .}}")
                .unwrap()
                .render(&json!({"a":1}))
                .unwrap(),
            "{\"a\":1}"
        );
    }

    #[test]
    fn mistakes_are_named() {
        let v = json!({"State": {"Status": "running"}});
        let e = Template::parse("{{.State.Stat}}")
            .unwrap()
            .render(&v)
            .unwrap_err();
        assert_eq!(
            e,
            FormatError::NoField {
                path: ".State.Stat".into(),
                known: "Status".into()
            }
        );
        assert!(matches!(
            Template::parse("{{.A"),
            Err(FormatError::Unclosed(_))
        ));
        assert!(matches!(
            Template::parse("{{range .A}}"),
            Err(FormatError::Unsupported(_))
        ));
        assert!(matches!(
            Template::parse("{{..A}}"),
            Err(FormatError::Unsupported(_))
        ));
    }

    #[test]
    fn table_templates_have_a_header() {
        let t = Template::parse("table {{.ID}}\\t{{.Names}}").unwrap();
        assert!(t.table);
        assert_eq!(t.header(), "ID\tNAMES");
        assert!(!Template::parse("tablet {{.ID}}").unwrap().table);
    }
}
