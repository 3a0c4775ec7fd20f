//! `query --engine athena`: the same SQL over the same `events` table, run by Amazon Athena in
//! the deployment's workgroup over the Glue table `up` made (`resource::catalog`).
//!
//! The window is applied as the local engine applies it: the SQL runs with `events` defined as
//! the window's hours of the Glue table (a common table expression put before the query's own,
//! `WITH events AS (SELECT * FROM "<database>"."events" WHERE hour BETWEEN '<first>' AND
//! '<last>')`), and since `hour` is a projected partition column Athena reads only those hours'
//! objects (Athena User Guide, "Partition projection": predicates on projected columns prune).
//!
//! Athena API reference: StartQueryExecution, then GetQueryExecution until the state is final
//! (QUEUED and RUNNING are not; SUCCEEDED, FAILED with its `StateChangeReason`, CANCELLED are),
//! polled with growing intervals and shown as progress, for at most `--timeout` (then
//! StopQueryExecution: a query left running still scans and bills); then GetQueryResults, page
//! by page (the first row of a SELECT's results holds the column names), until `--max-rows`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::arrow::array::{
    ArrayRef, BooleanBuilder, Float64Builder, Int64Builder, StringBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::sql::sqlparser::ast::{Cte, Statement};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;
use serde_json::json;

use super::local::Hours;
use super::table;
use crate::aws::Clients;
use crate::json_api::str_at;
use crate::progress::Progress;

/// Results per GetQueryResults page (the API's maximum).
const PAGE: usize = 1000;

/// Where the query runs.
#[derive(Debug, Clone)]
pub struct Target {
    pub database: String,
    pub workgroup: String,
}

/// What Athena answered.
pub struct Answered {
    pub batches: Vec<RecordBatch>,
    pub truncated: bool,
    pub execution_id: String,
    pub bytes_scanned: u64,
    /// Where Athena stored the results (`s3://.../<id>.csv`).
    pub output: Option<String>,
}

/// `sql` with `events` defined as the window's hours of the Glue table.
pub fn windowed(sql: &str, database: &str, hours: &Hours) -> Result<String, String> {
    let mut statements =
        Parser::parse_sql(&GenericDialect {}, sql).map_err(|e| format!("the SQL: {e}"))?;
    let [Statement::Query(query)] = statements.as_mut_slice() else {
        return Err("the SQL: one query".into());
    };
    let definition = format!(
        "WITH {table} AS (SELECT * FROM \"{database}\".\"{table}\" WHERE hour BETWEEN '{}' AND '{}') SELECT 1",
        hours.first,
        hours.last,
        table = table::TABLE,
    );
    let parsed = Parser::parse_sql(&GenericDialect {}, &definition).map_err(|e| e.to_string())?;
    let [Statement::Query(ours)] = parsed.as_slice() else {
        return Err("the window's definition did not parse".into());
    };
    let cte: Cte = ours
        .with
        .as_ref()
        .and_then(|w| w.cte_tables.first().cloned())
        .ok_or("the window's definition has no WITH")?;
    match &mut query.with {
        Some(with) => {
            if with
                .cte_tables
                .iter()
                .any(|c| c.alias.name.value.eq_ignore_ascii_case(table::TABLE))
            {
                return Err(format!(
                    "the SQL defines its own {:?}: name it otherwise, `{}` is the window's table",
                    table::TABLE,
                    table::TABLE
                ));
            }
            with.cte_tables.insert(0, cte);
        }
        None => {
            let mut with = ours
                .with
                .clone()
                .ok_or("the window's definition has no WITH")?;
            with.cte_tables = vec![cte];
            query.with = Some(with);
        }
    }
    Ok(statements[0].to_string())
}

