//! `das-setup query`: SQL over the audit trail, a table `events` of one deployment's window.
//!
//! `table` defines the table (one definition for every engine), `local` reads it in-process
//! with Apache DataFusion, `athena` runs it on Amazon Athena over the Glue table `up` made,
//! `saved` holds the saved questions. Read-only: the SQL may only query (anything else is
//! refused before any AWS call); the local engine's AWS calls are reads, and Athena's only write
//! is its results file under `athena-results/`.

pub mod athena;
pub mod local;
pub mod saved;
pub mod table;

use std::sync::Arc;
use std::time::Instant;

use datafusion::arrow::array::RecordBatch;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use serde_json::{Value, json};

use crate::aws::{Clients, Named as _};
use crate::cli::{GlobalArgs, OutputFormat, QueryArgs, QueryEngine};
use crate::naming::{Names, TargetRef};
use crate::replay::{Window, parse_time};
use crate::session::{self, Refusal, emit_json, refuse};
use crate::settings::target;
use local::{EventsTable, Hours, Location};

/// Exit codes: answered, failed while running, refused before running.
pub const EXIT_ANSWERED: u8 = 0;
pub const EXIT_FAILED: u8 = 1;

/// What `query` found out before running: where, which window, which SQL.
struct Prepared {
    clients: Clients,
    at: Where,
    window: Window,
    sql: String,
}

/// Where the query runs.
enum Where {
    Local(Location),
    Athena(athena::Target),
}

/// The answer.
pub struct Answer {
    pub batches: Vec<RecordBatch>,
    /// More rows than `--max-rows` were produced: the rest were not printed.
    pub truncated: bool,
    pub stats: Arc<local::Stats>,
}

/// What the engine read to answer.
enum Read {
    Local(local::Read),
    Athena {
        execution_id: String,
        bytes_scanned: u64,
        output: Option<String>,
    },
}

