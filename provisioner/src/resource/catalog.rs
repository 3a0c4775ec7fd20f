//! The Glue database `das_setup_<name>` and its table `events` over the processor's output, for
//! `das-setup query --engine athena` and any other engine that reads the Glue Data Catalog.
//!
//! The table is generated from `query::table`, the definition the local engine uses: the same
//! columns (every documented event field in lower case, all strings) and the same partition
//! columns, `category` and `hour`. Its partitions are never stored: Athena computes them from
//! the table's partition projection (Athena User Guide, "Partition projection with Amazon
//! Athena"): `category` an `enum` of the processor's categories, `hour` a `date` in the key's
//! `yyyy/MM/dd/HH` form, one hour apart, and `storage.location.template` the processor's key
//! layout, `s3://<bucket>/<prefix>${category}/${hour}/` (`das_processor::route::object_key`).
//! No crawler, no `MSCK REPAIR TABLE`, nothing to keep up to date as hours pass. The objects are
//! gzip'd JSON lines, read by the OpenX JSON SerDe, whose column matching ignores case (Athena
//! User Guide, "OpenX JSON SerDe": `case.insensitive`, default true), so `commandtext` reads
//! `commandText`.
//!
//! Glue tags databases, not tables (Glue Developer Guide, "AWS tags in AWS Glue"): the database
//! carries das-setup's tags, and `down` deletes it, which deletes its tables (Glue API,
//! DeleteDatabase). The events stay in S3.

use std::collections::BTreeMap;
use std::fmt;

use das_processor::classify::Category;
use serde_json::{Value, json};

use super::{Change, Check, Ctx, Effect, Level, Planned, Res, Resource, Verdict};
use crate::aws::{AwsError, Clients, absent_by_code};
use crate::desired::Desired;
use crate::naming::Names;
use crate::query::table;

/// Glue's "does not exist" for databases and tables (Glue API, GetDatabase and GetTable:
/// `EntityNotFoundException`).
const NOT_FOUND: &str = "EntityNotFoundException";
/// The OpenX JSON SerDe and the text formats of gzip'd JSON lines (Athena User Guide, "OpenX
/// JSON SerDe", the `CREATE TABLE` example's `ROW FORMAT SERDE` and `STORED AS`).
pub const SERDE: &str = "org.openx.data.jsonserde.JsonSerDe";
const INPUT_FORMAT: &str = "org.apache.hadoop.mapred.TextInputFormat";
const OUTPUT_FORMAT: &str = "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat";
/// The first hour the projection knows: before Database Activity Streams existed (launched for
/// Aurora PostgreSQL in 2019), so every stored hour is inside the range.
pub const FIRST_HOUR: &str = "2019/01/01/00";
/// The hour's format in the key and in the projection (Java `DateTimeFormatter` letters).
pub const HOUR_FORMAT: &str = "yyyy/MM/dd/HH";

/// The table's location and partition template for the events under `s3://bucket/prefix`.
pub fn location(bucket: &str, prefix: &str) -> (String, String) {
    (
        format!("s3://{bucket}/{prefix}"),
        format!("s3://{bucket}/{prefix}${{category}}/${{hour}}/"),
    )
}

/// Glue's `TableInput` of the `events` table over `s3://bucket/prefix`.
pub fn table_input(bucket: &str, prefix: &str) -> Value {
    let (location, template) = location(bucket, prefix);
    let column = |name: String| json!({"Name": name, "Type": "string"});
    let columns: Vec<Value> = table::EVENT_FIELDS
        .iter()
        .map(|f| column(f.to_ascii_lowercase()))
        .collect();
    let partitions: Vec<Value> = table::PARTITION_COLUMNS
        .iter()
        .map(|c| column((*c).to_owned()))
        .collect();
    let categories: Vec<&str> = Category::ALL.iter().map(|c| c.as_str()).collect();
    json!({
        "Name": table::TABLE,
        "Description": "Database Activity Streams events written by das-setup's processor",
        "TableType": "EXTERNAL_TABLE",
        "Parameters": {
            "EXTERNAL": "TRUE",
            "classification": "json",
            "compressionType": "gzip",
            "projection.enabled": "true",
            "projection.category.type": "enum",
            "projection.category.values": categories.join(","),
            "projection.hour.type": "date",
            "projection.hour.format": HOUR_FORMAT,
            "projection.hour.range": format!("{FIRST_HOUR},NOW"),
            "projection.hour.interval": "1",
            "projection.hour.interval.unit": "HOURS",
            "storage.location.template": template,
        },
        "PartitionKeys": partitions,
        "StorageDescriptor": {
            "Columns": columns,
            "Location": location,
            "InputFormat": INPUT_FORMAT,
            "OutputFormat": OUTPUT_FORMAT,
            "SerdeInfo": {
                "SerializationLibrary": SERDE,
                "Parameters": {"case.insensitive": "TRUE"},
            },
        },
    })
}

