//! Runbooks by name: `ssm:NAME`, `ssm:NAME:VERSION` or `ssm:ARN` is fetched with GetDocument
//! and kept in a cache folder (the state directory's `documents/`) as `NAME/HASH.yaml`, so an
//! execution records a file that stays as it ran, and a resume reads it without AWS. A
//! numbered version never changes in SSM, so one found in the cache is not fetched again; a
//! name without a version (the default version) or `$LATEST` is asked for every time.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::aws;

/// The prefix that names a document in SSM instead of a file.
pub const PREFIX: &str = "ssm:";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("`{given}` is not a document reference: {reason} (expected ssm:NAME, ssm:NAME:VERSION or ssm:ARN)")]
    Reference { given: String, reason: String },
    #[error("no Automation document `{name}`{} in SSM ({source})", version_shown(.version.as_deref()))]
    NotFound { name: String, version: Option<String>, source: Box<aws::Error> },
    #[error("failed to fetch document `{name}` from SSM: {source}")]
    Fetch { name: String, source: Box<aws::Error> },
    #[error("document `{name}` is a {kind} document; runbook runs Automation documents")]
    NotAutomation { name: String, kind: String },
    #[error("document `{name}` came back without content")]
    Empty { name: String },
    #[error("failed to use the document cache {}: {source}", path.display())]
    Cache { path: PathBuf, source: std::io::Error },
}

fn version_shown(version: Option<&str>) -> String {
    version.map(|version| format!(" version {version}")).unwrap_or_default()
}

/// A document named in SSM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    /// The name, or the ARN of a document shared from another account.
    pub name: String,
    /// A version number, `$LATEST` or `$DEFAULT`; none for the default version.
    pub version: Option<String>,
}

impl Reference {
    /// `Some` when `given` names a document in SSM (it starts with `ssm:`).
    pub fn parse(given: &str) -> Option<Result<Reference, Error>> {
        let rest = given.strip_prefix(PREFIX)?;
        let refuse = |reason: &str| Error::Reference { given: given.to_owned(), reason: reason.to_owned() };
        // An ARN holds five colons of its own; a version follows a sixth.
        let split_at =
            if rest.starts_with("arn:") { rest.match_indices(':').nth(5) } else { rest.find(':').map(|i| (i, ":")) };
        let (name, version) = match split_at {
            Some((at, _)) => (&rest[..at], Some(&rest[at + 1..])),
            None => (rest, None),
        };
        // A plain name has no `/`; an ARN is arn:PARTITION:ssm:REGION:ACCOUNT:document/NAME.
        let short = match name.strip_prefix("arn:") {
            Some(arn) => {
                let parts: Vec<&str> = arn.splitn(5, ':').collect();
                let well_formed = matches!(parts.as_slice(), [partition, "ssm", region, account, resource]
                    if !partition.is_empty()
                        && region.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                        && account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit())
                        && resource.starts_with("document/") && !resource[9..].contains('/'));
                if !well_formed {
                    return Some(Err(refuse("an ARN is arn:PARTITION:ssm:REGION:ACCOUNT:document/NAME")));
                }
                name.rsplit('/').next().unwrap_or(name)
            }
            None => name,
        };
        if let Some(problem) = name_problem(short) {
            return Some(Err(refuse(problem)));
        }
        if let Some(version) = version {
            let number =
                !version.is_empty() && !version.starts_with('0') && version.bytes().all(|b| b.is_ascii_digit());
            if !number && version != "$LATEST" && version != "$DEFAULT" {
                return Some(Err(refuse("a version is a number, $LATEST or $DEFAULT")));
            }
        }
        Some(Ok(Reference { name: name.to_owned(), version: version.map(str::to_owned) }))
    }

    /// The document's name without an ARN's account and region.
    pub fn short_name(&self) -> &str {
        self.name.rsplit('/').next().unwrap_or(&self.name)
    }

    /// Its folder in the cache: the short name, and the account for a shared document.
    fn folder(&self, cache: &Path) -> PathBuf {
        let account = self.name.strip_prefix("arn:").and_then(|arn| arn.split(':').nth(3)).filter(|a| !a.is_empty());
        match account {
            Some(account) => cache.join(format!("{account}.{}", self.short_name())),
            None => cache.join(self.short_name()),
        }
    }

    fn pinned(&self) -> Option<&str> {
        self.version.as_deref().filter(|version| version.bytes().all(|b| b.is_ascii_digit()))
    }
}

/// What makes `name` no document name SSM takes (3 to 128 of `[a-zA-Z0-9_.-]`), if anything.
pub fn name_problem(name: &str) -> Option<&'static str> {
    if name.len() < 3 || name.len() > 128 {
        return Some("a document name has 3 to 128 characters");
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')) {
        return Some("a document name has only letters, digits, `_`, `-` and `.`");
    }
    None
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.version {
            Some(version) => write!(f, "{PREFIX}{}:{version}", self.name),
            None => write!(f, "{PREFIX}{}", self.name),
        }
    }
}

/// A document fetched (or found in the cache): the file to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fetched {
    pub path: PathBuf,
    pub name: String,
    pub version: String,
    /// Hex SHA-256 of the content.
    pub hash: String,
    /// Found in the cache without asking SSM.
    pub cached: bool,
}

