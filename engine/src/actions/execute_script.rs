//! `aws:executeScript` (reference 6.13) with the local `python3`: a small driver loads the
//! inline `Script` or the attached file, calls its `handler(events, context)` with
//! `InputPayload` as `events`, and the return value becomes `Payload`.
//!
//! Nothing of a script touches the disk: the driver travels as `python3 -c` code, the
//! script's source and its inputs on stdin (never into a file; the inputs never into the
//! source), and the result comes back on stdout, one line after a marker only this attempt
//! knows. The script runs in its own process
//! group, killed when the attempt ends however it ends (success, timeout, cancel); the
//! driver also asks the kernel to signal it when the engine dies (`PR_SET_PDEATHSIG`) and
//! then kills its whole group, so a script never outlives the engine that started it.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde_json::{Map, Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{Action, Checked, Context, Failure, Output, Result, shown_json, shown_text};
use crate::diagnostic::{Code, Diagnostic};
use crate::document::model::Step;
use crate::template;

pub const ACTION: Action = Action {
    runs_script: true,
    max_timeout_seconds: Some(600),
    builtin_outputs: &["Payload", "OutputPayload"],
    returns_data: true,
    execute: executor!(execute),
    describe,
    check,
    ..Action::new("aws:executeScript")
};

/// Reads the request from stdin, ties its life to the engine's, loads the script, calls the
/// handler, and writes the result after the marker. The script's own prints go to stdout and
/// stderr, which the engine keeps as the step's log.
const DRIVER: &str = r#"
import importlib, importlib.util, json, linecache, os, signal, sys, traceback, types
request = json.load(sys.stdin)
def die_with_group(*_):
    os.killpg(0, signal.SIGKILL)
signal.signal(signal.SIGTERM, die_with_group)
try:
    import ctypes
    ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
except Exception:
    pass
if os.getppid() != request["parent"]:
    die_with_group()
result_out = os.fdopen(os.dup(1), "w")
def finish(document, code):
    sys.stdout.flush()
    result_out.write("\n" + request["marker"] + json.dumps(document, default=str) + "\n")
    result_out.flush()
    sys.exit(code)
try:
    kind, module_name = request["kind"], request["module"]
    if kind == "inline":
        name = "<runbook script>"
        linecache.cache[name] = (len(request["source"]), None, request["source"].splitlines(True), name)
        module = types.ModuleType(module_name)
        module.__file__ = name
        sys.modules[module_name] = module
        exec(compile(request["source"], name, "exec"), module.__dict__)
    elif kind == "zip":
        sys.path.insert(0, request["path"])
        module = importlib.import_module(module_name)
    else:
        sys.path.insert(0, os.path.dirname(request["path"]))
        spec = importlib.util.spec_from_file_location(module_name, request["path"])
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    handler = getattr(module, request["function"])
    context = {"automation:EXECUTION_ID": os.environ.get("RUNBOOK_EXECUTION_ID"), "step": os.environ.get("RUNBOOK_STEP")}
    result = handler(request["events"], context)
except SystemExit:
    raise
except BaseException as error:
    traceback.print_exc()
    finish({"error": {"type": type(error).__name__, "message": str(error)}}, 1)
finish({"Payload": result}, 0)
"#;

/// Most of a stream kept in the log.
const LOG_LIMIT: usize = 1 << 20;

/// Where the script comes from.
enum Source {
    Inline(String),
    /// A `.py` attachment, or a `.zip` to import from.
    File {
        path: PathBuf,
        zip: bool,
    },
}

