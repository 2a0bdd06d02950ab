//! Semantic rules of reference section 8.1 (V5-V18 except V11, which needs the plan) and
//! the planner-free rules of section 8.2. Each finding carries its stable code.

use foldhash::{HashMap, HashMapExt};
use serde_json::{Map, Value};

use super::java_regex;
use crate::actions::{self, Action, Checked, Kind, branch};
use crate::diagnostic::{Code, Diagnostic, PathSegment, Severity, describe_json, nearest, pointer_of, pointer_push};
use crate::document::model::{OnCancel, OnFailure, Runbook, Step};
use crate::template::{self, AUTOMATION_VARIABLES, GLOBAL_VARIABLES, Reference, collect_templates};

/// Keys that belong to Change Manager templates (`Automation.ChangeTemplate`).
const CHANGE_TEMPLATE_KEYS: &[&str] = &["templateInformation", "executableRunBooks", "emergencyChange"];

/// Where a step sits: at top level, or in the body of a loop.
struct Placed<'a> {
    step: &'a Step,
    enclosing_loop: Option<&'a Step>,
}

struct Rules<'a> {
    runbook: &'a Runbook,
    /// Validating for a run that starts now.
    starting: bool,
    steps: HashMap<&'a str, Placed<'a>>,
    out: Vec<Diagnostic>,
}

/// The rules that look at the raw document rather than the model: templated keys (V14) and
/// Change Manager keys. Run before the value is taken apart into the model; a loader that saw
/// no key holding `{{` skips the walk for templated keys ([`check_change_template_keys`] alone).
pub fn check_document(value: &Value) -> Vec<Diagnostic> {
    let mut out = check_change_template_keys(value);
    templated_keys(value, &mut Vec::new(), &mut out);
    out
}

/// Change Manager keys at the top of the document.
pub fn check_change_template_keys(value: &Value) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    if let Some(root) = value.as_object() {
        for key in CHANGE_TEMPLATE_KEYS.iter().filter(|key| root.contains_key(**key)) {
            let message = format!("`{key}` belongs to Change Manager templates; the engine ignores it");
            out.push(Diagnostic::new(Code::ChangeTemplateKey, message).at_key(pointer_push("", key)));
        }
    }
    out
}

/// Runs every rule over the model; `starting` adds the checks of a run that starts now.
pub fn check(runbook: &Runbook, starting: bool) -> Vec<Diagnostic> {
    let mut rules = Rules { runbook, starting, steps: HashMap::new(), out: Vec::new() };
    rules.index_steps(&runbook.steps, None);
    rules.top_level();
    rules.parameters();
    rules.variables();
    for placed in runbook.all_steps() {
        rules.step(placed);
    }
    for placed in runbook.all_steps() {
        rules.undo(placed);
    }
    rules.document_outputs();
    rules.expressions();
    rules.locks();
    rules.out
}

impl<'a> Rules<'a> {
    fn push(&mut self, diagnostic: Diagnostic) {
        self.out.push(diagnostic);
    }

    /// With `x-expressions`, an expression past the budget (nesting, operators, constants
    /// that fold too big) is never evaluated; it is reported where it stands.
    fn expressions(&mut self) {
        if !template::config_for(self.runbook).expressions {
            return;
        }
        let mut found = Vec::new();
        for parameter in &self.runbook.parameters {
            if let Some(default) = &parameter.default {
                collect_templates(default, &pointer_push(&parameter.pointer, "default"), &mut found);
            }
        }
        for step in self.runbook.all_steps() {
            let base = pointer_push(&step.pointer, "inputs");
            step.visit_input_templates(|text, path| {
                found.push((text, format!("{base}{}", pointer_of(path))));
            });
        }
        for (text, pointer) in found {
            if let Some(problem) =
                template::braces(text).find_map(|(_, inner)| template::expression::budget_problem(inner))
            {
                self.push(Diagnostic::new(Code::ExpressionBudget, problem).at(pointer));
            }
        }
    }

