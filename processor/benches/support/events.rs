//! Realistic Aurora PostgreSQL events for benchmarks (about 1 KB each, varying ids, values,
//! timings), deterministic from the seed.

use crate::encode::Rng;

const TABLES: [&str; 6] = [
    "orders",
    "customers",
    "invoices",
    "payments",
    "shipments",
    "audit_log",
];
const USERS: [&str; 4] = ["app_rw", "alice", "reporting", "rdsadmin"];

/// One Aurora PostgreSQL event of about 1 KB, with varying ids, values and timings.
pub fn pg_event(rng: &mut Rng, i: usize) -> serde_json::Value {
    let table = TABLES[rng.below(6) as usize];
    let (a, b, c) = (rng.below(10_000_000), rng.below(100_000), rng.next());
    let (class, command, sql) = match rng.below(4) {
        0 => (
            "READ",
            "SELECT",
            format!(
                "SELECT o.id, o.customer_id, o.status, o.total_cents, o.currency, o.created_at, o.updated_at, c.email, c.country FROM public.{table} o JOIN public.customers c ON c.id = o.customer_id WHERE o.id = {a} AND o.status IN ('open', 'paid', 'shipped') AND o.created_at > now() - interval '{b} minutes' ORDER BY o.created_at DESC LIMIT 50"
            ),
        ),
        1 => (
            "WRITE",
            "INSERT",
            format!(
                "INSERT INTO public.{table} (customer_id, status, total_cents, currency, reference, note, created_at, updated_at) VALUES ({a}, 'open', {b}, 'EUR', 'ref-{c:016x}', 'customer asked for delivery after {} o''clock, call ahead', now(), now()) RETURNING id",
                b % 24
            ),
        ),
        2 => (
            "WRITE",
            "UPDATE",
            format!(
                "UPDATE public.{table} SET status = 'paid', total_cents = {b}, updated_at = now(), note = 'payment {c:016x} captured by gateway' WHERE id = {a} AND status = 'open'"
            ),
        ),
        _ => (
            "DDL",
            "ALTER TABLE",
            format!(
                "ALTER TABLE public.{table} ADD COLUMN IF NOT EXISTS extra_{b} jsonb DEFAULT '{{}}'::jsonb; COMMENT ON COLUMN public.{table}.extra_{b} IS 'migration {c:016x}'"
            ),
        ),
    };
    let sql = format!("{sql} /* request {:016x}{:016x} */", rng.next(), rng.next());
    serde_json::json!({
        "logTime": format!("2026-11-24 10:{:02}:{:02}.{:06}+00", rng.below(60), rng.below(60), rng.below(1_000_000)),
        "statementId": i, "substatementId": 1, "objectType": "TABLE", "command": command,
        "objectName": format!("public.{table}"), "databaseName": "shop",
        "dbUserName": USERS[rng.below(4) as usize],
        "remoteHost": format!("10.0.{}.{}", rng.below(256), rng.below(255) + 1),
        "remotePort": (30000 + rng.below(30000)).to_string(),
        "sessionId": format!("{:x}.{:x}", rng.next() >> 36, rng.below(65536)),
        "rowCount": rng.below(100), "commandText": sql, "paramList": [],
        "pid": 1000 + rng.below(40000), "clientApplication": "PostgreSQL JDBC Driver",
        "exitCode": null, "class": class, "serverVersion": "16.4.1", "serverType": "PostgreSQL",
        "serviceName": "Amazon Aurora PostgreSQL-Compatible edition", "serverHost": "10.0.1.10",
        "netProtocol": "TCP", "dbProtocol": "Postgres 3.0", "type": "record", "startTime": null,
        "errorMessage": null,
    })
}
