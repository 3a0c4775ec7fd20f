//! Reading back what the processor wrote: gzip'd NDJSON objects, and the test events in them.

use std::collections::BTreeMap;
use std::io::Read as _;

use serde_json::Value;

/// The processor's manifests of what each invocation wrote (not event objects).
pub fn is_manifest(key: &str) -> bool {
    key.contains(das_processor::manifest::FOLDER)
}

/// An integrity digest, not an event object.
pub fn is_digest(key: &str) -> bool {
    key.contains(das_processor::digest::FOLDER)
}

/// (key, line) for every line of a gzip'd NDJSON object.
pub fn object_lines(key: &str, body: &[u8]) -> Vec<(String, Value)> {
    let mut text = String::new();
    flate2::read::MultiGzDecoder::new(body)
        .read_to_string(&mut text)
        .unwrap();
    text.lines()
        .map(|line| (key.to_owned(), serde_json::from_str(line).unwrap()))
        .collect()
}

/// testId -> category of every event that landed; panics on a duplicate or a misfiled event.
pub fn landed(lines: Vec<(String, Value)>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (key, line) in lines {
        let category = line["category"].as_str().unwrap().to_owned();
        assert!(
            key.starts_with(&format!("parsed/{category}/")),
            "{key} holds a {category} event"
        );
        assert!(key.ends_with(".json.gz"), "{key}");
        let id = line["testId"].as_str().unwrap().to_owned();
        assert!(
            out.insert(id.clone(), category).is_none(),
            "event {id} landed twice"
        );
    }
    out
}
