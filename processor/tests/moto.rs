//! The real `das-processor --event FILE` against a real moto server (KMS and S3 over HTTP).
//! Records are made as RDS makes them: KMS `GenerateDataKey` with the DAS encryption context and
//! the AWS Encryption SDK for Python (`tests/emulator/das_batch.py`). Checks: one correct result
//! per record, every kept event exactly once in its category folder, bad records
//! `ProcessingFailed`, a retry overwrites, an S3 failure fails the invocation.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use das_processor::digest;
use serde_json::{Value, json};
use support::moto::{Moto, scratch, workspace_root};
use support::output;

const RESOURCE: &str = "cluster-MOTOTESTRESOURCE01";

struct Setup {
    moto: Moto,
    bucket: String,
    key_id: String,
    s3: aws_sdk_s3::Client,
}

async fn setup(bucket: &str) -> Setup {
    let moto = Moto::start();
    let conf = moto.sdk_config().await;
    let kms = aws_sdk_kms::Client::new(&conf);
    let key_id = kms
        .create_key()
        .description("DAS test key")
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap()
        .key_id;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&conf)
            .force_path_style(true)
            .build(),
    );
    s3.create_bucket().bucket(bucket).send().await.unwrap();
    Setup {
        moto,
        bucket: bucket.to_owned(),
        key_id,
        s3,
    }
}

impl Setup {
    /// Encrypts the spec's records with the Python Encryption SDK and KMS; returns the event file.
    fn batch(&self, dir: &Path, records: Value) -> std::path::PathBuf {
        let spec = json!({"resource_id": RESOURCE, "key_id": self.key_id, "records": records});
        let spec_path = dir.join("spec.json");
        std::fs::write(&spec_path, spec.to_string()).unwrap();
        let event = dir.join("event.json");
        let root = workspace_root();
        let out = Command::new(root.join("tests/emulator/python"))
            .arg(root.join("tests/emulator/das_batch.py"))
            .args(["--endpoint", &self.moto.url, "--spec"])
            .arg(&spec_path)
            .arg("--out")
            .arg(&event)
            .env_clear()
            .envs(self.moto.env())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "das_batch.py: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        event
    }

    fn process(&self, event: &Path, env: &[(&str, &str)]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_das-processor"))
            .arg("--event")
            .arg(event)
            .env_clear()
            .envs(self.moto.env())
            .env("DAS_OUTPUT_BUCKET", &self.bucket)
            .envs(env.iter().copied())
            .output()
            .unwrap()
    }

    /// Every key in the bucket, event objects and manifests.
    async fn keys(&self) -> Vec<String> {
        let listed = self
            .s3
            .list_objects_v2()
            .bucket(&self.bucket)
            .send()
            .await
            .unwrap();
        listed
            .contents()
            .iter()
            .map(|o| o.key().unwrap().to_owned())
            .collect()
    }

    /// An object's body and content type.
    async fn get(&self, key: &str) -> (Vec<u8>, String) {
        let body = self
            .s3
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .unwrap();
        let content_type = body.content_type().unwrap_or_default().to_owned();
        let bytes = body.body.collect().await.unwrap().into_bytes().to_vec();
        (bytes, content_type)
    }

    /// (key, line) for every line of every event object in the bucket.
    async fn lines(&self) -> Vec<(String, Value)> {
        let mut out = Vec::new();
        for key in self.keys().await {
            if !output::is_manifest(&key) && !output::is_digest(&key) {
                out.extend(output::object_lines(&key, &self.get(&key).await.0));
            }
        }
        out
    }

    /// testId -> category of everything in S3; panics on a duplicate or a misfiled event.
    async fn landed(&self) -> BTreeMap<String, String> {
        output::landed(self.lines().await)
    }
}

fn stdout_json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "das-processor failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn stats(out: &Output) -> Value {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stderr
        .lines()
        .find_map(|l| l.strip_prefix("stats: "))
        .expect("a stats line");
    serde_json::from_str(line).unwrap()
}

