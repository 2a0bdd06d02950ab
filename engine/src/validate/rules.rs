//! Semantic rules of reference section 8.1 (V5-V18 except V11, which needs the plan) and
//! the planner-free rules of section 8.2. Each finding carries its stable code.

use std::collections::HashMap;

use serde_json::Value;

use super::{java_regex, selector};
use crate::actions;
use crate::diagnostic::{Code, Diagnostic, PathSegment, Severity, collect_templates, pointer_of, pointer_push};
use crate::document::model::{OnCancel, OnFailure, Runbook, Shape, Step, lenient_integer};
use crate::template::{self, AUTOMATION_VARIABLES, GLOBAL_VARIABLES, Reference};

/// Keys that belong to Change Manager templates (`Automation.ChangeTemplate`).
const CHANGE_TEMPLATE_KEYS: &[&str] = &["templateInformation", "executableRunBooks", "emergencyChange"];

pub const STRING_OPERATORS: &[&str] = &["StringEquals", "EqualsIgnoreCase", "StartsWith", "EndsWith", "Contains"];
pub const NUMERIC_OPERATORS: &[&str] =
    &["NumericEquals", "NumericGreater", "NumericLesser", "NumericGreaterOrEquals", "NumericLesserOrEquals"];
pub const BOOLEAN_OPERATORS: &[&str] = &["BooleanEquals"];

/// Where a step sits: at top level, or in the body of a loop.
struct Placed<'a> {
    step: &'a Step,
    enclosing_loop: Option<&'a Step>,
}

struct Rules<'a> {
    runbook: &'a Runbook,
    steps: HashMap<&'a str, Placed<'a>>,
    out: Vec<Diagnostic>,
}

/// The rules that look at the raw document rather than the model: templated keys (V14) and
/// Change Manager keys. Run before the value is taken apart into the model.
pub fn check_document(value: &Value) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    if let Some(root) = value.as_object() {
        for key in CHANGE_TEMPLATE_KEYS.iter().filter(|key| root.contains_key(**key)) {
            let message = format!("`{key}` belongs to Change Manager templates; the engine ignores it");
            out.push(Diagnostic::new(Code::ChangeTemplateKey, message).at_key(pointer_push("", key)));
        }
    }
    templated_keys(value, &mut Vec::new(), &mut out);
    out
}

/// Runs every rule over the model.
pub fn check(runbook: &Runbook) -> Vec<Diagnostic> {
    let mut rules = Rules { runbook, steps: HashMap::new(), out: Vec::new() };
    rules.index_steps(&runbook.steps, None);
    rules.top_level();
    rules.parameters();
    rules.variables();
    for placed in runbook.all_steps() {
        rules.step(placed);
    }
    rules.document_outputs();
    rules.out
}