    /// `x-locks`: well-formed names once rendered, from what exists before the first step.
    fn locks(&mut self) {
        let config = template::config_for(self.runbook);
        for spec in &self.runbook.locks {
            let pointer = &spec.pointer;
            for (_, reference) in template::references_in(&spec.name, config) {
                if let Reference::Parameter(name) = reference
                    && self.runbook.parameter(name).is_some_and(|parameter| parameter.secret)
                {
                    let message = format!(
                        "lock `{}` reads the secret parameter `{name}`: lock names are shown and stored in the clear",
                        spec.name
                    );
                    self.push(Diagnostic::new(Code::LockName, message).at(pointer));
                    continue;
                }
                let late = match reference {
                    Reference::StepOutput { step, output } => Some(format!("the step output `{step}.{output}`")),
                    Reference::Variable(name) => Some(format!("the variable `{name}`")),
                    Reference::Automation("FENCING_TOKEN") => Some("the fencing token it gives".to_owned()),
                    _ => None,
                };
                if let Some(late) = late {
                    let message =
                        format!("lock `{}` reads {late}, which does not exist before the lock is taken", spec.name);
                    let help = "a lock is taken before the first step: name it from parameters";
                    self.push(Diagnostic::new(Code::LockName, message).at(pointer).with_help(help));
                }
            }
            self.references_in_text(&spec.name, &|| pointer.to_owned(), Scope::AssumeRole, &mut |_, _| {});
            // The literal parts are checked with each reference standing for a plain value.
            let mut literal = String::new();
            let mut last = 0;
            for (range, _) in template::braces(&spec.name) {
                literal.push_str(&spec.name[last..range.start]);
                literal.push('x');
                last = range.end;
            }
            literal.push_str(&spec.name[last..]);
            if let Err(why) = crate::journal::named::check_name(&literal) {
                let message = format!("lock `{}`: {why}", spec.name);
                self.push(Diagnostic::new(Code::LockName, message).at(pointer));
            }
        }
    }

    fn index_steps(&mut self, steps: &'a [Step], enclosing_loop: Option<&'a Step>) {
        for step in steps {
            if step.name.is_empty() {
                continue;
            }
            if let Some(first) = self.steps.get(step.name.as_str()) {
                let message =
                    format!("step name `{}` is already used by the step at {}", step.name, first.step.pointer);
                let diagnostic = Diagnostic::new(Code::DuplicateStepName, message).at(step.field_pointer("name"));
                self.push(diagnostic.with_help("step names must be unique across the runbook, loop bodies included"));
            } else {
                self.steps.insert(&step.name, Placed { step, enclosing_loop });
            }
            if actions::kind_of(&step.action) == Kind::Loop {
                self.index_steps(&step.body, Some(step));
            }
        }
    }

    fn top_level(&mut self) {
        if let Some(role) = &self.runbook.assume_role {
            self.references_in_text(role, &|| "/assumeRole".to_owned(), Scope::AssumeRole, &mut |_, _| {});
        }
    }

    fn parameters(&mut self) {
        for parameter in &self.runbook.parameters {
            let Some(kind) = parameter.kind else { continue };
            let default_pointer = pointer_push(&parameter.pointer, "default");
            if let Some(default) = &parameter.default {
                let shape = kind.shape();
                let templated = default.as_str().is_some_and(template::is_whole_template);
                if !default.is_null() && !templated && !shape.admits(default) {
                    let message = format!(
                        "the default of `{}` is {}, but its type {} needs {}",
                        parameter.name,
                        describe_json(default),
                        shape.name(),
                        shape.description()
                    );
                    self.push(Diagnostic::new(Code::ParameterDefaultType, message).at(&default_pointer));
                }
                let mut found = Vec::new();
                collect_templates(default, &default_pointer, &mut found);
                for (text, pointer) in found {
                    self.references_in_text(text, &|| pointer.clone(), Scope::ParameterDefault, &mut |_, _| {});
                }
            }
            if let Some(pattern) = &parameter.allowed_pattern
                && let Err(error) = java_regex::check_syntax(pattern)
            {
                let message = format!("allowedPattern of `{}` cannot be compiled: {error}", parameter.name);
                let diagnostic = Diagnostic::new(Code::AllowedPattern, message)
                    .at(pointer_push(&parameter.pointer, "allowedPattern"))
                    .with_help("values for this parameter will not be checked against the pattern");
                self.push(diagnostic);
            }
        }
    }

