//! `runbook publish`: a runbook made an Automation document in SSM. A new name is created
//! (CreateDocument); a changed document becomes a new version made the default (UpdateDocument,
//! UpdateDocumentDefaultVersion); content SSM already holds publishes nothing, or makes the
//! version that holds it the default again. Attachments a document declares under `files` are
//! uploaded to S3 first, where SSM takes them from.

use serde_json::{Value, json};

use crate::aws;

/// AWS's limit on a document's size.
pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("`{name}` cannot name a document: {reason}")]
    Name { name: String, reason: &'static str },
    #[error("the document is {size} bytes, over SSM's limit of {MAX_DOCUMENT_BYTES} (64 KB)")]
    TooLarge { size: usize },
    #[error("attachment `{name}`: {reason}")]
    Attachment { name: String, reason: String },
    #[error("the document has attachments ({names}): give --attachments s3://BUCKET/PREFIX to upload them")]
    NoAttachmentsPlace { names: String },
    #[error("SSM did not take `{name}` version {version}: {why}")]
    Rejected { name: String, version: String, why: String },
    #[error("failed to publish `{name}`: {source}")]
    Aws { name: String, source: Box<aws::Error> },
}

/// What to publish.
pub struct Document<'a> {
    pub name: &'a str,
    pub content: &'a str,
    /// `YAML` or `JSON`.
    pub format: &'a str,
    /// Files the document declares under `files`, each with its bytes.
    pub attachments: Vec<(String, Vec<u8>)>,
    /// Where attachments go: `s3://BUCKET/PREFIX`.
    pub attachments_url: Option<&'a str>,
}

/// What publishing did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Published {
    Created {
        version: String,
    },
    Updated {
        version: String,
    },
    /// SSM already held this content as its default version.
    Unchanged {
        version: String,
    },
    /// An older version held this content: it is the default again.
    Defaulted {
        version: String,
    },
}

impl Published {
    pub fn version(&self) -> &str {
        match self {
            Published::Created { version }
            | Published::Updated { version }
            | Published::Unchanged { version }
            | Published::Defaulted { version } => version,
        }
    }

    pub fn action(&self) -> &'static str {
        match self {
            Published::Created { .. } => "created",
            Published::Updated { .. } => "updated",
            Published::Unchanged { .. } => "unchanged",
            Published::Defaulted { .. } => "defaulted",
        }
    }
}

/// Checks a document name as SSM does: 3 to 128 of `[a-zA-Z0-9_.-]`, and not one of the
/// prefixes AWS keeps for its own documents.
pub fn check_name(name: &str) -> Result<(), Error> {
    let refuse = |reason| Err(Error::Name { name: name.to_owned(), reason });
    if let Some(problem) = super::documents::name_problem(name) {
        return refuse(problem);
    }
    let lower = name.to_ascii_lowercase();
    if ["aws", "amazon", "amzn"].iter().any(|prefix| lower.starts_with(prefix)) {
        return refuse("names starting with AWS, Amazon or amzn are kept for AWS's own documents");
    }
    Ok(())
}

/// Publishes `document`.
pub async fn publish(client: &aws::Aws, document: &Document<'_>) -> Result<Published, Error> {
    check_name(document.name)?;
    if document.content.len() > MAX_DOCUMENT_BYTES {
        return Err(Error::TooLarge { size: document.content.len() });
    }
    let failed = |source| Error::Aws { name: document.name.to_owned(), source: Box::new(source) };
    let sources = upload(client, document).await?;
    let wanted = parse(document.content);
    let current = match call(client, "GetDocument", json!({ "Name": document.name })).await {
        Ok(current) => Some(current),
        Err(error) if matches!(error.code(), Some("InvalidDocument")) => None,
        Err(error) => return Err(failed(error)),
    };
    let Some(current) = current else {
        let mut params = json!({
            "Name": document.name, "Content": document.content,
            "DocumentType": "Automation", "DocumentFormat": document.format,
        });
        if !sources.is_empty() {
            params["Attachments"] = json!(sources);
        }
        let created = call(client, "CreateDocument", params).await.map_err(failed)?;
        let version = created["DocumentDescription"]["DocumentVersion"].as_str().unwrap_or("1").to_owned();
        active(client, document.name, &version).await?;
        return Ok(Published::Created { version });
    };
    if current["Content"].as_str().map(parse) == Some(wanted.clone()) {
        let version = current["DocumentVersion"].as_str().unwrap_or_default().to_owned();
        return Ok(Published::Unchanged { version });
    }
    let mut params = json!({
        "Name": document.name, "Content": document.content,
        "DocumentVersion": "$LATEST", "DocumentFormat": document.format,
    });
    if !sources.is_empty() {
        params["Attachments"] = json!(sources);
    }
    let version = match call(client, "UpdateDocument", params).await {
        Ok(updated) => updated["DocumentDescription"]["DocumentVersion"].as_str().unwrap_or_default().to_owned(),
        Err(error) if matches!(error.code(), Some("DuplicateDocumentContent")) => {
            let version = holding(client, document.name, &wanted).await?;
            make_default(client, document.name, &version).await.map_err(failed)?;
            return Ok(Published::Defaulted { version });
        }
        Err(error) => return Err(failed(error)),
    };
    active(client, document.name, &version).await?;
    make_default(client, document.name, &version).await.map_err(failed)?;
    Ok(Published::Updated { version })
}

