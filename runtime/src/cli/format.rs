//! Text the Docker-style commands print: Docker's human durations and STATUS wording,
//! a small `--format` template language (`{{.Field}}`, `{{.A.B}}`, `{{json .}}`,
//! `{{json .Field}}`, a leading `table` for a header row, `\t` for a tab) over JSON
//! values, and column alignment as Docker's tabwriter does it (3 spaces of padding).

use std::time::{Duration, SystemTime};

use serde_json::Value;

use rwasm::engine::record::{ContainerRecord, Live};

/// Docker's `units.HumanDuration`: "Less than a second", "5 seconds", "About a minute",
/// "3 minutes", "About an hour", "7 hours", "3 days", "2 weeks", "4 months", "2 years".
pub fn human_duration(d: Duration) -> String {
    let secs = d.as_secs();
    let mins = secs / 60;
    // Go's int(d.Hours() + 0.5), in integers: hours rounded half up.
    let hours = (secs + 1800) / 3600;
    match () {
        _ if secs < 1 => "Less than a second".into(),
        _ if secs == 1 => "1 second".into(),
        _ if secs < 60 => format!("{secs} seconds"),
        _ if mins == 1 => "About a minute".into(),
        _ if mins < 60 => format!("{mins} minutes"),
        _ if hours == 1 => "About an hour".into(),
        _ if hours < 48 => format!("{hours} hours"),
        _ if hours < 24 * 7 * 2 => format!("{} days", hours / 24),
        _ if hours < 24 * 30 * 2 => format!("{} weeks", hours / 24 / 7),
        _ if hours < 24 * 365 * 2 => format!("{} months", hours / 24 / 30),
        _ => format!("{} years", secs / 3600 / 24 / 365),
    }
}

/// Time since an RFC 3339 stamp (zero if it does not parse or lies ahead).
pub fn since(stamp: Option<&str>, now: SystemTime) -> Duration {
    stamp
        .and_then(|s| humantime::parse_rfc3339_weak(s.trim_end_matches('Z')).ok())
        .and_then(|t| now.duration_since(t).ok())
        .unwrap_or_default()
}

/// Docker's STATUS column: "Up 3 minutes", "Up 3 minutes (Paused)", "Restarting (1) 2
/// seconds ago", "Exited (137) 2 seconds ago", "Created"; an exit nobody saw (the
/// monitor was killed) is "Exited (unknown)".
pub fn status(r: &ContainerRecord, now: SystemTime) -> String {
    let ago = |s: &Option<String>| human_duration(since(s.as_deref(), now));
    match r.live() {
        Live::Created => "Created".into(),
        Live::Running => format!("Up {}", ago(&r.started_at)),
        Live::Paused => format!("Up {} (Paused)", ago(&r.started_at)),
        Live::Restarting => format!(
            "Restarting ({}) {} ago",
            r.exit_code.unwrap_or(0),
            ago(&r.finished_at)
        ),
        Live::Exited(Some(c)) => format!("Exited ({c}) {} ago", ago(&r.finished_at)),
        Live::Exited(None) => "Exited (unknown)".into(),
    }
}

fn lookup<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .filter(|p| !p.is_empty())
        .try_fold(v, |v, k| v.get(k))
}

