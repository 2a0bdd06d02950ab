//! `runbook test`: scenario files found, checked and run on every core, reported for people
//! (a live line per scenario, nextest-like), as JSON, as GitHub annotations and as JUnit XML;
//! edge coverage per runbook; `--scaffold` writes a scenario file for a runbook.

use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use serde_json::{Value, json};

use super::{ColourChoice, OutputFormat, UsageError, exit, walk};
use crate::diagnostic::{Code, Diagnostic};
use crate::document;
use crate::plan::{self, Plan};
use crate::report;
use crate::scenario::{self, Coverage, Ran, Target, coverage::Edge, file};

#[derive(Debug, Args)]
pub struct TestArgs {
    /// Scenario files (NAME.test.yaml, .yml, .json) or directories to search for them.
    #[arg(value_name = "PATH", default_value = ".")]
    paths: Vec<PathBuf>,
    /// Run only scenarios whose name (or `FILE: NAME`) contains TEXT; repeatable, any may match.
    #[arg(short = 'E', long = "filter", value_name = "TEXT")]
    filters: Vec<String>,
    /// Print, per runbook, the edges of its plan that no scenario took.
    #[arg(long)]
    coverage: bool,
    /// Fail (exit 1) when a runbook's edge coverage is under PERCENT.
    #[arg(long, value_name = "PERCENT")]
    min_coverage: Option<f64>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    format: OutputFormat,
    /// Also write a JUnit XML report: one testsuite per scenario file, one testcase per scenario.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// How many scenarios run at once (default: one per core).
    #[arg(short = 'j', long, value_name = "N")]
    jobs: Option<usize>,
    /// Write a scenario file for RUNBOOK instead of running any: one scenario per path needed
    /// to take every edge of its plan, mocks as placeholders, the expected path filled in.
    #[arg(long, value_name = "RUNBOOK", conflicts_with_all = ["filters", "coverage", "min_coverage", "junit"])]
    scaffold: Option<PathBuf>,
    /// Where --scaffold writes (default NAME.test.yaml beside the runbook; `-` for stdout).
    #[arg(short = 'o', long, value_name = "FILE", requires = "scaffold")]
    output: Option<PathBuf>,
    /// Let --scaffold replace an existing file.
    #[arg(long, requires = "scaffold")]
    force: bool,
    /// Colour: auto (when stdout is a terminal and NO_COLOR is unset), always, never.
    #[arg(long, value_enum, default_value_t = ColourChoice::Auto)]
    color: ColourChoice,
}

impl TestArgs {
    pub fn json(&self) -> bool {
        self.format == OutputFormat::Json
    }
}

/// One scenario file with the runbook it tests.
struct Suite {
    path: PathBuf,
    file: file::File,
    target: Option<Target>,
}

/// Loads a scenario file and the runbook it names, and checks one against the other.
fn load(path: &Path) -> anyhow::Result<Suite> {
    let loaded = document::load_path(path).map_err(|e| anyhow::anyhow!("{e}: {}", e.source))?;
    let runbook_path = file::runbook_beside(path, loaded.value.as_ref());
    let target = match &runbook_path {
        Some(runbook) => scenario::target(runbook).map(Some),
        None if loaded.value.is_some() => {
            Err("no runbook to test: give `runbook: FILE`, or name the file NAME.test.yaml beside NAME.yaml".to_owned())
        }
        None => Ok(None),
    };
    let (target, problem) = match target {
        Ok(target) => (target, None),
        Err(message) => (None, Some(message)),
    };
    let planned = target.as_ref().map(|target| (&target.runbook, plan::plan(&target.runbook)));
    let mut file = file::check(loaded, runbook_path, planned.as_ref().map(|(runbook, plan)| (*runbook, plan)));
    if let Some(message) = problem {
        let pointer =
            if file.loaded.value.as_ref().is_some_and(|v| v.get("runbook").is_some()) { "/runbook" } else { "" };
        let mut diagnostic = Diagnostic::new(Code::ScenarioRunbook, message).at(pointer);
        file.loaded.locate_all(std::slice::from_mut(&mut diagnostic));
        file.diagnostics.insert(0, diagnostic);
        file.scenarios.clear();
    }
    Ok(Suite { path: path.to_owned(), file, target })
}