async fn execute(context: &Context<'_>, inputs: &Map<String, Value>) -> Result {
    let (source, request) = request(context, inputs)?;
    let marker = request["marker"].as_str().unwrap_or_default().to_owned();
    let ran = run_driver(context, &source, request.to_string(), &marker).await?;
    let log = join_log(&ran.stdout, &ran.stderr);
    let status = ran
        .status
        .map_err(|e| Failure::Error { message: format!("failed to wait for the script: {e}"), log: log.clone() })?;
    if let Err(error) = ran.written
        && status.success()
    {
        return Err(Failure::Error { message: format!("failed to pass InputPayload: {error}"), log });
    }
    let result: Option<Value> = ran.result.and_then(|bytes| serde_json::from_slice(&bytes).ok());
    match result {
        Some(Value::Object(mut document)) if status.success() && document.contains_key("Payload") => {
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

/// Where the script comes from and what the driver reads on stdin: how to load it, the
/// handler, `events`, the marker of its result and the engine's pid.
fn request(context: &Context<'_>, inputs: &Map<String, Value>) -> std::result::Result<(Source, Value), Failure> {
    let runtime = inputs.get("Runtime").and_then(Value::as_str).unwrap_or_default();
    if !runtime.starts_with("python") {
        return Err(Failure::error(format!(
            "runtime `{runtime}` is not supported locally; python3.x scripts run with the local interpreter"
        )));
    }
    let handler = inputs.get("Handler").and_then(Value::as_str).unwrap_or_default();
    let payload = inputs.get("InputPayload").cloned().unwrap_or_else(|| json!({}));
    let (source, module, function) = match (inputs.get("Script").and_then(Value::as_str), inputs.get("Attachment")) {
        (Some(script), _) => {
            let function = handler.rsplit('.').next().unwrap_or(handler);
            (Source::Inline(script.to_owned()), "runbook_script", function)
        }
        (None, Some(Value::String(attachment))) => {
            let path = find_attachment(context.settings.runbook_path, attachment)?;
            let (module, function) = handler.rsplit_once('.').unwrap_or(("runbook_script", handler));
            (Source::File { path, zip: attachment.ends_with(".zip") }, module, function)
        }
        _ => return Err(Failure::error("`aws:executeScript` needs `Script` or `Attachment`")),
    };
    if function.is_empty() {
        return Err(Failure::error("`Handler` names no function"));
    }
    let (kind, path, text) = match &source {
        Source::Inline(script) => ("inline", Value::Null, Value::String(script.clone())),
        Source::File { path, zip } => (if *zip { "zip" } else { "file" }, json!(path), Value::Null),
    };
    let request = json!({
        "kind": kind, "path": path, "source": text, "module": module, "function": function,
        "events": payload, "marker": format!("<<runbook-result {}>>", uuid::Uuid::new_v4()),
        "parent": std::process::id(),
    });
    Ok((source, request))
}

/// What the driver's process did.
struct Ran {
    written: std::io::Result<()>,
    stdout: String,
    stderr: String,
    result: Option<Vec<u8>>,
    status: std::io::Result<std::process::ExitStatus>,
}

/// Starts the driver in its own process group, hands it the request, and collects what it
/// printed and returned; the group is killed when this returns or is dropped.
async fn run_driver(
    context: &Context<'_>,
    source: &Source,
    request: String,
    marker: &str,
) -> std::result::Result<Ran, Failure> {
    let python = context.settings.python;
    let mut command = tokio::process::Command::new(python);
    command
        .arg("-c")
        .arg(DRIVER)
        .env("RUNBOOK_EXECUTION_ID", context.execution_id)
        .env("RUNBOOK_STEP", &context.step.name)
        .env("PYTHONUNBUFFERED", "1")
        // An attachment imported from beside the runbook leaves no `__pycache__` there.
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    if context.settings.aws.is_mocked() {
        // A test's script finds no credentials or endpoint but the ones it is given.
        for variable in crate::aws::SDK_VARIABLES {
            command.env_remove(variable);
        }
    }
    command.envs(aws_environment(context, source).await);
    let mut child = command.spawn().map_err(|e| Failure::error(format!("failed to start `{python}`: {e}")))?;
    let _group = child.id().map(ProcessGroup);
    let mut stdin = child.stdin.take().ok_or_else(|| Failure::error("no stdin for the script"))?;
    let mut stdout = child.stdout.take().ok_or_else(|| Failure::error("no stdout for the script"))?;
    let mut stderr = child.stderr.take().ok_or_else(|| Failure::error("no stderr for the script"))?;
    // Each line is shown as it comes, stamped with its own time.
    let (step, iteration, attempt) = (context.step.name.as_str(), context.iteration, context.attempt);
    let out_line = |line: &str| context.timeline.output(step, iteration, attempt, "stdout", line);
    let err_line = |line: &str| context.timeline.output(step, iteration, attempt, "stderr", line);
    let (written, (stdout, result), stderr, status) = tokio::join!(
        async move {
            let result = stdin.write_all(request.as_bytes()).await;
            drop(stdin);
            result
        },
        read_stdout(&mut stdout, marker.as_bytes(), Sink::new(&out_line)),
        read_limited(&mut stderr, Sink::new(&err_line)),
        child.wait(),
    );
    Ok(Ran { written, stdout, stderr, result, status })
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

/// What a stream keeps: the first [`LOG_LIMIT`] bytes of the log, and every line passed on
/// as it comes (shown live; the stored log is cut, the live view is not).
struct Sink<'f> {
    log: Vec<u8>,
    pending: Vec<u8>,
    /// Empty lines not passed on yet: the last one may be the driver's, not the script's.
    blanks: usize,
    line: &'f dyn Fn(&str),
}

/// A line with no end (a progress bar redrawn with `\r`, binary output) is passed on in
/// pieces of this size, so the live view never holds more.
const LIVE_LINE_LIMIT: usize = 64 << 10;

impl<'f> Sink<'f> {
    fn new(line: &'f dyn Fn(&str)) -> Sink<'f> {
        Sink { log: Vec::new(), pending: Vec::new(), blanks: 0, line }
    }

    fn take(&mut self, bytes: &[u8]) {
        if self.log.len() < LOG_LIMIT {
            self.log.extend_from_slice(&bytes[..bytes.len().min(LOG_LIMIT - self.log.len())]);
        }
        self.pending.extend_from_slice(bytes);
        while let Some(end) = memchr::memchr(b'\n', &self.pending) {
            let line = String::from_utf8_lossy(&self.pending[..end]).trim_end_matches('\r').to_owned();
            self.pass_on(&line);
            self.pending.drain(..=end);
        }
        if self.pending.len() > LIVE_LINE_LIMIT {
            let piece = String::from_utf8_lossy(&self.pending).into_owned();
            self.pass_on(&piece);
            self.pending.clear();
        }
    }

    fn pass_on(&mut self, line: &str) {
        if line.is_empty() {
            self.blanks += 1;
            return;
        }
        for _ in 0..std::mem::take(&mut self.blanks) {
            (self.line)("");
        }
        (self.line)(line);
    }

    /// The driver's newline before the result marker is not the script's: out of the log
    /// (and not shown).
    fn drop_final_newline(&mut self) {
        if self.log.last() == Some(&b'\n') {
            self.log.pop();
            self.blanks = self.blanks.saturating_sub(1);
        }
    }

    fn finish(mut self) -> String {
        if !self.pending.is_empty() {
            let rest = String::from_utf8_lossy(&self.pending).into_owned();
            self.pass_on(&rest);
            self.pending.clear();
        }
        String::from_utf8_lossy(&self.log).into_owned()
    }
}

/// Reads stdout to its end: the first line after the marker is the result (`json.dumps`
/// writes one line); everything else, before or after it (an `atexit` print, a subprocess
/// the script left behind), is the log.
async fn read_stdout(
    stream: &mut (impl AsyncReadExt + Unpin),
    marker: &[u8],
    mut log: Sink<'_>,
) -> (String, Option<Vec<u8>>) {
    let mut tail: Vec<u8> = Vec::new();
    let mut result: Option<Vec<u8>> = None;
    let mut ended = false;
    let mut buffer = [0u8; 8192];
    while let Ok(read) = stream.read(&mut buffer).await {
        if read == 0 {
            break;
        }
        let chunk = &buffer[..read];
        match &mut result {
            // Until the result's line ends; what follows it is the log again.
            Some(line) if !ended => match memchr::memchr(b'\n', chunk) {
                Some(at) => {
                    line.extend_from_slice(&chunk[..at]);
                    ended = true;
                    log.take(&chunk[at + 1..]);
                }
                None => line.extend_from_slice(chunk),
            },
            Some(_) => log.take(chunk),
            None => {
                // The marker may straddle two reads: look in what is kept of the last one too.
                tail.extend_from_slice(chunk);
                if let Some(at) = memchr::memmem::find(&tail, marker) {
                    // The driver writes a newline before the marker: the log ends where the
                    // script's output did.
                    let before = &tail[..at];
                    match before.strip_suffix(b"\n") {
                        Some(before) => log.take(before),
                        // Passed on already (the live view showed the line ended).
                        None if before.is_empty() => log.drop_final_newline(),
                        None => log.take(before),
                    }
                    let after = &tail[at + marker.len()..];
                    match memchr::memchr(b'\n', after) {
                        Some(end) => {
                            result = Some(after[..end].to_vec());
                            ended = true;
                            log.take(&after[end + 1..]);
                        }
                        None => result = Some(after.to_vec()),
                    }
                    tail.clear();
                } else {
                    // Hold back only what could be the start of the marker: the rest is log,
                    // passed on now (a line printed is shown while the script still runs).
                    let held =
                        (1..=marker.len().min(tail.len())).rev().find(|&n| tail.ends_with(&marker[..n])).unwrap_or(0);
                    let keep_from = tail.len() - held;
                    log.take(&tail[..keep_from]);
                    tail.drain(..keep_from);
                }
            }
        }
    }
    if result.is_none() {
        log.take(&tail);
    }
    (log.finish(), result)
}

async fn read_limited(stream: &mut (impl AsyncReadExt + Unpin), mut log: Sink<'_>) -> String {
    let mut buffer = [0u8; 8192];
    while let Ok(read) = stream.read(&mut buffer).await {
        if read == 0 {
            break;
        }
        // Keep reading past the limit so the script never blocks on a full pipe.
        log.take(&buffer[..read]);
    }
    log.finish()
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

/// The credentials, region and endpoint of the engine's AWS calls, so the script's boto3
/// reaches the same AWS; only for scripts that use boto3 (a zip may), since finding
/// credentials can mean asking instance metadata.
async fn aws_environment(context: &Context<'_>, source: &Source) -> Vec<(String, String)> {
    let uses_aws = match source {
        Source::Inline(script) => script.contains("boto"),
        Source::File { zip: true, .. } => true,
        Source::File { path, zip: false } => std::fs::read_to_string(path).is_ok_and(|text| text.contains("boto")),
    };
    if !uses_aws && !context.settings.aws.is_mocked() {
        return Vec::new();
    }
    // Without credentials the script runs as before and its own boto3 says what is missing;
    // a script may import boto3 for something that needs none.
    context.settings.aws.script_environment(context.settings.assume_role).await.unwrap_or_default()
}

fn describe(_: &Step, inputs: &Value) -> std::result::Result<String, String> {
    let source = match (inputs.get("Script").and_then(Value::as_str), shown_text(inputs, "Attachment")) {
        (Some(script), _) => format!("an inline script of {} lines", script.lines().count()),
        (None, Some(attachment)) => format!("attachment {attachment}"),
        _ => "no script".into(),
    };
    let or = |value: Option<String>| value.unwrap_or_else(|| "?".into());
    Ok(format!(
        "run {} handler `{}` from {source} with InputPayload {}",
        or(shown_text(inputs, "Runtime")),
        or(shown_text(inputs, "Handler")),
        shown_json(inputs, "InputPayload")
    ))
}

/// V16: attachments exist.
fn check(checked: &Checked<'_>, out: &mut Vec<Diagnostic>) {
    let step = checked.step;
    check_substitution(step, out);
    let Some(Value::String(attachment)) = step.inputs.get("Attachment") else { return };
    if template::is_whole_template(attachment) || checked.runbook.files.iter().any(|f| f.name == *attachment) {
        return;
    }
    let message = format!("Attachment `{attachment}` is not declared under `files`");
    out.push(Diagnostic::new(Code::MissingAttachment, message).at(step.input_pointer("Attachment")));
}

/// `{{ Name }}` in `Script` is substituted into the Python source before it runs (as AWS does):
/// a value holding Python runs as code. Parameters, step outputs and variables are data from
/// outside the runbook; `InputPayload` passes them as data.
fn check_substitution(step: &Step, out: &mut Vec<Diagnostic>) {
    let Some(Value::String(script)) = step.inputs.get("Script") else { return };
    let mut seen: Vec<String> = Vec::new();
    for (_, reference) in template::references(script) {
        let key = match reference {
            template::Reference::Parameter(name) => name.to_owned(),
            template::Reference::StepOutput { step, output } => format!("{step}.{output}"),
            template::Reference::Variable(name) => format!("variable:{name}"),
            _ => continue,
        };
        if seen.contains(&key) {
            continue;
        }
        let field = key.rsplit(['.', ':']).next().unwrap_or(&key).to_owned();
        let message =
            format!("`{{{{ {key} }}}}` is pasted into the script's source: a value that holds Python runs as code");
        let help = format!(
            "pass it as data: `InputPayload: {{{field}: '{{{{ {key} }}}}'}}` and read `events['{field}']` in the handler"
        );
        out.push(Diagnostic::new(Code::ScriptSubstitution, message).at(step.input_pointer("Script")).with_help(help));
        seen.push(key);
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncWriteExt;

    use super::*;

    #[test]
    fn live_lines_pass_on_in_bounded_pieces_and_not_the_drivers_newline() {
        let shown = std::cell::RefCell::new(Vec::<String>::new());
        let record = |line: &str| shown.borrow_mut().push(line.to_owned());
        let mut sink = Sink::new(&record);
        sink.take(b"one\n\ntwo\n");
        sink.take(&vec![b'.'; LIVE_LINE_LIMIT + 1]);
        // The driver's newline before the marker: not the script's, not shown.
        sink.take(b"\n");
        sink.drop_final_newline();
        sink.finish();
        let shown = shown.into_inner();
        assert_eq!(&shown[..3], ["one", "", "two"]);
        assert_eq!(shown[3].len(), LIVE_LINE_LIMIT + 1);
        assert_eq!(shown.len(), 4, "{:?}", &shown[4..]);
    }

    #[tokio::test]
    async fn the_result_follows_the_marker_even_when_reads_split_it() {
        // A pipe of four bytes: every read returns a few bytes, so the marker arrives in pieces.
        let (mut writer, mut reader) = tokio::io::duplex(4);
        let text = b"print one\nhalf <<m\n<<m>>{\"Payload\": 1}\nan atexit print\n";
        let writing = async move {
            writer.write_all(text).await.unwrap();
            drop(writer);
        };
        let ((log, result), ()) = tokio::join!(read_stdout(&mut reader, b"<<m>>", Sink::new(&|_| {})), writing);
        assert_eq!(log, "print one\nhalf <<man atexit print\n");
        assert_eq!(result.as_deref(), Some(&b"{\"Payload\": 1}"[..]));
    }
}