#[derive(Debug, Clone, PartialEq)]
pub struct CatalogState {
    pub database_tags: BTreeMap<String, String>,
    /// The `events` table as `GetTable` returned it.
    pub table: Option<Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CatalogChange {
    CreateDatabase,
    Tags,
    CreateTable,
    UpdateTable,
}

impl fmt::Display for CatalogChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CatalogChange::CreateDatabase => "create database",
            CatalogChange::Tags => "tags",
            CatalogChange::CreateTable => "create table events",
            CatalogChange::UpdateTable => "table definition",
        })
    }
}

impl Change for CatalogChange {
    fn effect(self) -> Effect {
        match self {
            CatalogChange::CreateDatabase | CatalogChange::CreateTable => Effect::Create,
            CatalogChange::Tags | CatalogChange::UpdateTable => Effect::Update,
        }
    }
}

/// The database and its table, or `None` when there is no database.
pub async fn observe(clients: &Clients, names: &Names) -> Result<Option<CatalogState>, AwsError> {
    let name = &names.glue_database;
    let what = format!("Glue database {name}");
    let found = absent_by_code(
        clients
            .glue
            .call("glue:GetDatabase", &what, &json!({"Name": name}))
            .await,
        NOT_FOUND,
    )?;
    if found.is_none() {
        return Ok(None);
    }
    let arn = &names.glue_database_arn;
    let (tags, table) = futures_util::future::join(
        clients
            .glue
            .call("glue:GetTags", &what, &json!({"ResourceArn": arn})),
        clients.glue.call(
            "glue:GetTable",
            &format!("Glue table {name}.{}", table::TABLE),
            &json!({"DatabaseName": name, "Name": table::TABLE}),
        ),
    )
    .await;
    let database_tags = tags?
        .get("Tags")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default();
    let table = absent_by_code(table, NOT_FOUND)?.and_then(|t| t.get("Table").cloned());
    Ok(Some(CatalogState {
        database_tags,
        table,
    }))
}

/// Every member of `want` is in `have` with the same value (lists: the same length, member by
/// member); what AWS adds to an answer (`CreateTime`, `CatalogId` ...) is not compared.
pub fn contains(have: &Value, want: &Value) -> bool {
    match (have, want) {
        (Value::Object(h), Value::Object(w)) => w
            .iter()
            .all(|(k, v)| h.get(k).is_some_and(|hv| contains(hv, v))),
        (Value::Array(h), Value::Array(w)) => {
            h.len() == w.len() && h.iter().zip(w).all(|(a, b)| contains(a, b))
        }
        _ => have == want,
    }
}

pub fn compare(d: &Desired, state: Option<&CatalogState>) -> Planned<CatalogChange> {
    let name = format!("{}.{}", d.names.glue_database, table::TABLE);
    let want = table_input(&d.bucket, &d.prefix);
    let changes = match state {
        None => vec![CatalogChange::CreateDatabase, CatalogChange::CreateTable],
        Some(s) => {
            let mut changes = vec![];
            if super::missing_tags(&d.tags, &s.database_tags) {
                changes.push(CatalogChange::Tags);
            }
            match &s.table {
                None => changes.push(CatalogChange::CreateTable),
                Some(t) if !contains(t, &want) => changes.push(CatalogChange::UpdateTable),
                Some(_) => {}
            }
            changes
        }
    };
    Planned::new(name, changes)
}