pub fn test_command(args: TestArgs, stdout: &mut dyn Write, terminal_colour: bool) -> anyhow::Result<u8> {
    if let Some(runbook) = &args.scaffold {
        return scaffold_command(runbook, args.output.as_deref(), args.force, stdout);
    }
    if let Some(percent) = args.min_coverage
        && !(0.0..=100.0).contains(&percent)
    {
        bail!(UsageError(format!("--min-coverage takes a percentage from 0 to 100, not {percent}")));
    }
    let colour = args.color.resolve(terminal_colour);
    let wanted = walk::Wanted { name: &file::is_scenario_file };
    let paths = walk::walk(&args.paths, &[], &wanted)?.files;
    if paths.is_empty() {
        bail!(UsageError(format!(
            "no scenario files (*.test.yaml, *.test.yml, *.test.json) in {}; write one with \
             `runbook test --scaffold RUNBOOK`",
            args.paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        )));
    }
    let suites: Vec<Suite> = paths.iter().map(|path| load(path)).collect::<anyhow::Result<_>>()?;
    let plans: Vec<Option<Plan<'_>>> =
        suites.iter().map(|suite| suite.target.as_ref().map(|target| plan::plan(&target.runbook))).collect();
    let wanted = |suite: &Suite, name: &str| {
        let full = format!("{}: {name}", suite.path.display());
        args.filters.is_empty() || args.filters.iter().any(|filter| full.contains(filter.as_str()))
    };
    let jobs: Vec<(usize, usize)> = suites
        .iter()
        .enumerate()
        .flat_map(|(s, suite)| {
            suite.file.scenarios.iter().enumerate().filter(|(_, sc)| wanted(suite, &sc.name)).map(move |(i, _)| (s, i))
        })
        .collect();
    let invalid = suites.iter().filter(|suite| suite.file.errors() > 0).count();
    let workers = args.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())).max(1);
    let mut printer = Printer { format: args.format, colour, stdout, json: Vec::new() };
    printer.diagnostics(&suites)?;
    printer.starting(jobs.len(), suites.len(), workers.min(jobs.len().max(1)))?;
    let started = Instant::now();
    let inputs: Vec<(Option<&Target>, &[scenario::Scenario])> =
        suites.iter().map(|suite| (suite.target.as_ref(), &suite.file.scenarios[..])).collect();
    let results = run_all(&inputs, &plans, &jobs, workers, |suite, ran| printer.ran(&suites[suite].path, ran))?;
    let elapsed = started.elapsed();
    let coverages = coverage(&suites, &plans, &jobs, &results);
    let failed = results.iter().filter(|ran| !ran.passed()).count();
    let below: Vec<&Coverage> = match args.min_coverage {
        Some(min) => coverages.iter().filter(|coverage| coverage.percent() + 1e-9 < min).collect(),
        None => Vec::new(),
    };
    printer.finish(
        &results,
        elapsed,
        failed,
        invalid,
        &coverages,
        args.coverage || args.min_coverage.is_some(),
        &below,
        args.min_coverage,
    )?;
    if let Some(junit) = &args.junit {
        let xml = junit_report(&suites, &jobs, &results)?;
        std::fs::write(junit, xml).with_context(|| format!("failed to write {}", junit.display()))?;
    }
    Ok(if failed > 0 || invalid > 0 || !below.is_empty() { exit::INVALID } else { exit::SUCCESS })
}

