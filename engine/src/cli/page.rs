//! `runbook report ID --html FILE`: an execution as one self-contained HTML page (the page
//! itself is drawn by `report::html`).

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;

use super::exit;
use super::run::StateArgs;
use crate::journal;

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The execution's id, a unique prefix of it, or `last`.
    #[arg(value_name = "EXECUTION_ID")]
    execution_id: String,
    /// Write the page here.
    #[arg(long, value_name = "FILE")]
    html: PathBuf,
    #[command(flatten)]
    state: StateArgs,
}

pub fn report_command(args: ReportArgs, stdout: &mut dyn Write, stderr: &mut dyn Write) -> anyhow::Result<u8> {
    let Some(journal) = args.state.open_for_reading(stderr)? else {
        return Err(journal::Error::NotFound(args.execution_id).into());
    };
    let id = journal.resolve_id(&args.execution_id)?;
    let execution = journal.execution(&id)?;
    let (steps, attempts, events) = (journal.steps(&id)?, journal.attempts(&id)?, journal.events(&id)?);
    // The graph needs the runbook; one that is gone (or no longer parses) leaves the page
    // without it, and says so.
    let path = std::path::Path::new(&execution.runbook_path);
    let changed = std::fs::read(path).is_ok_and(|bytes| crate::exec::content_hash(&bytes) != execution.runbook_hash);
    let runbook = crate::document::load_path(path)
        .ok()
        .and_then(|loaded| loaded.value)
        .map(crate::document::model::Runbook::from_value);
    let plan = runbook.as_ref().map(crate::plan::plan);
    let record =
        crate::report::html::Record { execution: &execution, steps: &steps, attempts: &attempts, events: &events };
    let page = crate::report::html::execution(plan.as_ref(), changed, &record).map_err(anyhow::Error::msg)?;
    std::fs::write(&args.html, &page).with_context(|| format!("failed to write {}", args.html.display()))?;
    writeln!(
        stdout,
        "wrote {} ({} KB): execution {id}, {}",
        args.html.display(),
        page.len().div_ceil(1024),
        execution.status
    )?;
    Ok(exit::SUCCESS)
}