impl<'a> Rules<'a> {
    fn push(&mut self, diagnostic: Diagnostic) {
        self.out.push(diagnostic);
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
            if step.action == "aws:loop" {
                self.index_steps(&step.body, Some(step));
            }
        }
    }

    fn top_level(&mut self) {
        if let Some(role) = &self.runbook.assume_role {
            self.references_in_text(role, "/assumeRole", Scope::AssumeRole);
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
                        describe_shape(shape)
                    );
                    self.push(Diagnostic::new(Code::ParameterDefaultType, message).at(&default_pointer));
                }
                let mut found = Vec::new();
                collect_templates(default, &default_pointer, &mut found);
                for (text, pointer) in found {
                    self.references_in_text(text, &pointer, Scope::ParameterDefault);
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
                    describe_shape(kind)
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
                } else if matches!(
                    step.action.as_str(),
                    "aws:runShellScript" | "aws:runPowerShellScript" | "aws:runDocument"
                ) {
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
        match step.action.as_str() {
            "aws:branch" => self.branch(step),
            "aws:loop" => self.loop_(step, enclosing_loop),
            "aws:updateVariable" => self.update_variable(step),
            "aws:executeScript" => self.execute_script(step),
            "aws:approve" => self.approve(step),
            "aws:sleep" => self.sleep(step),
            "aws:createStack" => self.create_stack(step),
            "aws:executeAutomation" => self.execute_automation(step),
            "aws:runCommand" => self.run_command(step),
            "aws:createTags" => self.create_tags(step),
            "aws:executeAwsApi" | "aws:assertAwsResourceProperty" | "aws:waitForAwsResourceProperty" => {
                self.aws_api(step);
            }
            _ => {}
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
        if step.action == "aws:branch" {
            if let Some(Value::String(target)) = step.inputs.get("Default") {
                self.jump_target(enclosing_loop, target, step.input_pointer("Default"), "Default");
            }
            let choices = step.inputs.get("Choices").and_then(Value::as_array).into_iter().flatten();
            for (i, choice) in choices.enumerate() {
                if let Some(Value::String(target)) = choice.get("NextStep") {
                    let pointer = format!("{}/{i}/NextStep", step.input_pointer("Choices"));
                    self.jump_target(enclosing_loop, target, pointer, "NextStep");
                }
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
    fn on_cancel(&mut self, step: &Step, info: Option<&actions::ActionInfo>) {
        let Some(on_cancel) = &step.on_cancel else { return };
        if let Some(info) = info
            && !info.on_cancel_allowed
        {
            let pointer = step.field_pointer("onCancel");
            let diagnostic = if step.action == "aws:loop" {
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

    fn timeout(&mut self, step: &Step, info: Option<&actions::ActionInfo>) {
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
            if let Err(reason) = selector::check(&output.selector) {
                let message =
                    format!("selector `{}` is outside the supported JSONPath subset: {reason}", output.selector);
                self.push(Diagnostic::new(Code::SelectorSyntax, message).at(pointer_push(&output.pointer, "Selector")));
            }
        }
    }

    /// V12, V13 and the 8.2 reference rules for every string in a step's inputs.
    fn references_in_inputs(&mut self, step: &'a Step, enclosing_loop: Option<&'a Step>) {
        let found = step.input_templates();
        // The loop's own inputs (LoopCondition, MaxIterations) see the loop's built-ins too.
        let loop_scope = if step.action == "aws:loop" { Some(step) } else { enclosing_loop };
        for (text, pointer) in found {
            self.references_in_text(text, &pointer, Scope::Step { loop_step: loop_scope });
        }
    }

    fn references_in_text(&mut self, text: &str, pointer: &str, scope: Scope<'_>) {
        if !template::has_braces(text) {
            return;
        }
        for (_, reference) in template::references_in(text, template::config_for(self.runbook)) {
            match reference {
                Reference::Parameter(name) => {
                    if self.runbook.parameter(name).is_none() {
                        let mut diagnostic =
                            Diagnostic::new(Code::UndeclaredParameter, format!("parameter `{name}` is not declared"))
                                .at(pointer);
                        let names = self.runbook.parameters.iter().map(|p| p.name.as_str());
                        if let Some(suggestion) = nearest(name, names) {
                            diagnostic = diagnostic.with_help(format!("did you mean `{suggestion}`?"));
                        }
                        self.push(diagnostic);
                    }
                }
                Reference::StepOutput { step, output } => self.step_output_reference(step, output, pointer, &scope),
                Reference::Variable(name) => {
                    if self.runbook.variable(name).is_none() {
                        let message = format!("variable `{name}` is not declared under `variables`");
                        self.push(Diagnostic::new(Code::UnknownVariable, message).at(pointer));
                    }
                }
                Reference::Global(name) if !GLOBAL_VARIABLES.contains(&name) => {
                    let message = format!("`global:{name}` is not a system variable");
                    let help = format!("system variables: {}", GLOBAL_VARIABLES.join(", "));
                    self.push(Diagnostic::new(Code::UnknownSystemVariable, message).at(pointer).with_help(help));
                }
                Reference::Automation(name) if !AUTOMATION_VARIABLES.contains(&name) => {
                    let message = format!(
                        "`automation:{name}` is not an automation variable; only automation:EXECUTION_ID exists"
                    );
                    self.push(Diagnostic::new(Code::UnknownSystemVariable, message).at(pointer));
                }
                Reference::Ssm(path) if !matches!(scope, Scope::ParameterDefault) => {
                    let message = format!("`{{{{ssm:{path}}}}}` is only allowed in a parameter default");
                    let help = "declare a parameter whose default is the ssm: reference, and use that parameter here";
                    self.push(Diagnostic::new(Code::SsmReferenceOutsideDefault, message).at(pointer).with_help(help));
                }
                Reference::Global(_) | Reference::Automation(_) | Reference::Ssm(_) => {}
            }
        }
    }

    fn step_output_reference(&mut self, step_name: &str, output: &str, pointer: &str, scope: &Scope<'_>) {
        if step_name == "Loop"
            && let Scope::Step { loop_step: Some(loop_step) } = scope
        {
            if !matches!(output, "CurrentIteration" | "CurrentIteratorValue") {
                let message = format!(
                    "`Loop.{output}` is not a loop output (`{}` has CurrentIteration, CurrentIteratorValue)",
                    loop_step.name
                );
                self.push(Diagnostic::new(Code::UnknownOutput, message).at(pointer));
            }
            return;
        }
        let Some(placed) = self.steps.get(step_name) else {
            let message =
                format!("`{{{{ {step_name}.{output} }}}}` refers to step `{step_name}`, which does not exist");
            let mut diagnostic = Diagnostic::new(Code::UnknownStepReference, message).at(pointer);
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
            self.push(Diagnostic::new(Code::UnknownOutput, message).at(pointer));
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

    /// V10: choices and conditions.
    fn branch(&mut self, step: &Step) {
        let Some(Value::Array(choices)) = step.inputs.get("Choices") else {
            let message = "aws:branch needs a `Choices` list";
            self.push(Diagnostic::new(Code::BranchStructure, message).at(pointer_push(&step.pointer, "inputs")));
            return;
        };
        if choices.is_empty() {
            self.push(Diagnostic::new(Code::BranchStructure, "`Choices` is empty").at(step.input_pointer("Choices")));
        }
        for (i, choice) in choices.iter().enumerate() {
            let pointer = pointer_push(&step.input_pointer("Choices"), i);
            self.condition(choice, &pointer, ConditionLevel::Choice);
        }
    }

    fn condition(&mut self, condition: &Value, pointer: &str, level: ConditionLevel) {
        let Some(object) = condition.as_object() else {
            let message = format!("a condition is a mapping, found {}", describe_json(condition));
            self.push(Diagnostic::new(Code::BranchStructure, message).at(pointer));
            return;
        };
        let mut operators = Vec::new();
        for (key, operand) in object {
            let key_pointer = pointer_push(pointer, key);
            match key.as_str() {
                "NextStep" if level == ConditionLevel::Choice => {
                    if !operand.is_string() {
                        self.push(
                            Diagnostic::new(Code::BranchStructure, "NextStep must be a step name").at(key_pointer),
                        );
                    }
                }
                "NextStep" => {
                    let message = match level {
                        ConditionLevel::LoopCondition => "a LoopCondition has no NextStep",
                        _ => "only a top-level choice has NextStep; this is a sub-condition",
                    };
                    self.push(Diagnostic::new(Code::BranchStructure, message).at_key(key_pointer));
                }
                "Variable" => {}
                "And" | "Or" => {
                    operators.push(key.as_str());
                    match operand.as_array() {
                        Some(items) if items.len() >= 2 => {
                            for (i, item) in items.iter().enumerate() {
                                self.condition(item, &pointer_push(&key_pointer, i), ConditionLevel::Sub);
                            }
                        }
                        Some(items) => {
                            let message = format!("`{key}` needs at least two conditions, found {}", items.len());
                            self.push(Diagnostic::new(Code::BranchStructure, message).at(key_pointer));
                        }
                        None => {
                            let message = format!("`{key}` takes a list of conditions");
                            self.push(Diagnostic::new(Code::BranchStructure, message).at(key_pointer));
                        }
                    }
                }
                "Not" => {
                    operators.push("Not");
                    if operand.is_object() {
                        self.condition(operand, &key_pointer, ConditionLevel::Sub);
                    } else {
                        let message = "`Not` takes a single condition (a mapping, not a list)";
                        self.push(Diagnostic::new(Code::BranchStructure, message).at(key_pointer));
                    }
                }
                op if STRING_OPERATORS.contains(&op)
                    || NUMERIC_OPERATORS.contains(&op)
                    || BOOLEAN_OPERATORS.contains(&op) =>
                {
                    operators.push(op);
                    if let Some(problem) = operand_problem(op, operand) {
                        self.push(Diagnostic::new(Code::BranchStructure, problem).at(key_pointer));
                    }
                }
                other => {
                    let mut diagnostic =
                        Diagnostic::new(Code::BranchOperator, format!("unknown branch operator `{other}`"))
                            .at_key(key_pointer);
                    let known = STRING_OPERATORS
                        .iter()
                        .chain(NUMERIC_OPERATORS)
                        .chain(BOOLEAN_OPERATORS)
                        .chain(&["And", "Or", "Not"])
                        .copied();
                    if let Some(suggestion) = nearest(other, known) {
                        diagnostic = diagnostic.with_help(format!("did you mean `{suggestion}`?"));
                    }
                    self.push(diagnostic);
                    operators.push(other_marker());
                }
            }
        }
        if level == ConditionLevel::Choice && !object.contains_key("NextStep") {
            self.push(Diagnostic::new(Code::BranchStructure, "this choice has no NextStep").at(pointer));
        }
        let combinator = operators.iter().any(|op| matches!(*op, "And" | "Or" | "Not"));
        match operators.len() {
            0 => {
                let message = "a condition needs one operator (e.g. StringEquals) or And/Or/Not";
                self.push(Diagnostic::new(Code::BranchStructure, message).at(pointer));
            }
            1 if combinator && object.contains_key("Variable") => {
                let message = format!("`Variable` has no meaning beside `{}`", operators[0]);
                self.push(Diagnostic::new(Code::BranchStructure, message).at_key(pointer_push(pointer, "Variable")));
            }
            1 if !combinator && operators[0] != other_marker() => match object.get("Variable") {
                None => {
                    let message = format!("`{}` compares a `Variable`, but the condition has none", operators[0]);
                    self.push(Diagnostic::new(Code::BranchStructure, message).at(pointer));
                }
                Some(Value::String(_)) => {}
                Some(other) => {
                    let message = format!("`Variable` is a reference string, found {}", describe_json(other));
                    self.push(Diagnostic::new(Code::BranchStructure, message).at(pointer_push(pointer, "Variable")));
                }
            },
            1 => {}
            _ => {
                let listed: Vec<_> =
                    operators.iter().filter(|op| **op != other_marker()).map(|op| format!("`{op}`")).collect();
                let message = format!("a condition takes exactly one operator, found {}", listed.join(", "));
                self.push(Diagnostic::new(Code::BranchStructure, message).at(pointer));
            }
        }
    }

    /// V18 and the loop limits.
    fn loop_(&mut self, step: &Step, enclosing_loop: Option<&Step>) {
        let inputs_pointer = pointer_push(&step.pointer, "inputs");
        if let Some(outer) = enclosing_loop {
            let message = format!("loop `{}` is inside loop `{}`; loops cannot be nested", step.name, outer.name);
            self.push(Diagnostic::new(Code::NestedLoop, message).at(step.field_pointer("action")));
        }
        match step.inputs.get("Steps") {
            Some(Value::Array(steps)) if !steps.is_empty() => {}
            Some(_) => self.push(
                Diagnostic::new(Code::LoopStructure, "`Steps` must be a non-empty list of steps")
                    .at(step.input_pointer("Steps")),
            ),
            None => self.push(
                Diagnostic::new(Code::LoopStructure, "aws:loop needs `Steps`, the loop body").at(&inputs_pointer),
            ),
        }
        let iterators = step.inputs.get("Iterators");
        let condition = step.inputs.get("LoopCondition");
        match (iterators, condition) {
            (Some(_), Some(_)) => {
                let message = "aws:loop takes either `Iterators` (for-each) or `LoopCondition` (do-while), not both";
                self.push(Diagnostic::new(Code::LoopStructure, message).at(&inputs_pointer));
            }
            (None, None) => {
                let message = "aws:loop needs `Iterators` (for-each) or `LoopCondition` (do-while)";
                self.push(Diagnostic::new(Code::LoopStructure, message).at(&inputs_pointer));
            }
            (None, Some(condition)) => {
                if step.inputs.contains_key("IteratorDataType") {
                    let message = "`IteratorDataType` only applies with `Iterators`";
                    self.push(
                        Diagnostic::new(Code::LoopStructure, message).at_key(step.input_pointer("IteratorDataType")),
                    );
                }
                self.condition(condition, &step.input_pointer("LoopCondition"), ConditionLevel::LoopCondition);
            }
            (Some(_), None) => {}
        }
        if let Some(Value::Array(items)) = iterators
            && items.len() > 100
        {
            let message = format!("{} Iterators; a loop runs at most 100 iterations", items.len());
            self.push(Diagnostic::new(Code::LoopLimit, message).at(step.input_pointer("Iterators")));
        }
        if let Some(max) = step.inputs.get("MaxIterations").and_then(lenient_integer)
            && max > 100
        {
            let message = format!("MaxIterations is {max}; the maximum is 100");
            self.push(Diagnostic::new(Code::LoopLimit, message).at(step.input_pointer("MaxIterations")));
        }
    }

    fn update_variable(&mut self, step: &Step) {
        let Some(Value::String(name)) = step.inputs.get("Name") else { return };
        let Some(variable_name) = name.strip_prefix("variable:") else {
            let message = format!("Name is `{name}`; write `variable:NAME`");
            self.push(Diagnostic::new(Code::UpdateVariable, message).at(step.input_pointer("Name")));
            return;
        };
        let Some(variable) = self.runbook.variable(variable_name) else {
            let message = format!("variable `{variable_name}` is not declared under `variables`");
            self.push(Diagnostic::new(Code::UpdateVariable, message).at(step.input_pointer("Name")));
            return;
        };
        let (Some(kind), Some(value)) = (variable.kind, step.inputs.get("Value")) else { return };
        let templated = value.as_str().is_some_and(template::is_whole_template);
        if !templated && !kind.admits(value) {
            let message = format!(
                "Value is {}, but variable `{variable_name}` is a {} ({}); aws:updateVariable does not convert types",
                describe_json(value),
                kind.name(),
                describe_shape(kind)
            );
            self.push(Diagnostic::new(Code::UpdateVariable, message).at(step.input_pointer("Value")));
        }
    }

    /// V16: attachments exist.
    fn execute_script(&mut self, step: &Step) {
        let Some(Value::String(attachment)) = step.inputs.get("Attachment") else { return };
        if template::is_whole_template(attachment) || self.runbook.files.iter().any(|f| f.name == *attachment) {
            return;
        }
        let message = format!("Attachment `{attachment}` is not declared under `files`");
        self.push(Diagnostic::new(Code::MissingAttachment, message).at(step.input_pointer("Attachment")));
    }

    fn approve(&mut self, step: &Step) {
        let (Some(Value::Array(approvers)), Some(minimum)) =
            (step.inputs.get("Approvers"), step.inputs.get("MinRequiredApprovals").and_then(lenient_integer))
        else {
            return;
        };
        if minimum as usize > approvers.len() {
            let message =
                format!("MinRequiredApprovals is {minimum}, but only {} approvers are listed", approvers.len());
            self.push(Diagnostic::new(Code::ApproversCount, message).at(step.input_pointer("MinRequiredApprovals")));
        }
    }

    fn sleep(&mut self, step: &Step) {
        let duration = step.inputs.get("Duration");
        let timestamp = step.inputs.get("Timestamp");
        let pointer = pointer_push(&step.pointer, "inputs");
        match (duration, timestamp) {
            (None, None) => {
                self.push(
                    Diagnostic::new(Code::SleepDuration, "aws:sleep needs `Duration` or `Timestamp`").at(pointer),
                );
            }
            (Some(Value::String(text)), _) if !template::has_braces(text) => {
                if let Err(problem) = check_duration(text) {
                    self.push(Diagnostic::new(Code::SleepDuration, problem).at(step.input_pointer("Duration")));
                }
            }
            (_, Some(Value::String(text)))
                if !template::has_braces(text) && text.parse::<jiff::Timestamp>().is_err() =>
            {
                let message = format!("Timestamp `{text}` is not an ISO-8601 instant (e.g. 2026-01-31T12:00:00Z)");
                self.push(Diagnostic::new(Code::SleepDuration, message).at(step.input_pointer("Timestamp")));
            }
            _ => {}
        }
    }

    fn create_stack(&mut self, step: &Step) {
        let body = step.inputs.contains_key("TemplateBody");
        let url = step.inputs.contains_key("TemplateURL");
        if body == url {
            let message = match body {
                true => "aws:createStack takes `TemplateBody` or `TemplateURL`, not both",
                false => "aws:createStack needs `TemplateBody` or `TemplateURL`",
            };
            self.push(Diagnostic::new(Code::CreateStackTemplate, message).at(pointer_push(&step.pointer, "inputs")));
        }
    }

    fn execute_automation(&mut self, step: &Step) {
        let inputs = &step.inputs;
        if inputs.contains_key("Targets") && inputs.contains_key("TargetMaps") {
            let message = "aws:executeAutomation takes `Targets` or `TargetMaps`, not both";
            self.push(Diagnostic::new(Code::ExecuteAutomationTargets, message).at(step.input_pointer("TargetMaps")));
        }
        if inputs.contains_key("Targets") && !inputs.contains_key("TargetParameterName") {
            let message = "`Targets` needs `TargetParameterName`: the child parameter each target fills";
            self.push(Diagnostic::new(Code::ExecuteAutomationTargets, message).at(step.input_pointer("Targets")));
        }
    }

    /// 8.2 targets rule and V15 input types.
    fn run_command(&mut self, step: &Step) {
        let inputs = &step.inputs;
        if !inputs.contains_key("InstanceIds") && !inputs.contains_key("Targets") {
            let message = "aws:runCommand needs `InstanceIds` or `Targets`";
            self.push(Diagnostic::new(Code::RunCommandTargets, message).at(pointer_push(&step.pointer, "inputs")));
        }
        if let Some(Value::Array(ids)) = inputs.get("InstanceIds")
            && ids.len() > 50
        {
            let message = format!("{} InstanceIds; aws:runCommand takes at most 50 (use Targets for more)", ids.len());
            self.push(Diagnostic::new(Code::RunCommandTargets, message).at(step.input_pointer("InstanceIds")));
        }
        const EXPECTED: &[(&str, &[Shape])] = &[
            ("DocumentName", &[Shape::String]),
            ("InstanceIds", &[Shape::StringList]),
            ("Targets", &[Shape::MapList]),
            ("Parameters", &[Shape::StringMap]),
            ("CloudWatchOutputConfig", &[Shape::StringMap]),
            ("Comment", &[Shape::String]),
            ("OutputS3BucketName", &[Shape::String]),
            ("OutputS3KeyPrefix", &[Shape::String]),
            ("ServiceRoleArn", &[Shape::String]),
            ("TimeoutSeconds", &[Shape::Integer, Shape::String]),
        ];
        for (input, shapes) in EXPECTED {
            if let Some(Value::String(text)) = inputs.get(*input) {
                self.run_command_reference(text, shapes, &step.input_pointer(input), input);
            }
        }
        if let Some(Value::Object(parameters)) = inputs.get("Parameters") {
            for (name, value) in parameters {
                if let Value::String(text) = value {
                    let pointer = pointer_push(&step.input_pointer("Parameters"), name);
                    self.run_command_reference(
                        text,
                        &[Shape::String, Shape::StringList, Shape::Integer, Shape::Boolean],
                        &pointer,
                        name,
                    );
                }
            }
        }
    }

    fn run_command_reference(&mut self, text: &str, shapes: &[Shape], pointer: &str, input: &str) {
        let Some(Reference::Parameter(name)) = template::whole_reference(text) else { return };
        let Some(kind) = self.runbook.parameter(name).and_then(|p| p.kind) else { return };
        let shape = kind.shape();
        // A String parameter is accepted where a list is expected: it becomes one item.
        let fits = shapes.contains(&shape) || (shape == Shape::String && shapes.contains(&Shape::StringList));
        if !fits {
            let expected: Vec<_> = shapes.iter().map(|s| s.name()).collect();
            let message =
                format!("`{input}` takes {}, but parameter `{name}` is a {}", expected.join(" or "), shape.name());
            self.push(Diagnostic::new(Code::RunCommandInputType, message).at(pointer));
        }
    }

    fn create_tags(&mut self, step: &Step) {
        let Some(Value::String(resource_type)) = step.inputs.get("ResourceType") else { return };
        if resource_type == "EC2" || resource_type.contains("{{") {
            return;
        }
        if let Some(Value::Array(ids)) = step.inputs.get("ResourceIds")
            && ids.len() > 1
        {
            let message = format!("ResourceType {resource_type} takes a single ResourceId, found {}", ids.len());
            self.push(Diagnostic::new(Code::CreateTagsResources, message).at(step.input_pointer("ResourceIds")));
        }
    }

    /// 7.1: the `Service`, `Api` and request parameters of an API action, checked against
    /// the bundled AWS models. Warnings: the service itself only finds out at run time.
    fn aws_api(&mut self, step: &Step) {
        let literal = |key: &str| match step.inputs.get(key) {
            Some(Value::String(text)) if !text.contains("{{") => Some(text.as_str()),
            _ => None,
        };
        let Some(service) = literal("Service") else { return };
        let Some(model) = crate::aws::model::service(service) else {
            let mut diagnostic =
                Diagnostic::new(Code::AwsService, format!("`{service}` is not an AWS service the engine knows"))
                    .at(step.input_pointer("Service"));
            if let Some(suggestion) = nearest(service, crate::aws::model::service_names().into_iter()) {
                diagnostic = diagnostic.with_help(format!("did you mean `{suggestion}`?"));
            }
            self.push(diagnostic);
            return;
        };
        if crate::aws::model::canonical_service(service) != Some(service) {
            let canonical = crate::aws::model::canonical_service(service).unwrap_or(service);
            let message = format!("the boto3 client name is `{canonical}`, not `{service}`");
            self.push(Diagnostic::new(Code::AwsService, message).at(step.input_pointer("Service")));
        }
        let Some(api) = literal("Api") else { return };
        let Some(operation) = model.operation(api) else {
            let message = format!("{} has no operation `{api}`", model.metadata.service_id);
            let mut diagnostic = Diagnostic::new(Code::AwsOperation, message).at(step.input_pointer("Api"));
            if let Some(suggestion) = nearest(api, model.operations.keys().map(String::as_str)) {
                diagnostic = diagnostic.with_help(format!("did you mean `{suggestion}`?"));
            }
            self.push(diagnostic);
            return;
        };
        let params = actions::api::request_params(&step.inputs);
        let (_, problems) = crate::aws::check::check(&model, operation, &params, &[]);
        for problem in problems {
            let top = problem.path.split(['.', '[']).next().unwrap_or_default();
            let pointer = if params.contains_key(top) { step.input_pointer(top) } else { step.field_pointer("inputs") };
            let message = format!("{}: {problem}", operation.name);
            self.push(Diagnostic::new(Code::AwsParameter, message).at(pointer));
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ConditionLevel {
    Choice,
    Sub,
    LoopCondition,
}

/// Placeholder pushed for an unknown operator so the count of operators stays right.
fn other_marker() -> &'static str {
    "?"
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

fn operand_problem(operator: &str, operand: &Value) -> Option<String> {
    let templated = operand.as_str().is_some_and(|s| s.contains("{{"));
    if templated {
        return None;
    }
    if STRING_OPERATORS.contains(&operator) {
        return (!matches!(operand, Value::String(_) | Value::Number(_) | Value::Bool(_)))
            .then(|| format!("`{operator}` compares with a string, found {}", describe_json(operand)));
    }
    if NUMERIC_OPERATORS.contains(&operator) {
        let numeric = operand.is_number() || operand.as_str().is_some_and(|s| s.trim().parse::<f64>().is_ok());
        return (!numeric).then(|| format!("`{operator}` compares with a number, found {}", describe_json(operand)));
    }
    let boolean = operand.is_boolean() || crate::document::model::lenient_bool(operand).is_some();
    (!boolean).then(|| format!("`{operator}` compares with true or false, found {}", describe_json(operand)))
}

/// An ISO-8601 duration for aws:sleep: not negative, at most 604799 s.
fn check_duration(text: &str) -> Result<(), String> {
    let span: jiff::Span =
        text.parse().map_err(|_| format!("Duration `{text}` is not an ISO-8601 duration (e.g. PT30S, PT1H30M)"))?;
    let seconds = span
        .total(jiff::SpanTotal::from(jiff::Unit::Second).days_are_24_hours())
        .map_err(|error| format!("Duration `{text}` cannot be measured: {error}"))?;
    if seconds < 0.0 {
        return Err(format!("Duration `{text}` is negative"));
    }
    if seconds > 604_799.0 {
        return Err(format!("Duration `{text}` is {seconds} s; aws:sleep waits at most 604799 s (7 days)"));
    }
    Ok(())
}

/// V14: keys are literal.
fn templated_keys<'v>(value: &'v Value, path: &mut Vec<PathSegment<'v>>, out: &mut Vec<Diagnostic>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                path.push(PathSegment::Key(key));
                if key.contains("{{") {
                    let message = format!("key `{key}` contains a reference; keys must be literal");
                    out.push(Diagnostic::new(Code::TemplatedKey, message).at_key(pointer_of(path)));
                }
                if child.is_object() || child.is_array() {
                    templated_keys(child, path, out);
                }
                path.pop();
            }
        }
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

pub fn describe_json(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string {}", super::schema::short(&Value::String(s.clone()))),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "a mapping".into(),
    }
}

pub fn describe_shape(shape: Shape) -> &'static str {
    match shape {
        Shape::String => "a string",
        Shape::StringList => "a list of strings",
        Shape::Integer => "an integer",
        Shape::Boolean => "true or false",
        Shape::StringMap => "a mapping",
        Shape::MapList => "a list of mappings",
    }
}

/// The closest name by edit distance, when it is close enough to be a likely typo.
pub fn nearest<'n>(name: &str, candidates: impl Iterator<Item = &'n str>) -> Option<&'n str> {
    // Two edits cover a transposition (`strat` for `start`), the commonest typo.
    let limit = (name.chars().count() / 3).max(2);
    let name = name.to_ascii_lowercase();
    candidates
        .map(|candidate| (edit_distance(&name, &candidate.to_ascii_lowercase()), candidate))
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, candidate)| (*distance, *candidate))
        .map(|(_, candidate)| candidate)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}
