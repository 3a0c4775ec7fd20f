//! Alert rules on this side: reading a rule file (TOML) or the built-in set, checking rules
//! against sample events with no AWS (`das-setup alerts test`), and marking what `tail` shows.
//! The rules themselves, their matching, thresholds and de-duplication are the processor's
//! (`das_processor::alert`), so what is tested here is what the function will run.

use std::path::Path;

use das_processor::alert::{self, Alert, RuleFile, Rules, Subject, Tracker};
use das_processor::classify::{Category, classify};
use das_processor::event::{EventFields, RecordView};
use serde_json::{Value, json};

use crate::cli::{AlertRulesArgs, AlertsTestArgs, GlobalArgs, OutputFormat};
use crate::session;

/// The name `--alerts` and `--rules` take for the built-in set.
pub const DEFAULT_SET: &str = "default";

/// A rule file: `default` for the built-in set, else a TOML file. Every problem is named with
/// the file and, for a rule, the rule and its field.
pub fn load(spec: &str) -> Result<(RuleFile, Rules), String> {
    let (name, text) = if spec == DEFAULT_SET {
        (
            "the built-in rules".to_owned(),
            alert::DEFAULT_RULES.to_owned(),
        )
    } else {
        let text = std::fs::read_to_string(Path::new(spec))
            .map_err(|e| format!("alert rules {spec}: {e}"))?;
        (spec.to_owned(), text)
    };
    let file: RuleFile = toml::from_str(&text)
        .map_err(|e| format!("alert rules {name}: {}", e.to_string().trim()))?;
    if file.rules.is_empty() {
        return Err(format!(
            "alert rules {name}: no [[rule]] tables (README, \"Alert rules\")"
        ));
    }
    let rules = Rules::compile(&file).map_err(|e| format!("alert rules {name}: {e}"))?;
    Ok((file, rules))
}

/// The rules `--alert-rules FILE` or `--alerts default` name, if any.
pub fn from_args(args: &AlertRulesArgs) -> Result<Option<(RuleFile, Rules)>, String> {
    match (&args.alert_rules, &args.alerts) {
        (Some(path), _) => load(&path.to_string_lossy()).map(Some),
        (None, Some(set)) => load(set).map(Some),
        (None, None) => Ok(None),
    }
}

/// The events of a sample file: a DAS record's payload (`databaseActivityEventList`), a JSON
/// array of events, one event, or one event per line (a stored object gunzipped, `tail
/// --output json`). Heartbeats are left out.
pub fn sample_events(text: &str) -> Result<Vec<String>, String> {
    let trimmed = text.trim_start();
    let raw: Vec<String> = if trimmed.starts_with('[') {
        let list: Vec<Box<serde_json::value::RawValue>> =
            serde_json::from_str(trimmed).map_err(|e| format!("a JSON array of events: {e}"))?;
        list.into_iter().map(|r| r.get().to_owned()).collect()
    } else if let Ok(view) = RecordView::parse(trimmed.as_bytes()) {
        view.events.iter().map(|r| r.get().to_owned()).collect()
    } else if let Ok(one) = serde_json::from_str::<Box<serde_json::value::RawValue>>(trimmed) {
        vec![one.get().to_owned()]
    } else {
        let mut out = Vec::new();
        for (n, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            serde_json::from_str::<serde_json::value::Value>(line)
                .map_err(|e| format!("line {}: not a JSON event: {e}", n + 1))?;
            out.push(line.to_owned());
        }
        out
    };
    let mut events = Vec::with_capacity(raw.len());
    for (n, event) in raw.into_iter().enumerate() {
        let fields = EventFields::parse(&event)
            .map_err(|e| format!("event {}: not an event object: {e}", n + 1))?;
        if !fields.is_heartbeat() {
            events.push(event);
        }
    }
    Ok(events)
}

/// The alerts one event raises. An event `tail` or the bucket shows already names its
/// category; a raw one is classified as the processor classifies it.
pub fn observe(rules: &Rules, tracker: &mut Tracker, event: &str, now_millis: i64) -> Vec<Alert> {
    let Ok(fields) = EventFields::parse(event) else {
        return Vec::new();
    };
    let stored: Option<Category> = serde_json::from_str::<Value>(event).ok().and_then(|v| {
        v.get("category")
            .and_then(Value::as_str)
            .and_then(Category::parse)
    });
    let category = stored.unwrap_or_else(|| classify(&fields));
    let command = alert::command_of(&fields);
    let subject = Subject::new(&fields, category, &command, now_millis);
    tracker.observe(rules, &subject)
}