fn ev(id: &str, fields: Value) -> Value {
    let mut e = json!({"type": "record", "testId": id, "logTime": "2025-11-24 16:05:00.123456+00",
        "dbUserName": "alice", "databaseName": "app"});
    e.as_object_mut()
        .unwrap()
        .extend(fields.as_object().unwrap().clone());
    e
}

fn pg(id: &str, class: &str, command: &str, text: &str) -> Value {
    ev(
        id,
        json!({"serverType": "PostgreSQL", "class": class, "command": command,
        "commandText": text, "exitCode": null, "paramList": [], "statementId": 3}),
    )
}

fn mysql(id: &str, class: &str, command: &str, text: &str) -> Value {
    ev(
        id,
        json!({"serverType": "MySQL", "class": class, "command": command, "commandText": text,
        "exitCode": "0", "paramList": null, "statementId": "3", "transactionId": "17"}),
    )
}

fn hb() -> Value {
    json!({"type": "heartbeat", "clusterId": "", "instanceId": ""})
}

/// Events of every engine with the category each must land in ("" = filtered out by default).
#[allow(clippy::type_complexity)]
fn engine_events() -> (
    Vec<Value>,
    Vec<Value>,
    Vec<Value>,
    Vec<(&'static str, &'static str)>,
) {
    let postgres = vec![
        hb(),
        pg("pg-ddl", "DDL", "CREATE TABLE", "create table t (i int)"),
        pg("pg-dml", "WRITE", "INSERT", "insert into t values (1)"),
        pg("pg-read", "READ", "SELECT", "select * from t"),
        pg("pg-role", "ROLE", "GRANT", "grant select on t to bob"),
        pg("pg-tcl", "MISC", "BEGIN", "begin"),
        pg("pg-connect", "", "CONNECT", ""),
        pg("pg-disconnect", "", "DISCONNECT", ""),
        ev(
            "pg-authfail",
            json!({"serverType": "PostgreSQL", "class": "ERROR",
            "command": "AUTH FAILURE", "dbUserName": "mallory", "exitCode": null}),
        ),
        pg("pg-error", "ERROR", "ERROR", "selec 1"),
        pg("pg-other", "MISC", "VACUUM", "vacuum"),
        ev(
            "pg-admin",
            json!({"serverType": "PostgreSQL", "class": "READ", "command": "SELECT",
            "dbUserName": "rdsadmin"}),
        ),
        hb(),
    ];
    let mysql_events = vec![
        mysql("my-ddl", "MAIN", "QUERY", "CREATE TABLE t (id INT)"),
        mysql("my-aux-create", "AUX", "CREATE", ""),
        mysql("my-dml", "MAIN", "QUERY", "DELETE FROM t WHERE id = 1"),
        mysql("my-aux-read", "AUX", "READ", ""),
        mysql("my-aux-delete", "AUX", "DELETE", ""),
        mysql("my-read", "MAIN", "QUERY", "/* app */ SELECT 1"),
        mysql("my-connect", "MAIN", "CONNECT", ""),
        ev(
            "my-failed",
            json!({"serverType": "MySQL", "class": "MAIN", "command": "FAILED_CONNECT",
            "exitCode": "1045", "dbUserName": "mallory"}),
        ),
        ev(
            "my-error",
            json!({"serverType": "MySQL", "class": "MAIN", "command": "QUERY",
            "commandText": "select * from missing", "exitCode": "1146"}),
        ),
        hb(),
    ];
    let others = vec![
        ev(
            "ora-logon",
            json!({"serverType": "oracle", "class": "Standard", "command": "LOGON",
            "exitCode": 0, "dbUserName": "HR", "transactionId": "0000000000000000"}),
        ),
        ev(
            "ora-alter",
            json!({"serverType": "oracle", "class": "Standard",
            "command": "ALTER DATABASE", "exitCode": 0, "dbUserName": "HR"}),
        ),
        ev(
            "ora-rdsadmin",
            json!({"serverType": "oracle", "class": "Standard", "command": "SELECT",
            "exitCode": 0, "dbUserName": "RDSADMIN"}),
        ),
        ev(
            "mss-select",
            json!({"serverType": "SQLSERVER", "class": "TABLE", "command": "SELECT",
            "exitCode": 1, "statementId": "0x1A2B", "logTime": "2025-11-24 18:01:02.1234567+00"}),
        ),
        ev(
            "mss-loginfail",
            json!({"serverType": "SQLSERVER", "class": "LOGIN",
            "command": "LOGIN FAILED", "exitCode": 0}),
        ),
    ];
    let expected = vec![
        ("pg-ddl", "DDL"),
        ("pg-dml", "DML"),
        ("pg-read", "DQL"),
        ("pg-role", "DCL"),
        ("pg-tcl", "TCL"),
        ("pg-connect", "CONNECT"),
        ("pg-disconnect", "DISCONNECT"),
        ("pg-authfail", "AUTH_FAILURE"),
        ("pg-error", "ERROR"),
        ("pg-other", "OTHER"),
        ("pg-admin", ""),
        ("my-ddl", "DDL"),
        ("my-aux-create", "DDL"),
        ("my-dml", "DML"),
        ("my-aux-read", "DQL"),
        ("my-aux-delete", "DML"),
        ("my-read", "DQL"),
        ("my-connect", "CONNECT"),
        ("my-failed", "AUTH_FAILURE"),
        ("my-error", "ERROR"),
        ("ora-logon", "CONNECT"),
        ("ora-alter", "DDL"),
        ("ora-rdsadmin", ""),
        ("mss-select", "DQL"),
        ("mss-loginfail", "AUTH_FAILURE"),
    ];
    (postgres, mysql_events, others, expected)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_every_engine_lands_once_per_event_and_bad_records_fail_alone() {
    let s = setup("das-moto-engines").await;
    let dir = scratch("moto-engines");
    let (postgres, mysql_events, others, expected) = engine_events();
    let records = json!([
        {"events": postgres, "key": 0},
        {"events": mysql_events, "key": 0},
        {"events": [hb(), hb()], "key": 1},
        {"events": others, "key": 1},
        {"events": [ev("bad-1", json!({}))], "damage": "tampered-frame"},
        {"events": [ev("bad-2", json!({}))], "damage": "wrong-context", "key": 7},
        {"events": [ev("bad-3", json!({}))], "damage": "not-base64"},
        {"events": [ev("bad-4", json!({}))], "damage": "truncated"},
        {"events": [pg("bad-5", "DDL", "DROP TABLE", "drop table t")], "damage": "event-not-object"},
        {"events": [ev("bad-6", json!({}))], "damage": "not-gzip"},
        {"events": [ev("bad-7", json!({}))], "damage": "missing-key"},
    ]);
    let event = s.batch(&dir, records);
    let out = s.process(&event, &[]);
    let response = stdout_json(&out);

    let input: Value = serde_json::from_slice(&std::fs::read(&event).unwrap()).unwrap();
    let ids: Vec<&Value> = input["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["recordId"])
        .collect();
    let answered: Vec<&Value> = response["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["recordId"])
        .collect();
    assert_eq!(ids, answered, "one result per record, same ids, same order");
    let results: Vec<&str> = response["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["result"].as_str().unwrap())
        .collect();
    let mut want = vec!["Dropped"; 4];
    want.extend(["ProcessingFailed"; 7]);
    assert_eq!(results, want);

    let landed = s.landed().await;
    let want: BTreeMap<String, String> = expected
        .iter()
        .filter(|(_, c)| !c.is_empty())
        .map(|(id, c)| (id.to_string(), c.to_string()))
        .collect();
    assert_eq!(landed, want);

    // Two data keys for the good records plus the wrong-context one: one KMS call each.
    let st = stats(&out);
    assert_eq!(st["kms_calls"], 3, "{st}");
    assert_eq!(st["failed"], 7);

    // The SQL Server event went to its own hour.
    let keys: Vec<String> = s.lines().await.into_iter().map(|(k, _)| k).collect();
    assert!(
        keys.iter()
            .any(|k| k.starts_with("parsed/DQL/2025/11/24/18/")),
        "{keys:?}"
    );
    assert!(
        keys.iter()
            .any(|k| k.starts_with("parsed/DQL/2025/11/24/16/")),
        "{keys:?}"
    );

    // The invocation's manifest, written as JSON: it lists exactly the event objects.
    let (manifests, mut objects): (Vec<String>, Vec<String>) = s
        .keys()
        .await
        .into_iter()
        .partition(|k| output::is_manifest(k));
    let (digests, mut objects): (Vec<String>, Vec<String>) =
        objects.drain(..).partition(|k| output::is_digest(k));
    assert_eq!(digests, [digest::key("parsed/", 1)]);
    let [manifest] = manifests.as_slice() else {
        panic!("one manifest: {manifests:?}");
    };
    let (body, content_type) = s.get(manifest).await;
    assert_eq!(content_type, "application/json");
    let manifest: Value = serde_json::from_slice(&body).unwrap();
    let mut listed: Vec<String> = manifest["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["key"].as_str().unwrap().to_owned())
        .collect();
    listed.sort();
    objects.sort();
    assert_eq!(listed, objects);
    // The digest, written with If-None-Match to moto, lists the same objects with their hashes.
    let first_digest = s.get(&digests[0]).await.0;
    let opened = digest::open(&first_digest).unwrap();
    assert_eq!(
        serde_json::to_value(&opened.digest.objects).unwrap(),
        manifest["objects"]
    );
    assert_eq!(opened.signature, None, "no DAS_DIGEST_KEY: unsigned");

    // Firehose retries the same batch: same objects overwritten, nothing duplicated (the retry's
    // manifest goes to the folder of its own hour, so only event objects are compared).
    stdout_json(&s.process(&event, &[]));
    let mut again: Vec<String> = s
        .keys()
        .await
        .into_iter()
        .filter(|k| !output::is_manifest(k) && !output::is_digest(k))
        .collect();
    again.sort();
    assert_eq!(again, objects);
    // ... and the retry appends a second digest of them, chained to the first (at least once):
    // a new process, so it found the head by listing.
    let retried = digest::open(&s.get(&digest::key("parsed/", 2)).await.0).unwrap();
    assert_eq!(retried.digest.objects, opened.digest.objects);
    let link = retried.digest.previous.unwrap();
    assert_eq!(link.sha256, digest::hex_sha256(&first_digest));
    assert_eq!(s.landed().await.len(), want.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_blog_filter_and_the_events_output_mode() {
    let s = setup("das-moto-filters").await;
    let dir = scratch("moto-filters");
    let (postgres, mysql_events, _, _) = engine_events();
    let event = s.batch(
        &dir,
        json!([{"events": postgres}, {"events": mysql_events}]),
    );

    let out = s.process(
        &event,
        &[
            ("DAS_INCLUDE_CATEGORIES", "DDL,DML"),
            ("DAS_OUTPUT_PREFIX", "parsed"),
        ],
    );
    stdout_json(&out);
    let landed: Vec<(String, String)> = s.landed().await.into_iter().collect();
    let want: Vec<(String, String)> = [
        ("my-aux-create", "DDL"),
        ("my-aux-delete", "DML"),
        ("my-ddl", "DDL"),
        ("my-dml", "DML"),
        ("pg-ddl", "DDL"),
        ("pg-dml", "DML"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(landed, want);

    // Events mode: the kept events come back in the response, nothing more is written.
    let before = s.lines().await.len();
    let out = s.process(
        &event,
        &[("DAS_FIREHOSE_OUTPUT", "events"), ("DAS_EXCLUDE_USERS", "")],
    );
    let response = stdout_json(&out);
    use base64::Engine as _;
    let mut ids = Vec::new();
    for r in response["records"].as_array().unwrap() {
        assert_eq!(r["result"], "Ok");
        let data = base64::engine::general_purpose::STANDARD
            .decode(r["data"].as_str().unwrap())
            .unwrap();
        for line in String::from_utf8(data).unwrap().lines() {
            let v: Value = serde_json::from_str(line).unwrap();
            assert_eq!(v["clusterId"], RESOURCE);
            ids.push(v["testId"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(
        ids.len(),
        20,
        "every non-heartbeat event, rdsadmin included: {ids:?}"
    );
    assert_eq!(s.lines().await.len(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_failure_fails_the_invocation_and_bad_configuration_is_refused() {
    let s = setup("das-moto-s3fail").await;
    let dir = scratch("moto-s3fail");
    let event = s.batch(
        &dir,
        json!([{"events": [pg("x", "DDL", "CREATE TABLE", "create table x()")]}]),
    );
    let out = s.process(&event, &[("DAS_OUTPUT_BUCKET", "das-moto-no-such-bucket")]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("das-moto-no-such-bucket"), "{stderr}");
    assert!(
        out.stdout.is_empty(),
        "no response when the invocation fails"
    );

    let out = s.process(&event, &[("DAS_INCLUDE_CATEGORIES", "DDL,READS")]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("DAS_INCLUDE_CATEGORIES") && stderr.contains("READS"),
        "{stderr}"
    );

    let bad_event = dir.join("bad.json");
    std::fs::write(&bad_event, "[]").unwrap();
    let out = s.process(&bad_event, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a Firehose transformation event"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lambda_mode_serves_an_invocation_from_the_runtime_api() {
    use support::runtime_api::{REQUEST_ID, RuntimeApi};
    let s = setup("das-moto-lambda").await;
    let dir = scratch("moto-lambda");
    let event = s.batch(
        &dir,
        json!([{"events": [pg("l1", "DDL", "CREATE TABLE", "create table l()"), hb()]},
               {"events": [ev("bad", json!({}))], "damage": "tampered-header"}]),
    );
    let invoke = |bucket: &str| {
        let api = RuntimeApi::start(std::fs::read(&event).unwrap());
        let mut child = Command::new(env!("CARGO_BIN_EXE_das-processor"))
            .env_clear()
            .envs(s.moto.env())
            .env("DAS_OUTPUT_BUCKET", bucket)
            .env("AWS_LAMBDA_RUNTIME_API", &api.address)
            .env("AWS_LAMBDA_FUNCTION_NAME", "das-processor")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "test")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/das-processor")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let answer = api.answer(std::time::Duration::from_secs(60));
        let _ = child.kill();
        let _ = child.wait();
        answer.expect("the function answered within 60 s")
    };

    // An S3 failure is reported to Lambda as an invocation error (Firehose retries).
    let (kind, body) = invoke("das-moto-lambda-missing-bucket");
    assert_eq!(
        kind,
        format!("error /2018-06-01/runtime/invocation/{REQUEST_ID}/error")
    );
    assert!(String::from_utf8_lossy(&body).contains("das-moto-lambda-missing-bucket"));

    let (kind, body) = invoke(&s.bucket);
    assert_eq!(
        kind,
        format!("response /2018-06-01/runtime/invocation/{REQUEST_ID}/response")
    );
    let response: Value = serde_json::from_slice(&body).unwrap();
    let results: Vec<&str> = response["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["result"].as_str().unwrap())
        .collect();
    assert_eq!(results, ["Dropped", "ProcessingFailed"]);
    assert_eq!(
        s.landed().await.into_iter().collect::<Vec<_>>(),
        [("l1".to_string(), "DDL".to_string())]
    );
}