/// Runs `sql` on Athena and waits for it, at most `timeout`.
pub async fn run(
    clients: &Clients,
    at: &Target,
    sql: &str,
    max_rows: usize,
    timeout: Duration,
    progress: &Progress,
) -> Result<Answered, String> {
    let athena = &clients.athena;
    let what = format!("Athena workgroup {}", at.workgroup);
    // The same token on every attempt: a retried start runs the query once (Athena API
    // reference, StartQueryExecution, ClientRequestToken).
    let token = request_token(sql);
    let started = athena
        .call(
            "athena:StartQueryExecution",
            &what,
            &json!({
                "QueryString": sql,
                "QueryExecutionContext": {"Database": at.database, "Catalog": "AwsDataCatalog"},
                "WorkGroup": at.workgroup,
                "ClientRequestToken": token,
            }),
        )
        .await
        .map_err(|e| e.to_string())?;
    let id = str_at(&started, &["QueryExecutionId"])
        .ok_or("Athena's answer to StartQueryExecution has no QueryExecutionId")?
        .to_owned();
    let execution = format!("Athena query {id}");
    let mut step = progress.begin(format!("waiting for {execution}"), true);
    let deadline = Instant::now() + timeout;
    let mut interval = Duration::from_millis(300);
    let execution_doc = loop {
        let doc = athena
            .call(
                "athena:GetQueryExecution",
                &execution,
                &json!({"QueryExecutionId": id}),
            )
            .await
            .map_err(|e| e.to_string())?;
        let state = str_at(&doc, &["QueryExecution", "Status", "State"]).unwrap_or_default();
        match state {
            "SUCCEEDED" => break doc,
            "FAILED" | "CANCELLED" => {
                let reason = str_at(&doc, &["QueryExecution", "Status", "StateChangeReason"])
                    .unwrap_or("Athena gave no reason");
                return Err(format!("{execution} {state}: {reason}"));
            }
            _ => {}
        }
        if Instant::now() + interval > deadline {
            // A query left running goes on scanning (and billing): stop it.
            let stopped = athena
                .call(
                    "athena:StopQueryExecution",
                    &execution,
                    &json!({"QueryExecutionId": id}),
                )
                .await;
            return Err(format!(
                "{execution} was still {state} after {} s (--timeout); {}",
                timeout.as_secs(),
                match stopped {
                    Ok(_) => "it was stopped".to_owned(),
                    Err(e) => format!("stopping it failed, stop it yourself: {e}"),
                }
            ));
        }
        tokio::time::sleep(interval).await;
        interval = (interval.mul_f64(1.5)).min(Duration::from_secs(5));
        step.tick();
    };
    let scanned = execution_doc["QueryExecution"]["Statistics"]["DataScannedInBytes"]
        .as_u64()
        .unwrap_or(0);
    step.done(&format!("{execution}: succeeded, {scanned} bytes scanned"));
    let output = str_at(
        &execution_doc,
        &["QueryExecution", "ResultConfiguration", "OutputLocation"],
    )
    .map(str::to_owned);

    let mut columns: Vec<(String, String)> = Vec::new();
    let mut rows: Vec<Vec<Option<String>>> = Vec::new();
    let mut token: Option<String> = None;
    let mut header = true;
    let mut truncated = false;
    loop {
        let mut input = json!({"QueryExecutionId": id, "MaxResults": PAGE});
        if let Some(t) = &token {
            input["NextToken"] = json!(t);
        }
        let page = athena
            .call("athena:GetQueryResults", &execution, &input)
            .await
            .map_err(|e| e.to_string())?;
        if columns.is_empty() {
            columns = page["ResultSet"]["ResultSetMetadata"]["ColumnInfo"]
                .as_array()
                .map(|cs| {
                    cs.iter()
                        .map(|c| {
                            (
                                str_at(c, &["Name"]).unwrap_or_default().to_owned(),
                                str_at(c, &["Type"]).unwrap_or("varchar").to_owned(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
        }
        for row in page["ResultSet"]["Rows"].as_array().into_iter().flatten() {
            if std::mem::take(&mut header) {
                continue; // the column names
            }
            if max_rows > 0 && rows.len() == max_rows {
                truncated = true;
                break;
            }
            rows.push(
                row["Data"]
                    .as_array()
                    .map(|cells| {
                        cells
                            .iter()
                            .map(|c| str_at(c, &["VarCharValue"]).map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default(),
            );
        }
        token = str_at(&page, &["NextToken"]).map(str::to_owned);
        if truncated || token.is_none() {
            break;
        }
    }
    Ok(Answered {
        batches: vec![batch(&columns, &rows)?],
        truncated,
        execution_id: id,
        bytes_scanned: scanned,
        output,
    })
}

/// 64 hex digits, unique to this run of this query (Athena takes 32 to 128 characters).
fn request_token(sql: &str) -> String {
    use sha2::{Digest as _, Sha256};
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let digest = Sha256::digest(format!("{now}/{}/{sql}", std::process::id()).as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Athena's rows as one Arrow batch: integers, floating point numbers and booleans typed as
/// Athena typed them (so JSON output has numbers where the local engine has them), the rest
/// strings.
fn batch(
    columns: &[(String, String)],
    rows: &[Vec<Option<String>>],
) -> Result<RecordBatch, String> {
    let mut fields = Vec::new();
    let mut arrays: Vec<ArrayRef> = Vec::new();
    for (i, (name, kind)) in columns.iter().enumerate() {
        let cells = rows.iter().map(|r| r.get(i).cloned().flatten());
        let bad = |v: &str| format!("Athena returned {v:?} in the {kind} column {name}");
        let (data_type, array): (DataType, ArrayRef) = match kind.as_str() {
            "bigint" | "integer" | "smallint" | "tinyint" => {
                let mut b = Int64Builder::new();
                for c in cells {
                    b.append_option(c.map(|v| v.parse().map_err(|_| bad(&v))).transpose()?);
                }
                (DataType::Int64, Arc::new(b.finish()))
            }
            "double" | "float" | "real" => {
                let mut b = Float64Builder::new();
                for c in cells {
                    b.append_option(c.map(|v| v.parse().map_err(|_| bad(&v))).transpose()?);
                }
                (DataType::Float64, Arc::new(b.finish()))
            }
            "boolean" => {
                let mut b = BooleanBuilder::new();
                for c in cells {
                    b.append_option(c.map(|v| v == "true"));
                }
                (DataType::Boolean, Arc::new(b.finish()))
            }
            _ => {
                let mut b = StringBuilder::new();
                for c in cells {
                    b.append_option(c);
                }
                (DataType::Utf8, Arc::new(b.finish()))
            }
        };
        fields.push(Field::new(name, data_type, true));
        arrays.push(array);
    }
    let options =
        datafusion::arrow::record_batch::RecordBatchOptions::new().with_row_count(Some(rows.len()));
    RecordBatch::try_new_with_options(Arc::new(Schema::new(fields)), arrays, &options)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hours() -> Hours {
        // 2026-12-05 19:00 to 2026-12-06 19:00 UTC.
        Hours::of(1_796_497_200_000, 1_796_583_600_000)
    }

    #[test]
    fn the_window_becomes_the_events_table_before_the_querys_own_definitions() {
        let h = hours();
        let sql = windowed("SELECT count(*) FROM events", "das_setup_demo", &h).unwrap();
        assert!(
            sql.starts_with(
                "WITH events AS (SELECT * FROM \"das_setup_demo\".\"events\" WHERE hour BETWEEN '"
            ),
            "{sql}"
        );
        assert!(
            sql.contains(&format!("'{}' AND '{}'", h.first, h.last)),
            "{sql}"
        );
        assert!(sql.ends_with("SELECT count(*) FROM events"), "{sql}");
        let sql = windowed(
            "WITH u AS (SELECT dbusername FROM events) SELECT * FROM u",
            "d",
            &h,
        )
        .unwrap();
        assert!(sql.starts_with("WITH events AS ("), "{sql}");
        assert!(
            sql.contains("), u AS (SELECT dbusername FROM events)"),
            "{sql}"
        );
        let refused = windowed("WITH events AS (SELECT 1) SELECT * FROM events", "d", &h);
        assert!(refused.unwrap_err().contains("defines its own"));
    }

    #[test]
    fn athenas_rows_are_typed_as_athena_typed_them() {
        let columns = vec![
            ("user".to_owned(), "varchar".to_owned()),
            ("n".to_owned(), "bigint".to_owned()),
        ];
        let rows = vec![
            vec![Some("alice".to_owned()), Some("3".to_owned())],
            vec![None, None],
        ];
        let b = batch(&columns, &rows).unwrap();
        assert_eq!(b.num_rows(), 2);
        assert_eq!(b.schema().field(1).data_type(), &DataType::Int64);
        let bad = vec![vec![Some("a".to_owned()), Some("x".to_owned())]];
        assert!(
            batch(&columns, &bad)
                .unwrap_err()
                .contains("bigint column n")
        );
    }
}
