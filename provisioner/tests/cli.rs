//! The built `das-setup` binary, as a user runs it.

// Test code: a panic is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, Output};

fn das_setup(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_das-setup"))
        .args(args)
        .env_remove("AWS_ENDPOINT_URL")
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

#[test]
fn help_lists_the_commands_and_global_options() {
    let out = das_setup(&["--help"]);
    assert!(out.status.success());
    let help = stdout(&out);
    for needle in [
        "up",
        "down",
        "status",
        "tail",
        "verify",
        "replay",
        "--region",
        "--profile",
        "--endpoint-url",
        "--output",
        "--verbose",
    ] {
        assert!(help.contains(needle), "--help lacks {needle}:\n{help}");
    }
    assert!(help.contains("Start the activity stream"), "{help}");
}

#[test]
fn each_command_explains_its_options() {
    let cases: [(&str, &[&str]); 5] = [
        (
            "up",
            &[
                "--cluster",
                "--instance",
                "--kms-key",
                "--mode",
                "--bucket",
                "--prefix",
                "--include",
                "--exclude",
                "--exclude-users",
                "--arch",
                "--lambda-zip",
                "--retention-days",
                "--dry-run",
                "--yes",
            ],
        ),
        (
            "down",
            &[
                "--cluster",
                "--bucket",
                "--delete-bucket",
                "--delete-key",
                "--dry-run",
                "--yes",
            ],
        ),
        (
            "status",
            &["--cluster", "--since", "--strict", "Exit codes"],
        ),
        (
            "tail",
            &[
                "--cluster",
                "--instance",
                "--follow",
                "--since",
                "--include",
                "--exclude",
                "--exclude-users",
            ],
        ),
        (
            "replay",
            &[
                "--cluster",
                "--since",
                "--until",
                "--category",
                "--dry-run",
                "--yes",
                "Idempotent",
                "Exit codes",
            ],
        ),
    ];
    for (command, options) in cases {
        let out = das_setup(&[command, "--help"]);
        assert!(out.status.success(), "{command} --help failed");
        let help = stdout(&out);
        for option in options {
            assert!(
                help.contains(option),
                "{command} --help lacks {option}:\n{help}"
            );
        }
    }
}

#[test]
fn usage_errors_exit_2_and_name_the_problem() {
    let out = das_setup(&["up"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--cluster"), "{err}");
    let out = das_setup(&["up", "--cluster", "a", "--mode", "semi"]);
    assert_eq!(out.status.code(), Some(2));
    // up and tail share one filter parser: the same flag, the same refusal, before any AWS call.
    for command in ["up", "tail"] {
        let out = isolated(&[command, "--cluster", "a", "--include", "DDL,NOPE"], &[]);
        assert_eq!(out.status.code(), Some(2), "{command}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("--include") && err.contains("unknown category \"NOPE\""),
            "{command}: {err}"
        );
    }
}

/// `das-setup` with no AWS configuration from this machine leaking in.
fn isolated(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_das-setup"));
    cmd.args(args);
    for var in [
        "AWS_ENDPOINT_URL",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_PROFILE",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("AWS_CONFIG_FILE", "/nonexistent/das-setup-test")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/das-setup-test")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

#[test]
fn up_refuses_before_any_change_when_aws_cannot_be_reached() {
    let out = isolated(
        &["up", "--cluster", "demo", "--lambda-zip", "Cargo.toml"],
        &[],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("no AWS region"), "{err}");
    assert!(err.contains("Nothing was changed"), "{err}");

    let out = isolated(
        &[
            "up",
            "--cluster",
            "demo",
            "--region",
            "eu-west-1",
            "--endpoint-url",
            "http://127.0.0.1:9",
            "--output",
            "json",
        ],
        &[
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("sts:GetCallerIdentity"), "{err}");
    // --output json: stdout is one JSON document, even for a refusal.
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["applied"], false);
    assert!(
        doc["error"].as_str().unwrap().contains("credentials"),
        "{doc}"
    );
}

#[test]
fn status_and_tail_refuse_bad_windows_before_any_call() {
    let out = isolated(
        &[
            "status",
            "--cluster",
            "demo",
            "--since",
            "1w",
            "--output",
            "json",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["health"], "error");
    assert!(doc["error"].as_str().unwrap().contains("--since"), "{doc}");
    let out = isolated(&["tail", "--cluster", "demo", "--since", "2d"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("at most 24h"));
}

#[test]
fn replay_refuses_bad_windows_and_categories_before_any_call() {
    for (args, needle) in [
        (&["--since", "1w"][..], "--since \"1w\""),
        (
            &["--since", "1h", "--until", "2h"][..],
            "--until must be later",
        ),
        (&["--since", "2026-12-01"][..], "or a time"),
        (
            &["--since", "1h", "--category", "DQL,SELECTS"][..],
            "--category SELECTS",
        ),
    ] {
        let mut all = vec!["replay", "--cluster", "demo", "--output", "json"];
        all.extend_from_slice(args);
        let out = isolated(&all, &[]);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let error = doc["error"].as_str().unwrap();
        assert!(error.contains(needle), "{args:?}: {error}");
        assert!(
            !error.contains("credentials"),
            "refused before any AWS call: {error}"
        );
    }
    // --since is required.
    let out = das_setup(&["replay", "--cluster", "demo"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--since"));
}

#[test]
fn alerts_test_runs_rules_over_sample_events_with_no_aws() {
    let dir = std::env::temp_dir().join(format!("das-setup-cli-alerts-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let events = dir.join("events.ndjson");
    let pg = |class: &str, command: &str, text: &str, user: &str, second: u32| {
        format!(
            r#"{{"type":"record","serverType":"PostgreSQL","class":"{class}","command":"{command}","commandText":"{text}","dbUserName":"{user}","remoteHost":"203.0.113.7","logTime":"2026-12-04 10:00:{second:02}.000000+00"}}"#
        )
    };
    let mut lines = vec![
        pg("ROLE", "GRANT", "grant select on t to bob", "alice", 0),
        pg("DDL", "DROP TABLE", "drop table orders", "alice", 1),
        pg("READ", "SELECT", "select * from orders", "alice", 2),
        pg("READ", "SELECT", "select 1", "admin", 3),
        r#"{"type":"heartbeat"}"#.to_owned(),
    ];
    for s in 10..15 {
        lines.push(pg("ERROR", "AUTH FAILURE", "", "mallory", s));
    }
    std::fs::write(&events, lines.join("\n")).unwrap();
    let ev = events.to_string_lossy();
    let out = das_setup(&[
        "alerts",
        "test",
        "--rules",
        "default",
        "--event",
        &ev,
        "--master-user",
        "admin",
        "--output",
        "json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["events"], 9, "the heartbeat is not an event");
    let fired: Vec<&str> = doc["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["rule"].as_str().unwrap())
        .collect();
    assert_eq!(
        fired,
        [
            "privilege-or-user-change",
            "table-dropped-or-truncated",
            "master-user-activity",
            "failed-login-burst-user",
            "failed-login-burst-host"
        ]
    );
    let burst = &doc["alerts"][3];
    assert_eq!(
        (burst["user"].as_str(), burst["count"].as_u64()),
        (Some("mallory"), Some(5))
    );
    // Text: each event on a line, a matched one marked, its alerts under it.
    let out = das_setup(&["alerts", "test", "--rules", "default", "--event", &ev]);
    let text = stdout(&out);
    assert!(
        text.contains("    ALERT table-dropped-or-truncated [high] DDL user=alice"),
        "{text}"
    );
    assert!(
        text.contains("9 event(s), 4 alert(s) from 6 rule(s)"),
        "{text}"
    );

    let rules = dir.join("rules.toml");
    std::fs::write(
        &rules,
        "[[rule]]\nname = \"r\"\nseverity = \"high\"\ncategory = \"WRITES\"\n",
    )
    .unwrap();
    let out = das_setup(&[
        "alerts",
        "test",
        "--rules",
        &rules.to_string_lossy(),
        "--event",
        &ev,
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("rule \"r\": category: unknown category \"WRITES\""),
        "{err}"
    );
}