    fn variables(&mut self) {
        for variable in &self.runbook.variables {
            let (Some(kind), Some(default)) = (variable.kind, &variable.default) else { continue };
            if !default.is_null() && !kind.admits(default) {
                let message = format!(
                    "the default of variable `{}` is {}, but its type {} needs {}",
                    variable.name,
                    describe_json(default),
                    kind.name(),
                    kind.description()
                );
                self.push(
                    Diagnostic::new(Code::VariableDefinition, message).at(pointer_push(&variable.pointer, "default")),
                );
            }
        }
    }

    fn step(&mut self, step: &'a Step) {
        if step.action.is_empty() {
            return;
        }
        let enclosing_loop = self.steps.get(step.name.as_str()).and_then(|p| p.enclosing_loop);
        let info = actions::lookup(&step.action);
        match info {
            None if step.action.starts_with("aws:") && step.action.len() <= 29 => {
                let mut diagnostic =
                    Diagnostic::new(Code::UnknownAction, format!("`{}` is not an Automation action", step.action))
                        .at(step.field_pointer("action"));
                if let Some(suggestion) = nearest(&step.action, actions::public_names()) {
                    diagnostic = diagnostic.with_help(format!("did you mean `{suggestion}`?"));
                } else if actions::is_command_plugin(&step.action) {
                    diagnostic =
                        diagnostic.with_help("that is a Command document plugin; call it through aws:runCommand");
                }
                self.push(diagnostic);
            }
            Some(info) if info.internal => {
                let message = format!(
                    "`{}` is an AWS-internal action: the runbook parses, but this step cannot run locally",
                    step.action
                );
                self.push(Diagnostic::new(Code::InternalAction, message).at(step.field_pointer("action")));
            }
            _ => {}
        }
        self.jumps(step, enclosing_loop);
        self.on_cancel(step, info);
        self.timeout(step, info);
        self.step_outputs(step);
        self.references_in_inputs(step, enclosing_loop);
        if !step.has_inputs {
            return;
        }
        if let Some(action) = info {
            let checked = Checked { runbook: self.runbook, step, enclosing_loop, starting: self.starting };
            (action.check)(&checked, &mut self.out);
        }
    }

    /// `x-undo`: a step that exists, on a step that runs attempts, running an action that runs
    /// attempts; an undo of its own is checked like any step (its action, inputs, references).
    fn undo(&mut self, step: &'a Step) {
        let pointer = step.field_pointer("x-undo");
        if let Some(target) = &step.undo_target
            && step.undo.is_none()
        {
            let names = self.steps.keys().copied();
            let hint = crate::diagnostic::did_you_mean(target, names);
            let message = format!("x-undo names `{target}`, but there is no such step{hint}");
            self.push(Diagnostic::new(Code::Undo, message).at(pointer));
            return;
        }
        let Some(undo) = &step.undo else { return };
        if actions::kind_of(&step.action) == Kind::Loop {
            let message = format!("x-undo on the aws:loop `{}`, which runs no attempt of its own", step.name);
            let help = "put x-undo on the steps of its body: each visit that succeeded is undone";
            self.push(Diagnostic::new(Code::Undo, message).at(pointer).with_help(help));
            return;
        }
        let kind = actions::kind_of(&undo.action);
        if matches!(kind, Kind::Loop | Kind::Branch) {
            let message = format!("the undo of `{}` runs {}, which takes no action of its own", step.name, undo.action);
            self.push(Diagnostic::new(Code::Undo, message).at(pointer));
            return;
        }
        if step.undo_target.is_none() {
            // In a loop body, the undo reads the loop's values as the step does.
            let enclosing_loop = self.steps.get(step.name.as_str()).and_then(|placed| placed.enclosing_loop);
            self.steps.insert(&undo.name, Placed { step: undo, enclosing_loop });
            self.step(undo);
        }
    }

