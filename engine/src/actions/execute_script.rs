//! `aws:executeScript` (reference 6.13) with the local `python3`: the inline `Script` or the
//! attached file is loaded by a small driver, its `handler(events, context)` is called with
//! `InputPayload` as `events`, and the return value becomes `Payload`. Inputs travel as JSON
//! on stdin, never into the script's source. The script runs in its own process group, so a
//! timeout or a cancel kills everything it started.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde_json::{Map, Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{Context, Failure, Output, Result};

/// Loads the script, calls the handler, writes `{"Payload": ...}` or `{"error": ...}` to the
/// result file. The script's own prints go to stdout and stderr, which the engine captures.
const DRIVER: &str = r#"
import importlib, importlib.util, json, os, sys, traceback
kind, path, module_name, function, result_path = sys.argv[1:6]
def finish(document, code):
    with open(result_path, "w") as out:
        json.dump(document, out, default=str)
    sys.exit(code)
try:
    events = json.load(sys.stdin)
    if kind == "zip":
        sys.path.insert(0, path)
        module = importlib.import_module(module_name)
    else:
        sys.path.insert(0, os.path.dirname(path))
        spec = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    handler = getattr(module, function)
    context = {"automation:EXECUTION_ID": os.environ.get("RUNBOOK_EXECUTION_ID"), "step": os.environ.get("RUNBOOK_STEP")}
    result = handler(events, context)
except SystemExit:
    raise
except BaseException as error:
    traceback.print_exc()
    finish({"error": {"type": type(error).__name__, "message": str(error)}}, 1)
finish({"Payload": result}, 0)
"#;

/// Most of a stream kept in the log.
const LOG_LIMIT: usize = 1 << 20;