/// The versions of one document the cache holds: version number -> content hash and format.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Index {
    versions: std::collections::BTreeMap<String, (String, String)>,
}

const INDEX: &str = "versions.json";

/// The file for `reference`: from the cache when it names a version the cache holds, else
/// fetched with GetDocument and cached.
pub async fn fetch(client: &aws::Aws, cache: &Path, reference: &Reference) -> Result<Fetched, Error> {
    let folder = reference.folder(cache);
    let cache_error = |path: &Path| {
        let path = path.to_owned();
        move |source| Error::Cache { path, source }
    };
    let index_path = folder.join(INDEX);
    let mut index: Index =
        std::fs::read(&index_path).ok().and_then(|bytes| serde_json::from_slice(&bytes).ok()).unwrap_or_default();
    if let Some(version) = reference.pinned()
        && let Some((hash, extension)) = index.versions.get(version)
    {
        let path = folder.join(format!("{hash}.{extension}"));
        if std::fs::read(&path).is_ok_and(|bytes| crate::exec::content_hash(&bytes) == *hash) {
            return Ok(Fetched {
                path,
                name: reference.name.clone(),
                version: version.to_owned(),
                hash: hash.clone(),
                cached: true,
            });
        }
    }
    let mut params = json!({ "Name": reference.name });
    if let Some(version) = &reference.version {
        params["DocumentVersion"] = json!(version);
    }
    let document = client.request("ssm", "GetDocument", params).await.map_err(|source| match &source {
        aws::Error::Service { error, .. }
            if matches!(
                error.code.as_str(),
                "InvalidDocument" | "InvalidDocumentVersion" | "AccessDeniedException"
            ) =>
        {
            Error::NotFound {
                name: reference.name.clone(),
                version: reference.version.clone(),
                source: Box::new(source),
            }
        }
        _ => Error::Fetch { name: reference.name.clone(), source: Box::new(source) },
    })?;
    let kind = document["DocumentType"].as_str().unwrap_or("Automation");
    if kind != "Automation" {
        return Err(Error::NotAutomation { name: reference.name.clone(), kind: kind.to_owned() });
    }
    let content = document["Content"].as_str().filter(|content| !content.is_empty());
    let Some(content) = content else { return Err(Error::Empty { name: reference.name.clone() }) };
    let extension = if document["DocumentFormat"].as_str() == Some("JSON") { "json" } else { "yaml" };
    let version = document["DocumentVersion"].as_str().unwrap_or_default().to_owned();
    let hash = crate::exec::content_hash(content.as_bytes());
    let path = folder.join(format!("{hash}.{extension}"));
    std::fs::create_dir_all(&folder).map_err(cache_error(&folder))?;
    crate::journal::write_whole(&path, content.as_bytes()).map_err(cache_error(&path))?;
    if !version.is_empty() {
        index.versions.insert(version.clone(), (hash.clone(), extension.to_owned()));
        let bytes = serde_json::to_vec_pretty(&index).unwrap_or_default();
        crate::journal::write_whole(&index_path, &bytes).map_err(cache_error(&index_path))?;
    }
    Ok(Fetched { path, name: reference.name.clone(), version, hash, cached: false })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(given: &str) -> Result<Reference, String> {
        Reference::parse(given).expect("an ssm: reference").map_err(|error| error.to_string())
    }

    #[test]
    fn references_name_a_document_a_version_or_an_arn() {
        let plain = parsed("ssm:AWS-RestartEC2Instance").unwrap();
        assert_eq!((plain.name.as_str(), plain.version), ("AWS-RestartEC2Instance", None));
        let versioned = parsed("ssm:Team.Restart_1:12").unwrap();
        assert_eq!(versioned.version.as_deref(), Some("12"));
        assert_eq!(parsed("ssm:Restart:$LATEST").unwrap().version.as_deref(), Some("$LATEST"));
        let arn = parsed("ssm:arn:aws:ssm:eu-west-1:111122223333:document/Shared-Doc:3").unwrap();
        assert_eq!(arn.name, "arn:aws:ssm:eu-west-1:111122223333:document/Shared-Doc");
        assert_eq!((arn.short_name(), arn.version.as_deref()), ("Shared-Doc", Some("3")));
        assert_eq!(arn.folder(Path::new("/c")), Path::new("/c/111122223333.Shared-Doc"));
        assert_eq!(arn.to_string(), "ssm:arn:aws:ssm:eu-west-1:111122223333:document/Shared-Doc:3");
        assert!(Reference::parse("runbook.yaml").is_none());
    }

    #[test]
    fn malformed_references_say_what_is_wrong() {
        assert!(parsed("ssm:ab").unwrap_err().contains("3 to 128 characters"));
        assert!(parsed("ssm:My Doc").unwrap_err().contains("only letters"));
        assert!(parsed("ssm:Doc:01").unwrap_err().contains("a version is a number"));
        assert!(parsed("ssm:Doc:").unwrap_err().contains("a version is a number"));
        assert!(parsed("ssm:team/Doc").unwrap_err().contains("only letters"));
        assert!(parsed("ssm:arn:aws:ssm:r:../../x:document/Doc").unwrap_err().contains("an ARN is"));
        assert!(parsed("ssm:arn:aws:ssm:eu-west-1:111122223333:document/a/b").unwrap_err().contains("an ARN is"));
    }
}