pub async fn apply(ctx: &Ctx<'_>, d: &Desired, plan: &Planned<CatalogChange>) -> Res {
    if plan.changes.is_empty() {
        return Ok(());
    }
    let name = &d.names.glue_database;
    let what = format!("Glue table {}", plan.name);
    let step = ctx.progress.begin(format!("configuring {what}"), false);
    let glue = &ctx.clients.glue;
    let input = table_input(&d.bucket, &d.prefix);
    for change in &plan.changes {
        match change {
            CatalogChange::CreateDatabase => {
                ctx.mutate("glue:CreateDatabase", name)?;
                let description = format!(
                    "das-setup: the audit trail of {} (Database Activity Streams)",
                    d.database.id
                );
                let created = glue
                    .call(
                        "glue:CreateDatabase",
                        name,
                        &json!({
                            "DatabaseInput": {"Name": name, "Description": description},
                            "Tags": d.tags,
                        }),
                    )
                    .await;
                // An interrupted run's database is taken as it is (its tags are compared by the
                // next `up`): Glue answers AlreadyExistsException (Glue API, CreateDatabase).
                match created {
                    Err(e) if e.code_is("AlreadyExistsException") => {}
                    other => {
                        other?;
                    }
                }
            }
            CatalogChange::Tags => {
                ctx.mutate("glue:TagResource", name)?;
                glue.call(
                    "glue:TagResource",
                    name,
                    &json!({"ResourceArn": d.names.glue_database_arn, "TagsToAdd": d.tags}),
                )
                .await?;
            }
            CatalogChange::CreateTable => {
                ctx.mutate("glue:CreateTable", &plan.name)?;
                let created = glue
                    .call(
                        "glue:CreateTable",
                        &plan.name,
                        &json!({"DatabaseName": name, "TableInput": input}),
                    )
                    .await;
                match created {
                    // Left by an interrupted run: made what it should be.
                    Err(e) if e.code_is("AlreadyExistsException") => {
                        update_table(ctx, name, &plan.name, &input).await?;
                    }
                    other => {
                        other?;
                    }
                }
            }
            CatalogChange::UpdateTable => update_table(ctx, name, &plan.name, &input).await?,
        }
    }
    step.done(&format!("{what}: {}", plan.descriptions().join(", ")));
    Ok(())
}

/// Makes the table what `input` says.
async fn update_table(ctx: &Ctx<'_>, database: &str, table: &str, input: &Value) -> Res {
    ctx.mutate("glue:UpdateTable", table)?;
    ctx.clients
        .glue
        .call(
            "glue:UpdateTable",
            table,
            &json!({"DatabaseName": database, "TableInput": input}),
        )
        .await?;
    Ok(())
}

/// `down`: das-setup's database goes, with its table; another's is left.
pub fn verdict(state: Option<&CatalogState>) -> Verdict {
    state.map_or(Verdict::Absent, |s| Verdict::by_tags(&s.database_tags))
}

/// Deletes the database and, with it, its tables (Glue API, DeleteDatabase). The data in S3 is
/// not touched.
pub async fn delete(clients: &Clients, name: &str) -> Result<(), AwsError> {
    absent_by_code(
        clients
            .glue
            .call("glue:DeleteDatabase", name, &json!({"Name": name}))
            .await,
        NOT_FOUND,
    )?;
    Ok(())
}

