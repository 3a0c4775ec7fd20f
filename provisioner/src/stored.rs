//! What the bucket holds. For `status`, what it received in a time window: event objects written
//! (from the processor's manifests) and failed records (under Firehose's error prefix), each one
//! bounded listing from the window's start, whatever the bucket holds from before it. For
//! `down --delete-bucket`, every object version, deleted. For `verify` and `replay`, one object.
//!
//! S3 lists keys in order, never by write time (ListObjectsV2), so each listing starts at the
//! first key that can hold an object written in the window and counts objects whose
//! `LastModified` is in it.

use std::time::Duration;

use das_processor::manifest;
use das_processor::route::UtcHour;

use aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Output;

use crate::aws::{AwsError, Named as _};

/// Firehose's error prefix (`desired::ERROR_PREFIX`): one folder per error output type, then
/// the day.
const ERRORS: &str = "errors/";

/// What `empty` did.
#[derive(Debug, Default)]
pub struct Emptied {
    pub deleted: usize,
    /// Versions S3 refused to delete (Object Lock, a legal hold, a policy), with its reason.
    pub refused: Vec<Refused>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub key: String,
    pub version: Option<String>,
    /// When the version was written (Unix milliseconds), if S3 said.
    pub written_millis: Option<i64>,
    pub code: String,
    pub message: String,
}