/// `das-setup alerts test`. Exit 0 (whether or not anything matched), 2 bad rules or events.
pub fn test(global: &GlobalArgs, args: &AlertsTestArgs) -> u8 {
    let json_out = global.output == OutputFormat::Json;
    let refuse = |e: String| {
        crate::errln!("das-setup alerts test: {e}");
        session::emit_json(
            json_out,
            &json!({"command": "alerts test", "error": e, "exitCode": session::EXIT_REFUSED}),
        );
        session::EXIT_REFUSED
    };
    let (_, rules) = match load(&args.rules) {
        Ok(r) => r,
        Err(e) => return refuse(e),
    };
    let rules = rules.with_master_user(args.master_user.clone());
    let text = match std::fs::read_to_string(&args.event) {
        Ok(t) => t,
        Err(e) => return refuse(format!("--event {}: {e}", args.event.display())),
    };
    let events = match sample_events(&text) {
        Ok(e) => e,
        Err(e) => return refuse(format!("--event {}: {e}", args.event.display())),
    };
    let mut tracker = Tracker::default();
    let now = crate::session::now_millis();
    let mut report = Vec::new();
    for event in &events {
        let alerts = observe(&rules, &mut tracker, event, now);
        if !json_out {
            let value: Value = serde_json::from_str(event).unwrap_or(Value::Null);
            let mark = if alerts.is_empty() { " " } else { "!" };
            crate::outln!("{mark} {}", crate::tail::event_line(&value));
            for a in &alerts {
                crate::outln!("    ALERT {a}");
            }
        }
        report.extend(alerts);
    }
    if json_out {
        session::emit_json(
            true,
            &json!({
                "command": "alerts test",
                "rules": rules.rules().iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
                "events": events.len(),
                "alerts": report,
                "exitCode": session::EXIT_OK,
            }),
        );
    } else {
        crate::outln!(
            "{} event(s), {} alert(s) from {} rule(s)",
            events.len(),
            report.len(),
            rules.rules().len()
        );
    }
    session::EXIT_OK
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_rules_load_and_a_bad_file_is_named_with_its_rule_and_field() {
        let (file, rules) = load(DEFAULT_SET).unwrap();
        assert_eq!(file.rules.len(), rules.rules().len());
        assert!(rules.rules().len() >= 6);
        let dir = tempfile_dir();
        let bad = dir.join("bad.toml");
        std::fs::write(
            &bad,
            "[[rule]]\nname = \"drops\"\nseverity = \"high\"\nstatement = \"(unclosed\"\n",
        )
        .unwrap();
        let e = load(&bad.to_string_lossy()).unwrap_err();
        assert!(
            e.contains("bad.toml") && e.contains("\"drops\"") && e.contains("statement"),
            "{e}"
        );
        std::fs::write(
            &bad,
            "[[rule]]\nname = \"x\"\nseverity = \"high\"\nusr = \"a\"\n",
        )
        .unwrap();
        let e = load(&bad.to_string_lossy()).unwrap_err();
        assert!(e.contains("usr"), "{e}");
        std::fs::write(&bad, "# nothing\n").unwrap();
        assert!(
            load(&bad.to_string_lossy())
                .unwrap_err()
                .contains("no [[rule]]")
        );
        let e = load("/nonexistent/rules.toml").unwrap_err();
        assert!(e.contains("/nonexistent/rules.toml"), "{e}");
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("das-setup-alerts-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn sample_files_in_every_shape_give_their_events_without_heartbeats() {
        let e1 = r#"{"type":"record","class":"DDL","command":"DROP TABLE","commandText":"drop table t","serverType":"PostgreSQL","dbUserName":"alice"}"#;
        let hb = r#"{"type":"heartbeat"}"#;
        let record = format!(
            r#"{{"type":"DatabaseActivityMonitoringRecord","clusterId":"c","databaseActivityEventList":[{hb},{e1}]}}"#
        );
        for text in [
            record.clone(),
            format!("[{e1},{hb}]"),
            e1.to_owned(),
            format!("{e1}\n{hb}\n\n{e1}\n"),
        ] {
            let events = sample_events(&text).unwrap();
            assert!(!events.is_empty(), "{text}");
            assert!(events.iter().all(|e| !e.contains("heartbeat")), "{text}");
        }
        assert_eq!(sample_events(&format!("{e1}\n{e1}")).unwrap().len(), 2);
        let e = sample_events("{\"type\":\"record\"}\nnot json\n").unwrap_err();
        assert!(e.contains("line 2"), "{e}");
        assert!(sample_events("[1, 2]").unwrap_err().contains("event 1"));
    }

    #[test]
    fn a_stored_events_category_is_used_and_a_raw_one_classified() {
        let (_, rules) = load(DEFAULT_SET).unwrap();
        let mut tracker = Tracker::default();
        // Stored (as tail shows it): its category decides.
        let stored = r#"{"type":"record","category":"DCL","serverType":"PostgreSQL","dbUserName":"a","command":"UNKNOWN"}"#;
        let alerts = observe(&rules, &mut tracker, stored, 0);
        assert_eq!(alerts[0].rule, "privilege-or-user-change");
        // Raw: classified (pgaudit's ROLE class is DCL).
        let raw = r#"{"type":"record","class":"ROLE","command":"GRANT","serverType":"PostgreSQL","dbUserName":"b"}"#;
        assert_eq!(
            observe(&rules, &mut tracker, raw, 0)[0].rule,
            "privilege-or-user-change"
        );
        assert!(observe(&rules, &mut tracker, "not json", 0).is_empty());
    }
}