    /// V7: every jump names a step that exists and that this step may jump to.
    fn jumps(&mut self, step: &'a Step, enclosing_loop: Option<&'a Step>) {
        if let Some(next) = &step.next_step {
            self.jump_target(enclosing_loop, next, step.field_pointer("nextStep"), "nextStep");
        }
        if let Some(OnFailure::Step(target)) = &step.on_failure {
            self.jump_target(enclosing_loop, target, step.field_pointer("onFailure"), "onFailure");
        }
        if let Some(OnCancel::Step(target)) = &step.on_cancel {
            self.jump_target(enclosing_loop, target, step.field_pointer("onCancel"), "onCancel");
        }
        if actions::kind_of(&step.action) == Kind::Branch {
            for (what, target, pointer) in branch::jumps(step) {
                self.jump_target(enclosing_loop, target, pointer, what);
            }
        }
    }

    fn jump_target(&mut self, from_loop: Option<&Step>, target: &str, pointer: String, what: &str) {
        match self.steps.get(target) {
            None => {
                let names = self.steps.keys().copied();
                let mut diagnostic =
                    Diagnostic::new(Code::UnknownStep, format!("{what} names `{target}`, but there is no such step"))
                        .at(pointer);
                if let Some(suggestion) = nearest(target, names) {
                    diagnostic = diagnostic.with_help(format!("did you mean `{suggestion}`?"));
                }
                self.push(diagnostic);
            }
            Some(placed) => {
                // A jump may stay in its own list or leave a loop body for the top level; it
                // may not enter a loop body from outside it.
                if let Some(target_loop) = placed.enclosing_loop
                    && from_loop.map(|l| &l.name) != Some(&target_loop.name)
                {
                    let message = format!(
                        "{what} jumps into the body of loop `{}` (step `{target}`); a loop body is entered only through its loop step",
                        target_loop.name
                    );
                    self.push(Diagnostic::new(Code::UnknownStep, message).at(pointer));
                }
            }
        }
    }

    /// V9: onCancel targets and onCancel on steps that cannot carry it.
    fn on_cancel(&mut self, step: &Step, info: Option<&Action>) {
        let Some(on_cancel) = &step.on_cancel else { return };
        if let Some(info) = info
            && !info.on_cancel_allowed
        {
            let pointer = step.field_pointer("onCancel");
            let diagnostic = if info.kind == Kind::Loop {
                Diagnostic::new(
                    Code::OnCancelNotAllowed,
                    "aws:loop steps cannot carry onCancel; put it on the steps inside the loop",
                )
                .at_key(pointer)
            } else {
                // AWS documents onCancel as unsupported on aws:updateVariable, yet accepts
                // runbooks that set it (AWSSupport-TroubleshootCloudWatchAlarm): warn only.
                let mut diagnostic = Diagnostic::new(
                    Code::OnCancelNotAllowed,
                    format!("onCancel is not supported on {} and is ignored", step.action),
                )
                .at_key(pointer);
                diagnostic.severity = Severity::Warning;
                diagnostic
            };
            self.push(diagnostic);
        }
        if let OnCancel::Step(target) = on_cancel
            && let Some(placed) = self.steps.get(target.as_str())
            && let Some(target_info) = actions::lookup(&placed.step.action)
            && !target_info.cancel_target
        {
            let message = format!(
                "onCancel jumps to `{target}`, a {} step; that action cannot run on the cancel path",
                placed.step.action
            );
            self.push(Diagnostic::new(Code::OnCancelTarget, message).at(step.field_pointer("onCancel")));
        }
    }

    fn timeout(&mut self, step: &Step, info: Option<&Action>) {
        let (Some(timeout), Some(maximum)) = (step.timeout_seconds, info.and_then(|i| i.max_timeout_seconds)) else {
            return;
        };
        if timeout > maximum {
            let message = format!("timeoutSeconds is {timeout}, but {} stops after at most {maximum} s", step.action);
            self.push(Diagnostic::new(Code::TimeoutAboveMaximum, message).at(step.field_pointer("timeoutSeconds")));
        }
    }

    fn step_outputs(&mut self, step: &Step) {
        for output in &step.outputs {
            if let Err(reason) = crate::document::selector::parse(&output.selector) {
                let message =
                    format!("selector `{}` is outside the supported JSONPath subset: {reason}", output.selector);
                self.push(Diagnostic::new(Code::SelectorSyntax, message).at(pointer_push(&output.pointer, "Selector")));
            }
        }
    }