/// `status`: the table is there and reads where the processor writes (`prefix`: the function's).
pub fn check(name: &str, state: Option<&CatalogState>, bucket: &str, prefix: &str) -> Check {
    let r = Resource::GlueTable;
    let Some(table) = state.and_then(|s| s.table.as_ref()) else {
        return Check::of(
            r,
            Level::Warn,
            format!("{name} does not exist: query --engine athena cannot run (run up)"),
        );
    };
    if contains(table, &table_input(bucket, prefix)) {
        Check::of(
            r,
            Level::Ok,
            format!("{name}, partition projection over s3://{bucket}/{prefix}"),
        )
    } else {
        Check::of(
            r,
            Level::Warn,
            format!(
                "{name} differs from what das-setup defines for s3://{bucket}/{prefix}: run up"
            ),
        )
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::desired::tests::desired;

    /// What Glue reports after `up`: the input plus what Glue adds.
    pub(crate) fn found(d: &Desired) -> CatalogState {
        let mut table = table_input(&d.bucket, &d.prefix);
        table["DatabaseName"] = json!(d.names.glue_database);
        table["CreateTime"] = json!(1.0);
        table["StorageDescriptor"]["Compressed"] = json!(false);
        CatalogState {
            database_tags: d.tags.clone(),
            table: Some(table),
        }
    }

    #[test]
    fn the_table_is_the_query_tables_columns_with_projection_over_the_processors_keys() {
        let d = desired(&["--cluster", "demo"]);
        let t = table_input(&d.bucket, &d.prefix);
        let columns: Vec<&str> = t["StorageDescriptor"]["Columns"]
            .as_array()
            .unwrap()
            .iter()
            .chain(t["PartitionKeys"].as_array().unwrap())
            .map(|c| c["Name"].as_str().unwrap())
            .collect();
        let expected: Vec<String> = table::column_names().collect();
        assert_eq!(columns, expected);
        let p = &t["Parameters"];
        assert_eq!(
            p["storage.location.template"],
            format!("s3://{}/parsed/demo/${{category}}/${{hour}}/", d.bucket)
        );
        assert_eq!(
            p["projection.category.values"]
                .as_str()
                .unwrap()
                .split(',')
                .count(),
            10
        );
        // The hour as the processor writes it into a key.
        let key = das_processor::route::object_key(
            &d.prefix,
            &das_processor::route::GroupKey {
                category: Category::AuthFailure,
                hour: das_processor::route::UtcHour::from_log_time("2026-01-02 03:04:05.678+00")
                    .unwrap(),
            },
            "b",
        );
        assert!(
            key.starts_with("parsed/demo/AUTH_FAILURE/2026/01/02/03/"),
            "{key}"
        );
        assert_eq!(HOUR_FORMAT.len(), "2026/01/02/03".len());
    }

    #[test]
    fn created_then_unchanged_and_drift_is_put_back() {
        let d = desired(&["--cluster", "demo"]);
        assert_eq!(
            compare(&d, None).changes,
            vec![CatalogChange::CreateDatabase, CatalogChange::CreateTable]
        );
        let state = found(&d);
        assert!(compare(&d, Some(&state)).changes.is_empty());
        assert_eq!(verdict(Some(&state)), Verdict::Delete);
        let mut moved = state.clone();
        moved.table.as_mut().unwrap()["StorageDescriptor"]["Location"] = json!("s3://other/");
        moved.database_tags.clear();
        assert_eq!(
            compare(&d, Some(&moved)).changes,
            vec![CatalogChange::Tags, CatalogChange::UpdateTable]
        );
        assert!(matches!(verdict(Some(&moved)), Verdict::Keep(_)));
        let name = "das_setup_demo.events";
        assert_eq!(
            check(name, Some(&state), &d.bucket, &d.prefix).level,
            Level::Ok
        );
        assert_eq!(
            check(name, Some(&moved), &d.bucket, &d.prefix).level,
            Level::Warn
        );
        assert_eq!(check(name, None, &d.bucket, &d.prefix).level, Level::Warn);
    }

    #[test]
    fn containment_ignores_added_members_but_not_changed_ones() {
        let want = json!({"a": [{"n": "x"}], "b": "1"});
        assert!(contains(
            &json!({"a": [{"n": "x", "c": 2}], "b": "1", "z": 0}),
            &want
        ));
        assert!(!contains(&json!({"a": [{"n": "y"}], "b": "1"}), &want));
        assert!(!contains(
            &json!({"a": [{"n": "x"}, {"n": "x"}], "b": "1"}),
            &want
        ));
        assert!(!contains(&json!({"a": [{"n": "x"}]}), &want));
    }
}