fn text(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// An error in a `--format` template: names the template and the problem.
#[derive(Debug, thiserror::Error)]
#[error("template parsing error in {template:?}: {reason}")]
pub struct TemplateError {
    /// The template as given.
    pub template: String,
    /// What is wrong.
    pub reason: String,
}

/// Render `template` for `v`: `{{.A.B}}` is the field's text (strings bare, other values
/// as JSON, missing ones empty), `{{json .X}}` its JSON, `{{.}}`/`{{json .}}` the whole.
pub fn render(template: &str, v: &Value) -> Result<String, TemplateError> {
    let err = |reason: &str| TemplateError {
        template: template.into(),
        reason: reason.into(),
    };
    let t = template.replace("\\t", "\t").replace("\\n", "\n");
    let mut out = String::new();
    let mut rest = t.as_str();
    while let Some(i) = rest.find("{{") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let j = after.find("}}").ok_or_else(|| err("unclosed action"))?;
        let action = after[..j].trim();
        let (json, field) = match action.strip_prefix("json ") {
            Some(f) => (true, f.trim()),
            None => (false, action),
        };
        let path = field.strip_prefix('.').ok_or_else(|| {
            err(&format!(
                "unsupported action {action:?}: use {{{{.Field}}}}"
            ))
        })?;
        let val = lookup(v, path);
        if json {
            out.push_str(&val.unwrap_or(&Value::Null).to_string());
        } else {
            out.push_str(&text(val));
        }
        rest = &after[j + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

pub use rwasm::engine::units::{bytes_size, human_size};

/// The header row of a `table ...` template: each `{{.Field}}` becomes Docker's column
/// title for it (`ID` → `CONTAINER ID`, `Names` → `NAMES`, else the name in capitals).
pub fn header(template: &str) -> String {
    let mut out = String::new();
    let t = template.replace("\\t", "\t");
    let mut rest = t.as_str();
    while let Some(i) = rest.find("{{") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let Some(j) = after.find("}}") else { break };
        let field = after[..j].trim().trim_start_matches("json ").trim();
        let name = field.trim_start_matches('.');
        out.push_str(&match name {
            "ID" => "CONTAINER ID".to_string(),
            "RunningFor" => "CREATED".to_string(),
            "CreatedAt" => "CREATED AT".to_string(),
            // `stats` columns.
            "CPUPerc" => "CPU %".to_string(),
            "MemUsage" => "MEM USAGE / LIMIT".to_string(),
            "MemPerc" => "MEM %".to_string(),
            "NetIO" => "NET I/O".to_string(),
            "BlockIO" => "BLOCK I/O".to_string(),
            other => other.to_ascii_uppercase(),
        });
        rest = &after[j + 2..];
    }
    out.push_str(rest);
    out
}

/// Align tab-separated rows into columns, as Docker's tabwriter (min width, padding 3).
pub fn columns(rows: &[String]) -> Vec<String> {
    let cells: Vec<Vec<&str>> = rows.iter().map(|r| r.split('\t').collect()).collect();
    let n = cells.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..n)
        .map(|c| {
            cells
                .iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    cells
        .iter()
        .map(|r| {
            let mut line = String::new();
            for (c, cell) in r.iter().enumerate() {
                if c + 1 == r.len() {
                    line.push_str(cell);
                } else {
                    line.push_str(cell);
                    let pad = widths[c] - cell.chars().count() + 3;
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            line
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_docker_s() {
        let d = Duration::from_secs;
        assert_eq!(
            human_duration(Duration::from_millis(300)),
            "Less than a second"
        );
        assert_eq!(human_duration(d(1)), "1 second");
        assert_eq!(human_duration(d(2)), "2 seconds");
        assert_eq!(human_duration(d(61)), "About a minute");
        assert_eq!(human_duration(d(180)), "3 minutes");
        assert_eq!(human_duration(d(3600)), "About an hour");
        assert_eq!(human_duration(d(3 * 3600)), "3 hours");
        assert_eq!(human_duration(d(3 * 86400)), "3 days");
        assert_eq!(human_duration(d(21 * 86400)), "3 weeks");
        assert_eq!(human_duration(d(90 * 86400)), "3 months");
        assert_eq!(human_duration(d(800 * 86400)), "2 years");
    }

    #[test]
    fn templates_render_fields_and_json() {
        let v = serde_json::json!({"Names": "web", "State": {"ExitCode": 3}, "Labels": {"a": "b"}});
        assert_eq!(
            render("{{.Names}}\\t{{.State.ExitCode}}", &v).unwrap(),
            "web\t3"
        );
        assert_eq!(render("{{json .Labels}}", &v).unwrap(), "{\"a\":\"b\"}");
        assert_eq!(render("x{{.Missing}}y", &v).unwrap(), "xy");
        assert!(render("{{.Names", &v).is_err());
        assert!(render("{{range .}}", &v).is_err());
        assert_eq!(header("{{.ID}}\\t{{.Names}}"), "CONTAINER ID\tNAMES");
    }

    #[test]
    fn columns_pad_by_three() {
        let rows = vec!["A\tBB\tC".to_string(), "AAAA\tB\tC".to_string()];
        assert_eq!(columns(&rows), vec!["A      BB   C", "AAAA   B    C"]);
    }
}