    /// V12, V13 and the 8.2 reference rules for every string in a step's inputs.
    fn references_in_inputs(&mut self, step: &'a Step, enclosing_loop: Option<&'a Step>) {
        // The loop's own inputs (LoopCondition, MaxIterations) see the loop's built-ins too.
        let loop_scope = if actions::kind_of(&step.action) == Kind::Loop { Some(step) } else { enclosing_loop };
        // The step-output references are kept on the step for the plan's check of them.
        let mut outputs = Vec::new();
        step.visit_input_templates(|text, path| {
            let scope = Scope::Step { loop_step: loop_scope };
            self.references_in_text(text, &|| step.inputs_pointer(path), scope, &mut |producer, output| {
                outputs.push(step.output_reference(producer, output, path));
            });
        });
        step.keep_output_references(outputs);
    }

    /// `pointer` makes the text's pointer, for the rare finding: most texts have none.
    /// `on_output` is told each step-output reference.
    fn references_in_text(
        &mut self,
        text: &str,
        pointer: &dyn Fn() -> String,
        scope: Scope<'_>,
        on_output: &mut dyn FnMut(&str, &str),
    ) {
        if !template::has_braces(text) {
            return;
        }
        for (_, reference) in template::references_in(text, template::config_for(self.runbook)) {
            match reference {
                Reference::Parameter(name) => {
                    if self.runbook.parameter(name).is_none() {
                        let mut diagnostic =
                            Diagnostic::new(Code::UndeclaredParameter, format!("parameter `{name}` is not declared"))
                                .at(pointer());
                        let names = self.runbook.parameters.iter().map(|p| p.name.as_str());
                        if let Some(suggestion) = nearest(name, names) {
                            diagnostic = diagnostic.with_help(format!("did you mean `{suggestion}`?"));
                        }
                        self.push(diagnostic);
                    }
                }
                Reference::StepOutput { step, output } => {
                    on_output(step, output);
                    self.step_output_reference(step, output, pointer, &scope);
                }
                Reference::Variable(name) => {
                    if self.runbook.variable(name).is_none() {
                        let message = format!("variable `{name}` is not declared under `variables`");
                        self.push(Diagnostic::new(Code::UnknownVariable, message).at(pointer()));
                    }
                }
                Reference::Global(name) if !GLOBAL_VARIABLES.contains(&name) => {
                    let message = format!("`global:{name}` is not a system variable");
                    let help = format!("system variables: {}", GLOBAL_VARIABLES.join(", "));
                    self.push(Diagnostic::new(Code::UnknownSystemVariable, message).at(pointer()).with_help(help));
                }
                Reference::Automation(name) if !AUTOMATION_VARIABLES.contains(&name) => {
                    let message = format!(
                        "`automation:{name}` is not an automation variable; only automation:EXECUTION_ID exists"
                    );
                    self.push(Diagnostic::new(Code::UnknownSystemVariable, message).at(pointer()));
                }
                Reference::Ssm(path) if !matches!(scope, Scope::ParameterDefault) => {
                    let message = format!("`{{{{ssm:{path}}}}}` is only allowed in a parameter default");
                    let help = "declare a parameter whose default is the ssm: reference, and use that parameter here";
                    self.push(Diagnostic::new(Code::SsmReferenceOutsideDefault, message).at(pointer()).with_help(help));
                }
                Reference::Global(_) | Reference::Automation(_) | Reference::Ssm(_) => {}
            }
        }
    }

