//! audit: appends one JSON line per hook call to `<log-dir>/audit.jsonl`.
//!
//! Config: `log-dir` (text, default `/log`), an absolute path inside the plugin's sandbox
//! that the manifest grants read-write (`[plugin.grants] dirs`). Each line has `time`
//! (RFC 3339, UTC, milliseconds), `point`, `id`, `status`, `pid` (number or null), `bundle`
//! and `annotations` (object).

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use rwasm_plugin_sdk::prelude::*;
use rwasm_plugin_sdk::serde_json::{Map, json};

struct Audit;

impl Hook for Audit {
    fn configure(config: &Config) -> Result<(), Error> {
        log_file(config)?;
        Ok(())
    }

    fn invoke(call: &HookCall) -> Result<Verdict, Error> {
        let path = log_file(&Config::current())?;
        let line = format!("{}\n", record(call, SystemTime::now())?);
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut file| file.write_all(line.as_bytes()))
            .map_err(|e| format!("audit: cannot append to {}: {e}", path.display()))?;
        Ok(Verdict::allow())
    }
}

rwasm_plugin_sdk::export_hook!(Audit);

fn log_file(config: &Config) -> Result<PathBuf, ConfigError> {
    config.deny_unknown(&["log-dir"])?;
    let dir = config.get_str("log-dir")?.unwrap_or("/log");
    if !dir.starts_with('/') {
        return Err(ConfigError::invalid("log-dir", "must be an absolute path"));
    }
    Ok(PathBuf::from(dir).join("audit.jsonl"))
}

/// The audit line for `call`, made at `now`.
fn record(call: &HookCall, now: SystemTime) -> Result<Value, String> {
    let since_epoch = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_err(|_| "audit: the clock is before 1970".to_owned())?;
    let state = &call.state;
    let annotations: Map<String, Value> = state
        .annotations
        .iter()
        .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
        .collect();
    Ok(json!({
        "time": rfc3339(since_epoch),
        "point": call.point.as_str(),
        "id": state.id,
        "status": state.status.as_str(),
        "pid": state.pid,
        "bundle": state.bundle,
        "annotations": annotations,
    }))
}

/// `since_epoch` as an RFC 3339 UTC timestamp with milliseconds: `2025-01-31T23:59:59.123Z`.
fn rfc3339(since_epoch: Duration) -> String {
    let secs = since_epoch.as_secs();
    let (mut days, clock) = (secs / 86_400, secs % 86_400);
    let leap = |y: u64| y.is_multiple_of(4) && (!y.is_multiple_of(100) || y.is_multiple_of(400));
    let mut year = 1970;
    while days >= if leap(year) { 366 } else { 365 } {
        days -= if leap(year) { 366 } else { 365 };
        year += 1;
    }
    let february = if leap(year) { 29 } else { 28 };
    let mut month = 1;
    for len in [31, february, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31] {
        if days < len {
            break;
        }
        days -= len;
        month += 1;
    }
    format!(
        "{year:04}-{month:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        days + 1,
        clock / 3600,
        clock / 60 % 60,
        clock % 60,
        since_epoch.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339() {
        assert_eq!(rfc3339(Duration::ZERO), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            rfc3339(Duration::from_millis(951_782_400_042)),
            "2000-02-29T00:00:00.042Z"
        );
        assert_eq!(
            rfc3339(Duration::from_secs(1_735_689_599)),
            "2024-12-31T23:59:59.000Z"
        );
        assert_eq!(
            rfc3339(Duration::from_secs(4_107_542_400)),
            "2100-03-01T00:00:00.000Z"
        );
    }

    #[test]
    fn records_the_state() {
        let call = HookCall {
            point: HookPoint::Poststop,
            state: State {
                oci_version: "1.2.0".into(),
                id: "web".into(),
                status: Status::Stopped,
                pid: None,
                bundle: "/run/rwasm/web".into(),
                annotations: vec![("owner".into(), "ops".into())],
            },
            spec: SpecView::default(),
            spec_json: "{}".into(),
            update: None,
        };
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(86_400);
        assert_eq!(
            record(&call, now).unwrap(),
            json!({
                "time": "1970-01-02T00:00:00.000Z", "point": "poststop", "id": "web",
                "status": "stopped", "pid": null, "bundle": "/run/rwasm/web",
                "annotations": {"owner": "ops"},
            })
        );
    }

    #[test]
    fn log_dir_must_be_absolute() {
        let config = |dir: &str| -> Config {
            [("log-dir".to_owned(), ConfigValue::Text(dir.into()))]
                .into_iter()
                .collect()
        };
        assert_eq!(
            log_file(&Config::default()).unwrap(),
            PathBuf::from("/log/audit.jsonl")
        );
        assert_eq!(
            log_file(&config("/a")).unwrap(),
            PathBuf::from("/a/audit.jsonl")
        );
        assert!(log_file(&config("a")).is_err());
    }
}
