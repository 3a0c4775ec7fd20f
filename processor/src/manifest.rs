//! What one invocation wrote: a small JSON object per invocation, filed by the hour it was
//! *written*, not by the hour of the events in it. Pure.
//!
//! Event objects are filed by their events' own `logTime` (see `route`), so a pipeline catching up
//! after an outage, a replay or a database with a skewed clock writes today into folders of other
//! days. S3 lists by key, not by write time, so "what was written in the last hour" cannot be read
//! off the event folders without listing all of them. The manifest answers it with one bounded
//! listing: `das-setup status` lists `<prefix>_manifests/` from the window's start.
//!
//! The folder starts with `_`, which Athena and Hive-style readers skip, so the manifests never
//! mix with the events in a table over the prefix.
//!
//! ```json
//! {"batch":"20261201T203000Z-…","writtenAt":"2026-12-01T20:31:02.345Z",
//!  "objects":[{"key":"parsed/DDL/2026/11/24/10/20261201T203000Z-….json.gz","bytes":812,
//!              "events":3,"sha256":"…"}]}
//! ```
//!
//! A retried invocation writes the same objects and a manifest of the same name, in the folder of
//! the hour of that attempt: a batch retried across the top of an hour has two identical
//! manifests, never a missing one.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::route::UtcHour;

/// Under the output prefix.
pub const FOLDER: &str = "_manifests/";

/// One event object of the invocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub key: String,
    pub bytes: usize,
    pub events: usize,
    pub sha256: String,
}

impl Entry {
    pub fn new(key: &str, body: &[u8], events: usize) -> Self {
        let digest = Sha256::digest(body);
        Self {
            key: key.to_owned(),
            bytes: body.len(),
            events,
            sha256: digest.iter().map(|b| format!("{b:02x}")).collect(),
        }
    }
}

/// The manifest of one invocation.
#[derive(Debug, Clone, Serialize)]
pub struct Manifest {
    pub batch: String,
    #[serde(rename = "writtenAt")]
    pub written_at: String,
    pub objects: Vec<Entry>,
}

impl Manifest {
    pub fn new(batch: &str, written_at_millis: i64, objects: Vec<Entry>) -> Self {
        Self {
            batch: batch.to_owned(),
            written_at: rfc3339_millis(written_at_millis),
            objects,
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        // A struct of strings and integers always serializes.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// `<prefix>_manifests/<yyyy>/<MM>/<dd>/<HH>/<batch>.json`, the hour being the write time's.
pub fn key(prefix: &str, written_at_millis: i64, batch: &str) -> String {
    format!(
        "{prefix}{FOLDER}{}/{batch}.json",
        UtcHour::from_epoch_millis(written_at_millis)
    )
}

/// `2026-12-01T20:31:02.345Z`
pub fn rfc3339_millis(millis: i64) -> String {
    let hour = UtcHour::from_epoch_millis(millis);
    let in_hour = millis.rem_euclid(3_600_000);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        hour.year,
        hour.month,
        hour.day,
        hour.hour,
        in_hour / 60_000,
        in_hour % 60_000 / 1000,
        in_hour % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_filed_by_write_hour() {
        // 2021-06-04 02:22:47.218 UTC
        let t = 1_622_773_367_218;
        assert_eq!(
            key("parsed/", t, "b"),
            "parsed/_manifests/2021/06/04/02/b.json"
        );
        assert_eq!(rfc3339_millis(t), "2021-06-04T02:22:47.218Z");
        assert_eq!(rfc3339_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_millis(-1), "1969-12-31T23:59:59.999Z");
        // The last millisecond of a year and the first of the next.
        let new_year = 1_640_995_200_000; // 2022-01-01T00:00:00Z
        assert_eq!(rfc3339_millis(new_year - 1), "2021-12-31T23:59:59.999Z");
        assert_eq!(
            key("p/", new_year - 1, "b"),
            "p/_manifests/2021/12/31/23/b.json"
        );
        assert_eq!(
            key("p/", new_year, "b"),
            "p/_manifests/2022/01/01/00/b.json"
        );
    }

    #[test]
    fn entries_carry_size_count_and_digest() {
        let e = Entry::new("k", b"abc", 2);
        assert_eq!(e.bytes, 3);
        assert_eq!(e.events, 2);
        assert_eq!(
            e.sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let m = Manifest::new("b", 0, vec![e]);
        let json: serde_json::Value = serde_json::from_slice(&m.to_json()).unwrap();
        assert_eq!(json["batch"], "b");
        assert_eq!(json["writtenAt"], "1970-01-01T00:00:00.000Z");
        assert_eq!(json["objects"][0]["key"], "k");
        assert_eq!(json["objects"][0]["events"], 2);
    }
}