    fn step_output_reference(
        &mut self,
        step_name: &str,
        output: &str,
        pointer: &dyn Fn() -> String,
        scope: &Scope<'_>,
    ) {
        if step_name == "Loop"
            && let Scope::Step { loop_step: Some(loop_step) } = scope
        {
            if !matches!(output, "CurrentIteration" | "CurrentIteratorValue") {
                let message = format!(
                    "`Loop.{output}` is not a loop output (`{}` has CurrentIteration, CurrentIteratorValue)",
                    loop_step.name
                );
                self.push(Diagnostic::new(Code::UnknownOutput, message).at(pointer()));
            }
            return;
        }
        let Some(placed) = self.steps.get(step_name) else {
            let message =
                format!("`{{{{ {step_name}.{output} }}}}` refers to step `{step_name}`, which does not exist");
            let mut diagnostic = Diagnostic::new(Code::UnknownStepReference, message).at(pointer());
            if let Some(suggestion) = nearest(step_name, self.steps.keys().copied()) {
                diagnostic = diagnostic.with_help(format!("did you mean `{suggestion}`?"));
            }
            self.push(diagnostic);
            return;
        };
        let producer = placed.step;
        if !has_output(producer, output) {
            let message = format!(
                "step `{step_name}` declares no output `{output}`; at run time the reference stays literal text"
            );
            let builtin = actions::lookup(&producer.action).map_or(&[][..], |info| info.builtin_outputs);
            let known = producer.outputs.iter().map(|o| o.name.as_str()).chain(builtin.iter().copied());
            let mut diagnostic = Diagnostic::new(Code::UnknownOutput, message).at(pointer());
            if let Some(suggestion) = nearest(output, known) {
                diagnostic = diagnostic.with_help(format!("did you mean `{step_name}.{suggestion}`?"));
            }
            self.push(diagnostic);
        }
    }

    fn document_outputs(&mut self) {
        for output in &self.runbook.outputs {
            let Some((step_name, name)) = output.text.split_once('.') else {
                let message = format!("document output `{}` is not of the form step.Output", output.text);
                self.push(Diagnostic::new(Code::UnknownDocumentOutput, message).at(&output.pointer));
                continue;
            };
            match self.steps.get(step_name) {
                None => {
                    let message =
                        format!("document output `{}` names step `{step_name}`, which does not exist", output.text);
                    self.push(Diagnostic::new(Code::UnknownDocumentOutput, message).at(&output.pointer));
                }
                Some(placed) if !has_output(placed.step, name) => {
                    let message =
                        format!("document output `{}`: step `{step_name}` has no output `{name}`", output.text);
                    self.push(Diagnostic::new(Code::UnknownDocumentOutput, message).at(&output.pointer));
                }
                Some(_) => {}
            }
        }
    }
}

enum Scope<'a> {
    AssumeRole,
    ParameterDefault,
    Step { loop_step: Option<&'a Step> },
}

fn has_output(step: &Step, output: &str) -> bool {
    // AWS-internal actions have undocumented outputs (aws:shareSQLMedia's EBSSnapshotId).
    step.outputs.iter().any(|o| o.name == output)
        || actions::lookup(&step.action).is_some_and(|info| info.internal || info.builtin_outputs.contains(&output))
}

/// V14: keys are literal.
/// [`check_document`]'s rules over the step at `/mainSteps/{index}`, for a document whose
/// steps are checked as they are parsed (the document's value then holds `null` there).
pub fn check_step_document(step: &Map<String, Value>, index: usize, out: &mut Vec<Diagnostic>) {
    templated_keys_in(step, &mut vec![PathSegment::Key("mainSteps"), PathSegment::Index(index)], out);
}

fn templated_keys<'v>(value: &'v Value, path: &mut Vec<PathSegment<'v>>, out: &mut Vec<Diagnostic>) {
    match value {
        Value::Object(map) => templated_keys_in(map, path, out),
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                if child.is_object() || child.is_array() {
                    path.push(PathSegment::Index(i));
                    templated_keys(child, path, out);
                    path.pop();
                }
            }
        }
        _ => {}
    }
}

fn templated_keys_in<'v>(map: &'v Map<String, Value>, path: &mut Vec<PathSegment<'v>>, out: &mut Vec<Diagnostic>) {
    for (key, child) in map {
        path.push(PathSegment::Key(key));
        if template::has_braces(key) {
            let message = format!("key `{key}` contains a reference; keys must be literal");
            out.push(Diagnostic::new(Code::TemplatedKey, message).at_key(pointer_of(path)));
        }
        if child.is_object() || child.is_array() {
            templated_keys(child, path, out);
        }
        path.pop();
    }
}