/// Runs every job on `workers` threads, each with its own paused runtime; `report` sees each
/// result as it comes (on this thread), and the results come back in job order.
fn run_all(
    suites: &[(Option<&Target>, &[scenario::Scenario])],
    plans: &[Option<Plan<'_>>],
    jobs: &[(usize, usize)],
    workers: usize,
    mut report: impl FnMut(usize, &Ran) -> std::io::Result<()>,
) -> anyhow::Result<Vec<Ran>> {
    let next = AtomicUsize::new(0);
    let mut results: Vec<Option<Ran>> = vec![None; jobs.len()];
    let (sender, receiver) = std::sync::mpsc::channel::<std::io::Result<(usize, Ran)>>();
    std::thread::scope(|scope| -> anyhow::Result<()> {
        for _ in 0..workers.min(jobs.len()) {
            let sender = sender.clone();
            let next = &next;
            scope.spawn(move || {
                let runtime = match scenario::runtime() {
                    Ok(runtime) => runtime,
                    Err(error) => {
                        let _ = sender.send(Err(error));
                        return;
                    }
                };
                let base = scenario::base_config();
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&(suite, scenario)) = jobs.get(index) else { break };
                    let (Some(target), Some(plan)) = (suites[suite].0, &plans[suite]) else { continue };
                    let scenario = &suites[suite].1[scenario];
                    let started = std::time::Instant::now();
                    let run = std::panic::AssertUnwindSafe(|| scenario::run(&runtime, target, plan, scenario, &base));
                    let ran = match std::panic::catch_unwind(run) {
                        Ok(ran) => ran,
                        Err(panic) => {
                            let what = panic
                                .downcast_ref::<&str>()
                                .map(|text| (*text).to_owned())
                                .or_else(|| panic.downcast_ref::<String>().cloned())
                                .unwrap_or_default();
                            let failure =
                                format!("runbook panicked running this scenario (a bug, please report it): {what}");
                            Ran::broken(scenario, failure, started)
                        }
                    };
                    if sender.send(Ok((index, ran))).is_err() {
                        break;
                    }
                }
            });
        }
        drop(sender);
        for message in receiver {
            let (index, ran) = message.context("failed to start a scenario runtime")?;
            report(jobs[index].0, &ran)?;
            results[index] = Some(ran);
        }
        Ok(())
    })?;
    Ok(results.into_iter().map(|ran| ran.expect("every job ran")).collect())
}

/// Edge coverage per runbook, over the scenarios that ran (several files may test one).
fn coverage(suites: &[Suite], plans: &[Option<Plan<'_>>], jobs: &[(usize, usize)], results: &[Ran]) -> Vec<Coverage> {
    let mut by_runbook: BTreeMap<PathBuf, (usize, HashSet<Edge>)> = BTreeMap::new();
    for (&(suite, _), ran) in jobs.iter().zip(results) {
        let Some(target) = &suites[suite].target else { continue };
        let entry = by_runbook.entry(target.path.clone()).or_insert_with(|| (suite, HashSet::new()));
        entry.1.extend(ran.edges.iter().copied());
    }
    by_runbook
        .into_iter()
        .filter_map(|(path, (suite, taken))| {
            plans[suite].as_ref().map(|plan| Coverage::of(path.display().to_string(), plan, &taken))
        })
        .collect()
}

struct Printer<'o> {
    format: OutputFormat,
    colour: bool,
    stdout: &'o mut dyn Write,
    json: Vec<Value>,
}

fn paint(colour: bool, code: &str, text: &str) -> String {
    if colour { format!("\x1b[{code}m{text}\x1b[0m") } else { text.to_owned() }
}