pub async fn execute(context: &Context<'_>, inputs: &Map<String, Value>) -> Result {
    let runtime = inputs.get("Runtime").and_then(Value::as_str).unwrap_or_default();
    if !runtime.starts_with("python") {
        return Err(Failure::error(format!(
            "runtime `{runtime}` is not supported locally; python3.x scripts run with the local interpreter"
        )));
    }
    let handler = inputs.get("Handler").and_then(Value::as_str).unwrap_or_default();
    let payload = inputs.get("InputPayload").cloned().unwrap_or_else(|| json!({}));
    let work = WorkDir::create(context)?;
    let (kind, path, module, function) = match (inputs.get("Script").and_then(Value::as_str), inputs.get("Attachment"))
    {
        (Some(script), _) => {
            let path = work.path.join("runbook_script.py");
            std::fs::write(&path, script).map_err(|e| Failure::error(format!("failed to write the script: {e}")))?;
            let function = handler.rsplit('.').next().unwrap_or(handler);
            ("file", path, "runbook_script".to_owned(), function.to_owned())
        }
        (None, Some(Value::String(attachment))) => {
            let path = find_attachment(context.runbook_path, attachment)?;
            let (module, function) = handler.rsplit_once('.').unwrap_or(("runbook_script", handler));
            let kind = if attachment.ends_with(".zip") { "zip" } else { "file" };
            (kind, path, module.to_owned(), function.to_owned())
        }
        _ => return Err(Failure::error("`aws:executeScript` needs `Script` or `Attachment`")),
    };
    if function.is_empty() {
        return Err(Failure::error("`Handler` names no function"));
    }
    let result_path = work.path.join("result.json");

    let mut command = tokio::process::Command::new(&context.config.python);
    command
        .arg("-c")
        .arg(DRIVER)
        .arg(kind)
        .arg(&path)
        .arg(&module)
        .arg(&function)
        .arg(&result_path)
        .env("RUNBOOK_EXECUTION_ID", context.execution_id)
        .env("RUNBOOK_STEP", &context.step.name)
        .env("PYTHONUNBUFFERED", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .envs(aws_environment(context, kind, &path).await)
        .kill_on_drop(true);
    let mut child =
        command.spawn().map_err(|e| Failure::error(format!("failed to start `{}`: {e}", context.config.python)))?;
    let _group = child.id().map(ProcessGroup);
    let mut stdin = child.stdin.take().ok_or_else(|| Failure::error("no stdin for the script"))?;
    let mut stdout = child.stdout.take().ok_or_else(|| Failure::error("no stdout for the script"))?;
    let mut stderr = child.stderr.take().ok_or_else(|| Failure::error("no stderr for the script"))?;
    let events = payload.to_string();
    let (written, out, err, status) = tokio::join!(
        async move {
            let result = stdin.write_all(events.as_bytes()).await;
            drop(stdin);
            result
        },
        read_limited(&mut stdout),
        read_limited(&mut stderr),
        child.wait(),
    );
    let log = join_log(&out, &err);
    let status = status
        .map_err(|e| Failure::Error { message: format!("failed to wait for the script: {e}"), log: log.clone() })?;
    if let Err(error) = written
        && status.success()
    {
        return Err(Failure::Error { message: format!("failed to pass InputPayload: {error}"), log });
    }
    let result: Option<Value> = std::fs::read(&result_path).ok().and_then(|bytes| serde_json::from_slice(&bytes).ok());
    match result {
        Some(Value::Object(mut document)) if status.success() => {
            let payload = document.remove("Payload").unwrap_or(Value::Null);
            let root = json!({ "Payload": payload });
            let mut builtins = Map::new();
            builtins.insert("Payload".into(), payload);
            builtins.insert("OutputPayload".into(), Value::String(root.to_string()));
            Ok(Output { root, builtins, log, ..Output::empty() })
        }
        Some(document) if document.get("error").is_some() => {
            let error = &document["error"];
            let kind = error.get("type").and_then(Value::as_str).unwrap_or("Exception");
            let message = error.get("message").and_then(Value::as_str).unwrap_or_default();
            Err(Failure::Error { message: format!("the script raised {kind}: {message}"), log })
        }
        _ => Err(Failure::Error { message: format!("the script exited with {status}"), log }),
    }
}

/// The attachment's file: beside the runbook, or in an `attachments/` folder there.
fn find_attachment(runbook_path: &Path, name: &str) -> std::result::Result<PathBuf, Failure> {
    let dir = runbook_path.parent().unwrap_or(Path::new("."));
    let candidates = [dir.join(name), dir.join("attachments").join(name)];
    candidates.iter().find(|path| path.is_file()).cloned().ok_or_else(|| {
        Failure::error(format!(
            "attachment `{name}` not found (looked for {} and {})",
            candidates[0].display(),
            candidates[1].display()
        ))
    })
}

async fn read_limited(stream: &mut (impl AsyncReadExt + Unpin)) -> String {
    let mut bytes = Vec::new();
    let mut buffer = [0u8; 8192];
    while let Ok(read) = stream.read(&mut buffer).await {
        if read == 0 {
            break;
        }
        // Keep reading past the limit so the script never blocks on a full pipe.
        if bytes.len() < LOG_LIMIT {
            bytes.extend_from_slice(&buffer[..read.min(LOG_LIMIT - bytes.len())]);
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

fn join_log(stdout: &str, stderr: &str) -> Option<String> {
    match (stdout.is_empty(), stderr.is_empty()) {
        (true, true) => None,
        (false, true) => Some(stdout.to_owned()),
        (true, false) => Some(format!("[stderr]\n{stderr}")),
        (false, false) => Some(format!("{stdout}[stderr]\n{stderr}")),
    }
}

/// Kills the script's whole process group when the attempt ends, however it ends (a
/// timeout or a cancel drops the attempt's future).
struct ProcessGroup(u32);

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.0) {
            let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        }
    }
}

/// A scratch folder for one attempt, removed afterwards.
struct WorkDir {
    path: PathBuf,
}

impl WorkDir {
    fn create(context: &Context<'_>) -> std::result::Result<WorkDir, Failure> {
        let path = std::env::temp_dir().join(format!(
            "runbook-{}-{}-{}-{}",
            context.execution_id, context.step.name, context.iteration, context.attempt
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path)
            .map_err(|e| Failure::error(format!("failed to create {}: {e}", path.display())))?;
        Ok(WorkDir { path })
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// The credentials, region and endpoint of the engine's AWS calls, so the script's boto3
/// reaches the same AWS; only for scripts that use boto3 (a zip may), since finding
/// credentials can mean asking instance metadata.
async fn aws_environment(context: &Context<'_>, kind: &str, path: &std::path::Path) -> Vec<(String, String)> {
    let uses_aws = kind == "zip" || std::fs::read_to_string(path).is_ok_and(|source| source.contains("boto"));
    if !uses_aws {
        return Vec::new();
    }
    // Without credentials the script runs as before and its own boto3 says what is missing;
    // a script may import boto3 for something that needs none.
    context.config.aws.script_environment(context.assume_role).await.unwrap_or_default()
}