/// Deletes every object version and delete marker (a versioned bucket keeps both), a
/// thousand per request (DeleteObjects' limit), page by page. A version S3 refuses to delete
/// (DeleteObjects answers 200 with a per-object error list: DeleteObjects API reference) is
/// recorded and passed over, so that one locked version does not keep the rest; the listing is
/// repeated until a pass finds nothing more to delete.
pub async fn empty(s3: &aws_sdk_s3::Client, bucket: &str) -> Result<Emptied, AwsError> {
    use aws_sdk_s3::types::{Delete, ObjectIdentifier};
    let what = format!("bucket {bucket}");
    let bad = |e: aws_sdk_s3::error::BuildError| {
        AwsError::invalid("s3:DeleteObjectVersion", bucket, e.to_string())
    };
    let mut out = Emptied::default();
    loop {
        let mut deleted_in_pass = 0;
        let mut refused = Vec::new();
        let (mut key_marker, mut version_marker) = (None, None);
        loop {
            let page = s3
                .list_object_versions()
                .bucket(bucket)
                .set_key_marker(key_marker.take())
                .set_version_id_marker(version_marker.take())
                .send()
                .await
                .named("s3:ListBucketVersions", &what)?;
            let versions = page
                .versions()
                .iter()
                .map(|v| (v.key(), v.version_id(), v.last_modified()));
            let markers = page
                .delete_markers()
                .iter()
                .map(|m| (m.key(), m.version_id(), m.last_modified()));
            let ids: Vec<_> = versions.chain(markers).collect();
            for chunk in ids.chunks(1000) {
                let objects = chunk
                    .iter()
                    .map(|(key, version, _)| {
                        ObjectIdentifier::builder()
                            .key(key.unwrap_or_default())
                            .set_version_id(version.map(str::to_owned))
                            .build()
                            .map_err(bad)
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let delete = Delete::builder()
                    .set_objects(Some(objects))
                    .quiet(true)
                    .build()
                    .map_err(bad)?;
                let answer = s3
                    .delete_objects()
                    .bucket(bucket)
                    .delete(delete)
                    .send()
                    .await
                    .named("s3:DeleteObjectVersion", &what)?;
                let errors = answer.errors();
                for e in errors {
                    let written = chunk
                        .iter()
                        .find(|(k, v, _)| *k == e.key() && *v == e.version_id())
                        .and_then(|(_, _, when)| when.and_then(|t| t.to_millis().ok()));
                    refused.push(Refused {
                        key: e.key().unwrap_or_default().to_owned(),
                        version: e.version_id().map(str::to_owned),
                        written_millis: written,
                        code: e.code().unwrap_or_default().to_owned(),
                        message: e.message().unwrap_or_default().to_owned(),
                    });
                }
                deleted_in_pass += chunk.len().saturating_sub(errors.len());
            }
            if page.is_truncated() != Some(true) {
                break;
            }
            key_marker = page.next_key_marker().map(str::to_owned);
            version_marker = page.next_version_id_marker().map(str::to_owned);
            if key_marker.is_none() {
                break;
            }
        }
        out.deleted += deleted_in_pass;
        if deleted_in_pass == 0 || !refused.is_empty() {
            out.refused = refused;
            return Ok(out);
        }
    }
}

/// Event objects written in the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Written {
    /// Processor invocations that wrote events (one manifest each).
    pub batches: usize,
    /// When the newest was written (Unix milliseconds).
    pub newest_millis: Option<i64>,
}

/// The processor's manifests under `<prefix>_manifests/` written at or after `window_start`
/// (Unix milliseconds). Manifests are filed by the hour they were written, so the listing starts
/// an hour before the window's (a Lambda clock a little behind S3's) and reads nothing older.
pub async fn written(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
    window_start: i64,
) -> Result<Written, AwsError> {
    let folder = format!("{prefix}{}", manifest::FOLDER);
    let first = UtcHour::from_epoch_millis(window_start - 3_600_000);
    let mut out = Written::default();
    each_since(
        s3,
        bucket,
        &folder,
        &first.to_string(),
        window_start,
        |modified| {
            out.batches += 1;
            out.newest_millis = out.newest_millis.max(Some(modified));
        },
    )
    .await?;
    Ok(out)
}

/// Objects under `errors/` written at or after `window_start`. Firehose files them by error output
/// type, then by the day of the *arrival* of the oldest record in the object (Firehose Developer
/// Guide, "Custom Prefixes for Amazon S3 Objects": "Firehose uses the approximate arrival
/// timestamp of the oldest record that's contained in the Amazon S3 object being written"). A
/// record reaches Firehose within the stream's retention and Firehose keeps retrying for up to 24
/// hours, so an object written in the window is in a day folder no older than
/// `window_start - lookback`, with `lookback` = retention + 24 h.
pub async fn failed(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    window_start: i64,
    lookback: Duration,
) -> Result<usize, AwsError> {
    let lookback = i64::try_from(lookback.as_millis()).unwrap_or(i64::MAX);
    let first = UtcHour::from_epoch_millis(window_start.saturating_sub(lookback));
    // `yyyy/MM/dd` of that hour: the error prefix has day folders.
    let first_day = first.to_string()[..10].to_owned();
    let mut types = Vec::new();
    each_page(s3, bucket, ERRORS, None, Some("/"), |page| {
        types.extend(
            page.common_prefixes()
                .iter()
                .filter_map(|p| p.prefix().map(str::to_owned)),
        );
    })
    .await?;
    let mut count = 0;
    for folder in types {
        each_since(s3, bucket, &folder, &first_day, window_start, |_| {
            count += 1
        })
        .await?;
    }
    Ok(count)
}

/// Calls `seen` with the `LastModified` of every object under `folder` after `folder + from` whose
/// `LastModified` is at or after `window_start`.
async fn each_since(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    folder: &str,
    from: &str,
    window_start: i64,
    mut seen: impl FnMut(i64),
) -> Result<(), AwsError> {
    let start_after = format!("{folder}{from}");
    each_page(s3, bucket, folder, Some(start_after), None, |page| {
        for o in page.contents() {
            let modified = o.last_modified().and_then(|t| t.to_millis().ok());
            if let Some(modified) = modified.filter(|m| *m >= window_start) {
                seen(modified);
            }
        }
    })
    .await
}

/// Every page of one `ListObjectsV2` listing.
async fn each_page(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
    start_after: Option<String>,
    delimiter: Option<&str>,
    mut page: impl FnMut(&ListObjectsV2Output),
) -> Result<(), AwsError> {
    let what = format!("bucket {bucket}");
    let mut token = None;
    loop {
        let out = s3
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .set_start_after(start_after.clone())
            .set_delimiter(delimiter.map(str::to_owned))
            .set_continuation_token(token)
            .send()
            .await
            .named("s3:ListBucket", &what)?;
        page(&out);
        token = out.next_continuation_token().map(str::to_owned);
        if token.is_none() {
            return Ok(());
        }
    }
}

/// One object's bytes; `None` when S3 has no such key.
pub async fn get(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
) -> Result<Option<Vec<u8>>, AwsError> {
    let what = format!("s3://{bucket}/{key}");
    let out = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .or_absent("s3:GetObject", &what, |e| e.is_no_such_key())?;
    let Some(out) = out else { return Ok(None) };
    let body = out
        .body
        .collect()
        .await
        .map_err(|e| AwsError::invalid("s3:GetObject", &what, e.to_string()))?;
    Ok(Some(body.into_bytes().to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake_s3::FakeS3;

    const HOUR: i64 = 3_600_000;
    /// 2027-12-31T23:30:00Z: the window crosses no date of the tests' making.
    const NOW: i64 = 1_830_295_800_000;

    fn day_folder(millis: i64) -> String {
        UtcHour::from_epoch_millis(millis).to_string()[..10].to_owned()
    }

    #[tokio::test]
    async fn recent_failures_are_found_behind_many_old_ones() {
        // Regression: the check listed errors/ from the oldest object and gave up after 20
        // pages, so a bucket with 20,000 old failures reported none while new ones arrived.
        let s3 = FakeS3::default();
        for i in 0..25_000 {
            let written = NOW - 30 * 24 * HOUR + i;
            s3.put(
                &format!(
                    "errors/processing-failed/{}/old-{i:05}",
                    day_folder(written)
                ),
                written,
            );
        }
        // Written now, about a record that arrived 30 hours ago (a day folder before the window's).
        let arrived = NOW - 30 * HOUR;
        s3.put(
            &format!("errors/processing-failed/{}/late", day_folder(arrived)),
            NOW - 60_000,
        );
        s3.put(
            &format!("errors/format-conversion-failed/{}/x", day_folder(NOW)),
            NOW - 1,
        );
        let window_start = NOW - HOUR;
        let count = failed(
            &s3.client(),
            "b",
            window_start,
            Duration::from_secs(48 * 3600),
        )
        .await
        .unwrap();
        assert_eq!(count, 2);
        // One listing of the types, one of each type's recent days: the old objects are never read.
        assert_eq!(s3.requests().len(), 3, "{:?}", s3.requests());
    }

    #[tokio::test]
    async fn writes_in_the_window_count_whatever_folder_their_events_went_to() {
        let s3 = FakeS3::default();
        // Thousands of manifests from last month, then one from 20 minutes ago: listed from an hour
        // before the window, whatever the listing holds from before.
        for i in 0..5_000 {
            let written = NOW - 40 * 24 * HOUR + i * 1000;
            s3.put(
                &manifest::key("parsed/", written, &format!("old-{i:05}")),
                written,
            );
        }
        s3.put(
            &manifest::key("parsed/", NOW - 20 * 60_000, "new"),
            NOW - 20 * 60_000,
        );
        // An event object in a folder of three days ago, written just now: what the manifest of
        // its batch (above) stands for; event folders are never listed.
        s3.put("parsed/DDL/2027/12/28/10/new.json.gz", NOW - 20 * 60_000);
        let got = written(&s3.client(), "b", "parsed/", NOW - HOUR)
            .await
            .unwrap();
        assert_eq!(
            got,
            Written {
                batches: 1,
                newest_millis: Some(NOW - 20 * 60_000)
            }
        );
        assert_eq!(s3.requests().len(), 1, "{:?}", s3.requests());
        // A window with nothing in it.
        let none = written(&s3.client(), "b", "parsed/", NOW - 10 * 60_000)
            .await
            .unwrap();
        assert_eq!(none, Written::default());
    }
}