impl Printer<'_> {
    fn diagnostics(&mut self, suites: &[Suite]) -> std::io::Result<()> {
        for suite in suites {
            if let OutputFormat::Text = self.format {
                let text = report::texts(&suite.file.loaded.source, &suite.file.diagnostics, self.colour);
                self.stdout.write_all(text.as_bytes())?;
            }
            for diagnostic in &suite.file.diagnostics {
                match self.format {
                    OutputFormat::Text => {}
                    OutputFormat::Github => {
                        writeln!(self.stdout, "{}", report::github(&suite.file.loaded.source.name, diagnostic))?;
                    }
                    OutputFormat::Json => self.json.push(report::json(&suite.file.loaded.source.name, diagnostic)),
                }
            }
        }
        Ok(())
    }

    fn starting(&mut self, scenarios: usize, files: usize, workers: usize) -> std::io::Result<()> {
        if matches!(self.format, OutputFormat::Json) {
            return Ok(());
        }
        let heading = paint(self.colour, "1;32", &format!("{:>12}", "Starting"));
        writeln!(self.stdout, "{heading} {scenarios} scenarios from {files} files ({workers} at once)")
    }

    fn ran(&mut self, file: &Path, ran: &Ran) -> std::io::Result<()> {
        let name = format!("{}: {}", file.display(), ran.name);
        match self.format {
            OutputFormat::Json => {}
            OutputFormat::Text | OutputFormat::Github => {
                let (word, code) = if ran.passed() { ("PASS", "1;32") } else { ("FAIL", "1;31") };
                let word = paint(self.colour, code, &format!("{word:>12}"));
                writeln!(self.stdout, "{word} [{:>8.3}s] {name}", ran.wall.as_secs_f64())?;
                if !ran.passed() {
                    for failure in &ran.failures {
                        for (i, line) in failure.lines().enumerate() {
                            let lead = if i == 0 { "- " } else { "  " };
                            writeln!(self.stdout, "{:>14}{lead}{line}", "")?;
                        }
                    }
                    writeln!(self.stdout, "{:>14}at {}:{}", "", file.display(), ran.line)?;
                }
                if !ran.passed() && matches!(self.format, OutputFormat::Github) {
                    let title = format!("scenario {}", ran.name);
                    let file = file.display().to_string();
                    let at = Some((ran.line, None));
                    writeln!(
                        self.stdout,
                        "{}",
                        report::annotation("error", &file, at, &title, &ran.failures.join("\n"))
                    )?;
                }
            }
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn finish(
        &mut self,
        results: &[Ran],
        elapsed: Duration,
        failed: usize,
        invalid: usize,
        coverages: &[Coverage],
        show_coverage: bool,
        below: &[&Coverage],
        min: Option<f64>,
    ) -> std::io::Result<()> {
        let passed = results.len() - failed;
        let mut summary = format!("{} scenarios run: {passed} passed, {failed} failed", results.len());
        if invalid > 0 {
            summary.push_str(&format!("; {invalid} scenario files invalid"));
        }
        if let OutputFormat::Json = self.format {
            let scenarios: Vec<Value> = results.iter().map(scenario_json).collect();
            let document = json!({
                "diagnostics": self.json,
                "scenarios": scenarios,
                "coverage": coverages.iter().map(|c| json!({
                    "runbook": c.runbook, "edges": c.edges, "taken": c.taken,
                    "percent": (c.percent() * 10.0).round() / 10.0, "untaken": c.untaken,
                })).collect::<Vec<_>>(),
                "summary": {
                    "scenarios": results.len(), "passed": passed, "failed": failed, "invalid_files": invalid,
                    "seconds": elapsed.as_secs_f64(), "text": summary,
                },
            });
            return writeln!(self.stdout, "{}", serde_json::to_string_pretty(&document).expect("JSON serializes"));
        }
        if show_coverage {
            for coverage in coverages {
                let line = format!(
                    "{:>12} {}: {} of {} edges ({:.1}%)",
                    "Coverage",
                    coverage.runbook,
                    coverage.taken,
                    coverage.edges,
                    coverage.percent()
                );
                writeln!(self.stdout, "{line}")?;
                for edge in &coverage.untaken {
                    writeln!(self.stdout, "{:>14}{edge} never taken", "")?;
                }
            }
        }
        for coverage in below {
            let message = format!(
                "{} covers {:.1}% of its edges, under --min-coverage {}",
                coverage.runbook,
                coverage.percent(),
                min.unwrap_or_default()
            );
            match self.format {
                OutputFormat::Github => writeln!(
                    self.stdout,
                    "{}",
                    report::annotation("error", &coverage.runbook, None, "coverage", &message)
                )?,
                _ => writeln!(self.stdout, "{:>12} {message}", paint(self.colour, "1;31", "Coverage"))?,
            }
        }
        let heading =
            paint(self.colour, if failed + invalid > 0 { "1;31" } else { "1;32" }, &format!("{:>12}", "Summary"));
        writeln!(self.stdout, "{heading} [{:>8.3}s] {summary}", elapsed.as_secs_f64())
    }
}

fn scenario_json(ran: &Ran) -> Value {
    json!({
        "name": ran.name,
        "line": ran.line,
        "passed": ran.passed(),
        "failures": ran.failures,
        "status": ran.actual.status.map(|status| status.as_str()),
        "path": ran.actual.path,
        "calls": ran.actual.calls.iter().map(|call| json!({"call": call.call, "request": call.params})).collect::<Vec<_>>(),
        "wall_ms": ran.wall.as_secs_f64() * 1000.0,
        "virtual_ms": ran.virtual_time.as_millis() as u64,
    })
}

/// JUnit XML: one testsuite per scenario file, one testcase per scenario.
fn junit_report(suites: &[Suite], jobs: &[(usize, usize)], results: &[Ran]) -> anyhow::Result<String> {
    use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
    let mut report = Report::new("runbook test");
    for (index, suite) in suites.iter().enumerate() {
        let mut test_suite = TestSuite::new(suite.path.display().to_string());
        for (&(_, _), ran) in jobs.iter().zip(results).filter(|((s, _), _)| *s == index) {
            let status = if ran.passed() {
                TestCaseStatus::success()
            } else {
                let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                status.set_message(ran.failures[0].lines().next().unwrap_or_default());
                status.set_description(format!(
                    "{}\nat {}:{}",
                    ran.failures.join("\n"),
                    suite.path.display(),
                    ran.line
                ));
                status
            };
            let mut case = TestCase::new(ran.name.clone(), status);
            if let Some(target) = &suite.target {
                case.set_classname(target.path.display().to_string());
            }
            case.set_time(ran.wall);
            test_suite.add_test_case(case);
        }
        if suite.file.errors() > 0 {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
            let first =
                suite.file.diagnostics.iter().find(|d| d.is_error()).map(|d| d.message.clone()).unwrap_or_default();
            status.set_message(format!("the scenario file is invalid: {first}"));
            test_suite.add_test_case(TestCase::new("scenario file", status));
        }
        report.add_test_suite(test_suite);
    }
    Ok(report.to_string()?)
}

fn scaffold_command(runbook: &Path, output: Option<&Path>, force: bool, stdout: &mut dyn Write) -> anyhow::Result<u8> {
    let target = match scenario::target(runbook) {
        Ok(target) => target,
        Err(message) if runbook.is_file() => {
            writeln!(stdout, "error: {message}")?;
            return Ok(exit::INVALID);
        }
        Err(message) => bail!(message),
    };
    let planned = plan::plan(&target.runbook);
    let default_output = {
        let stem = runbook.file_stem().and_then(|s| s.to_str()).unwrap_or("runbook");
        runbook.with_file_name(format!("{stem}.test.yaml"))
    };
    let output = output.map_or(default_output, Path::to_owned);
    let to_stdout = output.as_os_str() == "-";
    let runbook_name = if to_stdout || output.parent() == runbook.parent() {
        runbook.file_name().map_or_else(|| runbook.display().to_string(), |n| n.to_string_lossy().into_owned())
    } else {
        std::path::absolute(runbook).unwrap_or_else(|_| runbook.to_owned()).display().to_string()
    };
    let text = scenario::scaffold::scaffold(&runbook_name, &target.runbook, &planned);
    if to_stdout {
        stdout.write_all(text.as_bytes())?;
        return Ok(exit::SUCCESS);
    }
    if output.exists() && !force {
        bail!(UsageError(format!("{} exists: pass --force to replace it, or -o - to print", output.display())));
    }
    std::fs::write(&output, &text).with_context(|| format!("failed to write {}", output.display()))?;
    let scenarios = text.matches("\n  - name: ").count();
    writeln!(
        stdout,
        "wrote {} with {scenarios} scenarios: review the TODO values, then `runbook test {}`",
        output.display(),
        output.display()
    )?;
    Ok(exit::SUCCESS)
}