/// `das-setup query`.
pub async fn run(global: &GlobalArgs, args: &QueryArgs) -> u8 {
    let format = global.format_of(true).unwrap_or(OutputFormat::Text);
    let json_out = format == OutputFormat::Json;
    if args.list_saved {
        list_saved(json_out);
        return EXIT_ANSWERED;
    }
    let prepared = match prepare(global, args).await {
        Ok(p) => p,
        Err(e) => {
            crate::errln!("das-setup query: {e}");
            emit_json(
                json_out,
                &json!({"command": "query", "exitCode": session::EXIT_REFUSED, "error": e.to_string()}),
            );
            return session::EXIT_REFUSED;
        }
    };
    let Prepared {
        clients,
        at,
        window,
        sql,
    } = prepared;
    let hours = Hours::of(window.since_millis, window.until_millis);
    if format == OutputFormat::Text {
        let source = match &at {
            Where::Local(at) => format!("s3://{}/{}", at.bucket, at.prefix),
            Where::Athena(t) => format!(
                "Athena, table {}.{} in workgroup {}",
                t.database,
                table::TABLE,
                t.workgroup
            ),
        };
        crate::errln!(
            "das-setup query: {source}, {} hour(s) from {} UTC",
            hours.len(),
            hours.first
        );
    }
    let started = Instant::now();
    let result = match &at {
        Where::Local(location) => run_local(&clients, location, hours, &sql, args.max_rows)
            .await
            .map(|a| {
                let read = Read::Local(a.stats.snapshot());
                (a.batches, a.truncated, read)
            }),
        Where::Athena(target) => {
            let progress = crate::progress::Progress::new(format != OutputFormat::Text);
            let result = match athena::windowed(&sql, &target.database, &hours) {
                Ok(windowed) => {
                    athena::run(
                        &clients,
                        target,
                        &windowed,
                        args.max_rows,
                        std::time::Duration::from_secs(args.timeout),
                        &progress,
                    )
                    .await
                }
                Err(e) => Err(e),
            };
            progress.finish();
            result.map(|a| {
                let read = Read::Athena {
                    execution_id: a.execution_id,
                    bytes_scanned: a.bytes_scanned,
                    output: a.output,
                };
                (a.batches, a.truncated, read)
            })
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    let (batches, truncated, read) = match result {
        Ok(a) => a,
        Err(e) => {
            crate::errln!("das-setup query: {e}");
            emit_json(
                json_out,
                &json!({"command": "query", "sql": sql, "exitCode": EXIT_FAILED, "error": e}),
            );
            return EXIT_FAILED;
        }
    };
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    match format {
        OutputFormat::Json => {
            let mut doc = json!({
                "command": "query",
                "window": {
                    "since": millis_text(window.since_millis),
                    "until": millis_text(window.until_millis),
                    "firstHour": hours.first.to_string(),
                    "lastHour": hours.last.to_string(),
                },
                "sql": sql,
                "columns": columns(&batches),
                "rows": json_rows(&batches),
                "truncated": truncated,
                "seconds": (seconds * 1000.0).round() / 1000.0,
                "exitCode": EXIT_ANSWERED,
            });
            let source = match (&at, &read) {
                (Where::Local(at), Read::Local(stats)) => json!({
                    "engine": "local",
                    "bucket": at.bucket,
                    "prefix": at.prefix,
                    "objectsRead": stats.objects,
                    "bytesRead": stats.bytes,
                }),
                (
                    Where::Athena(t),
                    Read::Athena {
                        execution_id,
                        bytes_scanned,
                        output,
                    },
                ) => json!({
                    "engine": "athena",
                    "glueDatabase": t.database,
                    "workgroup": t.workgroup,
                    "queryExecutionId": execution_id,
                    "bytesScanned": bytes_scanned,
                    "resultsLocation": output,
                }),
                _ => json!({}),
            };
            if let (Some(doc), Value::Object(more)) = (doc.as_object_mut(), source) {
                doc.extend(more);
            }
            emit_json(true, &doc);
        }
        OutputFormat::Csv => {
            if let Err(e) = write_csv(&batches) {
                crate::errln!("das-setup query: writing csv: {e}");
                return EXIT_FAILED;
            }
        }
        _ => {
            match datafusion::arrow::util::pretty::pretty_format_batches(&batches) {
                Ok(table) if rows > 0 => crate::outln!("{table}"),
                Ok(_) => crate::outln!("(no rows)"),
                Err(e) => {
                    crate::errln!("das-setup query: formatting the answer: {e}");
                    return EXIT_FAILED;
                }
            }
            let read = match &read {
                Read::Local(stats) => {
                    format!("read {} object(s), {} bytes", stats.objects, stats.bytes)
                }
                Read::Athena {
                    execution_id,
                    bytes_scanned,
                    ..
                } => format!("Athena scanned {bytes_scanned} bytes (query {execution_id})"),
            };
            crate::errln!(
                "{rows} row(s){}; {read}, in {seconds:.1} s",
                if truncated {
                    format!(" (more not shown: --max-rows {})", args.max_rows)
                } else {
                    String::new()
                },
            );
        }
    }
    EXIT_ANSWERED
}

async fn prepare(global: &GlobalArgs, args: &QueryArgs) -> Result<Prepared, Refusal> {
    let target = target(&args.target)?;
    let sql = match (&args.sql, &args.saved) {
        (Some(sql), None) => sql.clone(),
        (None, Some(name)) => {
            let saved = saved::find(name).ok_or_else(|| {
                refuse(format!(
                    "--saved {name:?}: no such saved query; they are {}",
                    saved::SAVED.map(|s| s.name).join(", ")
                ))
            })?;
            saved
                .render(args.user.as_deref(), args.session.as_deref())
                .map_err(refuse)?
        }
        _ => return Err(refuse("give the SQL or --saved NAME")),
    };
    // A parameter the query does not take would be silently ignored: refuse it.
    let takes = args
        .saved
        .as_deref()
        .and_then(saved::find)
        .and_then(|s| s.param);
    for (given, param) in [
        (args.user.is_some(), saved::Param::User),
        (args.session.is_some(), saved::Param::Session),
    ] {
        if given && takes != Some(param) {
            return Err(refuse(format!(
                "{} is a parameter of a saved query that takes it (--saved {}); put the value in the SQL instead",
                param.flag(),
                saved::SAVED
                    .iter()
                    .find(|s| s.param == Some(param))
                    .map_or("", |s| s.name)
            )));
        }
    }
    check_sql(&sql).map_err(|e| refuse(format!("the SQL: {e}")))?;
    let window = window(&args.since, args.until.as_deref())?;
    let clients = Clients::load(global).await;
    let at = match args.engine {
        QueryEngine::Local => Where::Local(
            location(
                &clients,
                &target,
                args.bucket.as_deref(),
                args.prefix.as_deref(),
            )
            .await?,
        ),
        QueryEngine::Athena => {
            if args.bucket.is_some() || args.prefix.is_some() {
                return Err(refuse(
                    "--bucket and --prefix are for --engine local: Athena reads where the Glue table says",
                ));
            }
            let (identity, _) = session::resolve(&clients, &target).await?;
            let names = Names::new(&target, &identity.account, &identity.region);
            Where::Athena(athena::Target {
                database: names.glue_database,
                workgroup: names.workgroup,
            })
        }
    };
    Ok(Prepared {
        clients,
        at,
        window,
        sql,
    })
}

/// The window of `--since` and `--until` (default: now).
pub(crate) fn window(since: &str, until: Option<&str>) -> Result<Window, Refusal> {
    let now = session::now_millis();
    let since_millis = parse_time(since, now).ok_or_else(|| {
        refuse(format!(
            "--since {since:?}: expected a duration such as 24h or 7d, or a time such as 2026-12-01T10:00Z"
        ))
    })?;
    let until_millis = match until {
        Some(text) => parse_time(text, now).ok_or_else(|| {
            refuse(format!(
                "--until {text:?}: expected a duration such as 1h, or a time such as 2026-12-01T10:00Z"
            ))
        })?,
        None => now,
    };
    Window::new(since_millis, until_millis).map_err(refuse)
}

/// One statement, a query: refused before any AWS call otherwise.
fn check_sql(sql: &str) -> Result<(), String> {
    use datafusion::sql::sqlparser::ast::Statement;
    let statements = datafusion::sql::sqlparser::parser::Parser::parse_sql(&GenericDialect {}, sql)
        .map_err(|e| e.to_string())?;
    match statements.as_slice() {
        [Statement::Query(_)] => Ok(()),
        [_] => Err("only a query (SELECT, WITH ...) can run: the audit trail is read-only".into()),
        [] => Err("it is empty".into()),
        _ => Err("one statement at a time".into()),
    }
}

/// The bucket and prefix: the flags (`--bucket`, `--prefix`), else the deployed function's,
/// else the defaults.
pub(crate) async fn location(
    clients: &Clients,
    target: &TargetRef,
    bucket: Option<&str>,
    prefix: Option<&str>,
) -> Result<Location, Refusal> {
    use das_processor::config::{normalize_prefix, var};
    let prefix_flag = prefix
        .map(|p| normalize_prefix(p).map_err(|e| refuse(format!("--prefix {p:?}: {e}"))))
        .transpose()?;
    if let (Some(bucket), Some(prefix)) = (bucket, &prefix_flag) {
        return Ok(Location {
            bucket: bucket.to_owned(),
            prefix: prefix.clone(),
        });
    }
    let (identity, _) = session::resolve(clients, target).await?;
    let names = Names::new(target, &identity.account, &identity.region);
    let function = clients
        .lambda
        .get_function_configuration()
        .function_name(&names.function)
        .send()
        .await
        .or_absent("lambda:GetFunctionConfiguration", &names.function, |e| {
            e.is_resource_not_found_exception()
        })?;
    let env = function
        .as_ref()
        .and_then(|f| f.environment())
        .and_then(|e| e.variables());
    let deployed = |name: &str| env.and_then(|v| v.get(name)).cloned();
    Ok(Location {
        bucket: bucket
            .map(str::to_owned)
            .or_else(|| deployed(var::OUTPUT_BUCKET))
            .unwrap_or_else(|| names.bucket.clone()),
        prefix: prefix_flag
            .or_else(|| deployed(var::OUTPUT_PREFIX))
            .unwrap_or_else(|| {
                das_processor::route::database_prefix(crate::deployment::DEFAULT_PREFIX, &target.id)
            }),
    })
}

/// A session whose table `events` is the window's objects, read-only, under the memory limit,
/// and the count of what its queries read.
pub(crate) fn local_session(
    clients: &Clients,
    at: &Location,
    hours: Hours,
) -> Result<(SessionContext, Arc<local::Stats>), String> {
    let runtime = RuntimeEnvBuilder::new()
        .with_memory_limit(local::MEMORY_LIMIT, 1.0)
        .build_arc()
        .map_err(|e| e.to_string())?;
    let ctx = SessionContext::new_with_config_rt(SessionConfig::new(), runtime);
    let events = EventsTable::new(clients.s3.clone(), at.clone(), hours);
    let stats = events.stats();
    ctx.register_table(table::TABLE, Arc::new(events))
        .map_err(|e| e.to_string())?;
    Ok((ctx, stats))
}

/// `sql` planned read-only in `ctx` (DataFusion's DDL, DML and statements refused).
pub(crate) async fn read_only(
    ctx: &SessionContext,
    sql: &str,
) -> Result<datafusion::dataframe::DataFrame, String> {
    let options = datafusion::execution::context::SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false);
    ctx.sql_with_options(sql, options)
        .await
        .map_err(|e| format!("the SQL: {}", explain(&e)))
}

/// Runs `sql` in-process over the window's objects.
pub async fn run_local(
    clients: &Clients,
    at: &Location,
    hours: Hours,
    sql: &str,
    max_rows: usize,
) -> Result<Answer, String> {
    let (ctx, stats) = local_session(clients, at, hours)?;
    let frame = read_only(&ctx, sql).await?;
    let frame = if max_rows > 0 {
        frame
            .limit(0, Some(max_rows + 1))
            .map_err(|e| explain(&e))?
    } else {
        frame
    };
    let mut batches = frame.collect().await.map_err(|e| e.strip_backtrace())?;
    let mut truncated = false;
    if max_rows > 0 {
        let mut left = max_rows;
        for b in &mut batches {
            if b.num_rows() > left {
                *b = b.slice(0, left);
                truncated = true;
            }
            left -= b.num_rows();
        }
        batches.retain(|b| b.num_rows() > 0 || b.num_columns() == 0);
    }
    Ok(Answer {
        batches,
        truncated,
        stats,
    })
}

/// An engine error as people read it: a failed read is the read's own error (which names the
/// object and the permission), not DataFusion's wrapping of it.
pub(crate) fn explain(e: &datafusion::error::DataFusionError) -> String {
    use datafusion::error::DataFusionError;
    match e.find_root() {
        DataFusionError::External(inner) => inner.to_string(),
        root => root.strip_backtrace(),
    }
}

pub(crate) fn columns(batches: &[RecordBatch]) -> Vec<String> {
    batches
        .first()
        .map(|b| {
            b.schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect()
        })
        .unwrap_or_default()
}

/// Rows as JSON objects (arrow's JSON writer: numbers stay numbers, NULL is null).
pub(crate) fn json_rows(batches: &[RecordBatch]) -> Value {
    let mut writer = datafusion::arrow::json::ArrayWriter::new(Vec::new());
    let refs: Vec<&RecordBatch> = batches.iter().collect();
    if writer
        .write_batches(&refs)
        .and_then(|()| writer.finish())
        .is_err()
    {
        return Value::Array(Vec::new());
    }
    let bytes = writer.into_inner();
    if bytes.is_empty() {
        return Value::Array(Vec::new());
    }
    serde_json::from_slice(&bytes).unwrap_or(Value::Array(Vec::new()))
}

fn write_csv(batches: &[RecordBatch]) -> Result<(), String> {
    let stdout = std::io::stdout();
    let mut writer = datafusion::arrow::csv::WriterBuilder::new()
        .with_header(true)
        .build(stdout.lock());
    for b in batches {
        writer.write(b).map_err(|e| e.to_string())?;
    }
    Ok(())
}

pub(crate) fn millis_text(millis: i64) -> String {
    das_processor::manifest::rfc3339_millis(millis)
}

fn list_saved(json_out: bool) {
    if json_out {
        emit_json(
            true,
            &json!({
                "command": "query",
                "saved": saved::SAVED.iter().map(|s| json!({
                    "name": s.name,
                    "question": s.question,
                    "parameter": s.param.map(saved::Param::flag),
                    "sql": s.sql,
                })).collect::<Vec<_>>(),
            }),
        );
        return;
    }
    for s in saved::SAVED {
        crate::outln!("{}: {}", s.name, s.question);
        crate::outln!("    {}\n", s.sql);
    }
}