/// Waits (up to a minute) until SSM has processed a new version: Creating or Updating, then
/// Active, or Failed with why (an attachment it could not fetch, say).
async fn active(client: &aws::Aws, name: &str, version: &str) -> Result<(), Error> {
    let failed = |source| Error::Aws { name: name.to_owned(), source: Box::new(source) };
    let rejected = |why: String| Error::Rejected { name: name.to_owned(), version: version.to_owned(), why };
    let mut wait = std::time::Duration::from_millis(200);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let params = json!({ "Name": name, "DocumentVersion": version });
        let described = call(client, "DescribeDocument", params).await.map_err(failed)?;
        let document = &described["Document"];
        match document["Status"].as_str().unwrap_or("Active") {
            "Active" => return Ok(()),
            "Failed" => {
                return Err(rejected(document["StatusInformation"].as_str().unwrap_or("no reason given").to_owned()));
            }
            status if tokio::time::Instant::now() >= deadline => {
                return Err(rejected(format!("still {status} after a minute")));
            }
            _ => {
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(std::time::Duration::from_secs(5));
            }
        }
    }
}

/// A document's content as data: SSM may hand back YAML as JSON, or reformatted.
fn parse(content: &str) -> Value {
    crate::document::load(String::new(), content.as_bytes().to_vec(), None).value.unwrap_or(Value::Null)
}

async fn make_default(client: &aws::Aws, name: &str, version: &str) -> Result<(), aws::Error> {
    call(client, "UpdateDocumentDefaultVersion", json!({ "Name": name, "DocumentVersion": version })).await?;
    Ok(())
}

/// The version of `name` whose content is `wanted` (SSM said one holds it), the newest first.
async fn holding(client: &aws::Aws, name: &str, wanted: &Value) -> Result<String, Error> {
    let failed = |source| Error::Aws { name: name.to_owned(), source: Box::new(source) };
    let described = call(client, "DescribeDocument", json!({ "Name": name })).await.map_err(failed)?;
    let latest: u64 = described["Document"]["LatestVersion"].as_str().and_then(|v| v.parse().ok()).unwrap_or(1);
    for version in (1..=latest).rev() {
        let params = json!({ "Name": name, "DocumentVersion": version.to_string() });
        let document = call(client, "GetDocument", params).await.map_err(failed)?;
        if document["Content"].as_str().map(parse).as_ref() == Some(wanted) {
            return Ok(version.to_string());
        }
    }
    // SSM compares the text; this compares the data, and found none equal.
    Err(Error::Rejected {
        name: name.to_owned(),
        version: format!("1-{latest}"),
        why: "SSM says a version holds this content, but none reads the same here".into(),
    })
}

/// Uploads the attachments (checked against the checksums the document declares); the
/// `Attachments` entries that point SSM at them.
async fn upload(client: &aws::Aws, document: &Document<'_>) -> Result<Vec<Value>, Error> {
    if document.attachments.is_empty() {
        return Ok(Vec::new());
    }
    let refuse = |name: &str, reason: String| Error::Attachment { name: name.to_owned(), reason };
    let Some(url) = document.attachments_url else {
        let names: Vec<&str> = document.attachments.iter().map(|(name, _)| name.as_str()).collect();
        return Err(Error::NoAttachmentsPlace { names: names.join(", ") });
    };
    let Some((bucket, prefix)) = url.strip_prefix("s3://").map(|rest| rest.split_once('/').unwrap_or((rest, "")))
    else {
        return Err(refuse(&document.attachments[0].0, format!("`{url}` is not s3://BUCKET/PREFIX")));
    };
    let declared = parse(document.content);
    let mut sources = Vec::new();
    for (name, bytes) in &document.attachments {
        let hash = crate::exec::content_hash(bytes);
        let expected =
            declared.pointer(&format!("/files/{}/checksums/sha256", name.replace('~', "~0").replace('/', "~1")));
        if expected.and_then(Value::as_str).is_some_and(|expected| !expected.eq_ignore_ascii_case(&hash)) {
            return Err(refuse(name, format!("its sha256 is {hash}, not the checksum the document declares")));
        }
        let key = [prefix.trim_end_matches('/'), name]
            .iter()
            .filter(|part| !part.is_empty())
            .cloned()
            .collect::<Vec<_>>()
            .join("/");
        let params = json!({ "Bucket": bucket, "Key": key });
        let params = params.as_object().cloned().unwrap_or_default();
        let put = aws::Call { service: "s3", api: "PutObject", params: &params, role: None, token_seed: "" };
        client
            .call_with_body(&put, Some(bytes.clone()))
            .await
            .map_err(|error| refuse(name, format!("upload to s3://{bucket}/{key}: {error}")))?;
        sources.push(json!({ "Key": "S3FileUrl", "Values": [format!("s3://{bucket}/{key}")], "Name": name }));
    }
    Ok(sources)
}

async fn call(client: &aws::Aws, api: &str, params: Value) -> Result<Value, aws::Error> {
    client.request("ssm", api, params).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_ssm_rules_and_keep_out_of_aws_prefixes() {
        assert!(check_name("team.restart-web_1").is_ok());
        for (name, reason) in [
            ("ab", "3 to 128"),
            ("has space", "only letters"),
            ("AWS-RestartEC2Instance", "kept for AWS"),
            ("amazonThing", "kept for AWS"),
        ] {
            let error = check_name(name).unwrap_err().to_string();
            assert!(error.contains(reason), "{name}: {error}");
        }
    }
}
