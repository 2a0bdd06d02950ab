//! `runbook publish`: a runbook checked for what SSM would not run, then made an Automation
//! document in SSM (`ssm::publish`). `runbook run --on ssm FILE` publishes the same way.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::{Args, ValueEnum};
use serde_json::json;

use super::{UsageError, exit, report_invalid, run};
use crate::document::{self, Format};
use crate::ssm::publish::{self, Published};
use crate::validate::{self, portable};

#[derive(Debug, Args)]
pub struct PublishArgs {
    /// The runbook file.
    #[arg(value_name = "FILE")]
    path: PathBuf,
    #[command(flatten)]
    pub target: PublishTarget,
    #[command(flatten)]
    aws: run::AwsArgs,
    #[arg(long, value_enum, default_value_t = PublishFormat::Text)]
    pub format: PublishFormat,
}

/// Where and how a runbook is published; shared with `run --on ssm`.
#[derive(Debug, Args)]
pub struct PublishTarget {
    /// The document's name in SSM (default: the file's name without its extension).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Remove engine extensions (x-locks, x-undo, x-rollback, x-secret, ...) instead of
    /// refusing them, with a warning of what each one's absence changes.
    #[arg(long)]
    pub strip_extensions: bool,
    /// Where the files the runbook attaches (`files:`) are uploaded for SSM: s3://BUCKET/PREFIX.
    #[arg(long, value_name = "s3://BUCKET/PREFIX")]
    pub attachments: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PublishFormat {
    Text,
    /// One JSON object: name, version, what was done, the warnings.
    Json,
}

/// A runbook ready to publish.
pub struct Ready {
    pub name: String,
    pub content: String,
    pub format: &'static str,
    pub attachments: Vec<(String, Vec<u8>)>,
    /// The extensions removed, as warnings for people.
    pub warnings: Vec<String>,
}

/// Loads, validates and checks `path` for SSM; `Err(code)` after reporting why it cannot be
/// published (the runbook's findings, as `validate` shows them).
pub fn ready(
    path: &Path,
    target: &PublishTarget,
    json: bool,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> anyhow::Result<Result<Ready, u8>> {
    let loaded = document::load_path(path).map_err(|e| UsageError(format!("{e:#}: {}", e.source)))?;
    let value = loaded.value.clone();
    let mut validated = validate::validate(loaded, &validate::Config::default());
    crate::plan::check(&mut validated);
    let checked = value.as_ref().map(|value| portable::check(value, target.strip_extensions));
    if let Some(checked) = &checked {
        validated.add(checked.diagnostics.clone());
    }
    if validated.errors() > 0 {
        return Ok(Err(report_invalid(&validated, json, false, stdout, stderr)?));
    }
    let name = match &target.name {
        Some(name) => name.clone(),
        None => path.file_stem().map(|stem| stem.to_string_lossy().into_owned()).unwrap_or_default(),
    };
    publish::check_name(&name).map_err(|error| UsageError(format!("{error} (give another with --name)")))?;
    let source = validated.source();
    let (content, format) = match checked.and_then(|checked| checked.stripped) {
        // Without the extensions the document is written anew, as JSON (comments are lost).
        Some(stripped) => (serde_json::to_string_pretty(&stripped)?, "JSON"),
        None => (source.text.clone(), if source.format == Format::Json { "JSON" } else { "YAML" }),
    };
    if content.len() > publish::MAX_DOCUMENT_BYTES {
        writeln!(stderr, "error: {}", publish::Error::TooLarge { size: content.len() })?;
        return Ok(Err(exit::INVALID));
    }
    let warnings = validated
        .diagnostics
        .iter()
        .filter(|d| d.code == crate::diagnostic::Code::NotPortable)
        .map(|d| {
            let at = d.location.map(|l| format!("{}:{}:{}: ", source.name, l.line, l.column)).unwrap_or_default();
            format!("{at}{}", d.message)
        })
        .collect();
    let folder = path.parent().unwrap_or(Path::new("."));
    let mut attachments = Vec::new();
    for file in validated.runbook.as_ref().map(|runbook| runbook.files.as_slice()).unwrap_or_default() {
        // A file beside the runbook, never one elsewhere on this machine.
        if file.name.contains(['/', '\\']) || file.name.starts_with('.') {
            bail!(UsageError(format!("attachment `{}` must name a file beside the runbook", file.name)));
        }
        let local = folder.join(&file.name);
        let bytes = std::fs::read(&local)
            .with_context(|| format!("failed to read attachment {} (beside the runbook)", local.display()))?;
        attachments.push((file.name.clone(), bytes));
    }
    Ok(Ok(Ready { name, content, format, attachments, warnings }))
}

/// Publishes `ready` to SSM.
pub fn publish_ready(ready: &Ready, target: &PublishTarget, aws: &crate::aws::Aws) -> anyhow::Result<Published> {
    let document = publish::Document {
        name: &ready.name,
        content: &ready.content,
        format: ready.format,
        attachments: ready.attachments.clone(),
        attachments_url: target.attachments.as_deref(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    match runtime.block_on(publish::publish(aws, &document)) {
        Ok(published) => Ok(published),
        // The caller's to give: a usage error.
        Err(error @ publish::Error::NoAttachmentsPlace { .. }) => Err(UsageError(error.to_string()).into()),
        Err(error) => Err(error.into()),
    }
}

pub fn publish_command(args: PublishArgs, stdout: &mut dyn Write, stderr: &mut dyn Write) -> anyhow::Result<u8> {
    let json = args.format == PublishFormat::Json;
    let ready = match ready(&args.path, &args.target, json, stdout, stderr)? {
        Ok(ready) => ready,
        Err(code) => return Ok(code),
    };
    for warning in &ready.warnings {
        writeln!(stderr, "warning: {warning}")?;
    }
    let aws = crate::aws::Aws::new(args.aws.settings());
    let published = publish_ready(&ready, &args.target, &aws)?;
    if json {
        let document = json!({
            "name": ready.name, "version": published.version(), "action": published.action(),
            "format": ready.format, "warnings": ready.warnings,
        });
        writeln!(stdout, "{document}")?;
    } else {
        let (name, version) = (&ready.name, published.version());
        match &published {
            Published::Created { .. } => writeln!(stdout, "created document {name}, version {version}")?,
            Published::Updated { .. } => writeln!(stdout, "published {name} version {version}, now its default")?,
            Published::Unchanged { .. } => {
                writeln!(stdout, "no changes: {name} version {version} (the default) holds this content")?
            }
            Published::Defaulted { .. } => writeln!(
                stdout,
                "no new version: {name} version {version} holds this content, and is the default again"
            )?,
        }
    }
    Ok(exit::SUCCESS)
}
