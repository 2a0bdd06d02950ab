//! Values known before a run: parameters bound from the caller's values and the rendered
//! defaults (reference 2.3, 2.5), and the scope a plan renders step inputs with. What only
//! the run can know (step outputs, the account, the time, Parameter Store) stays unknown.

use std::borrow::Cow;
use std::cell::RefCell;

use serde_json::{Map, Value};

use super::Plan;
use crate::actions::{self, Kind, update_variable};
use crate::diagnostic::{Code, Diagnostic, pointer_push};
use crate::document::model::Runbook;
use crate::template::{self, Lookup, Reference, Scope};

/// Where a parameter's value came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    Supplied,
    Default,
    /// Required, and not supplied.
    NotSupplied,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Supplied => "supplied",
            Origin::Default => "default",
            Origin::NotSupplied => "not supplied",
        }
    }
}

/// One parameter's value, rendered as far as known.
#[derive(Clone, Debug, PartialEq)]
pub struct Binding {
    pub name: String,
    pub origin: Origin,
    /// The value; with `unknown` references it still holds their `{{ }}` text. Null when
    /// not supplied.
    pub value: Value,
    /// References in the default whose values only the run has.
    pub unknown: Vec<String>,
}

impl Binding {
    pub fn is_known(&self) -> bool {
        self.origin != Origin::NotSupplied && self.unknown.is_empty()
    }
}

/// Every declared parameter's binding, in declaration order, and problems with defaults.
#[derive(Clone, Debug, Default)]
pub struct Bound {
    pub parameters: Vec<Binding>,
    pub diagnostics: Vec<Diagnostic>,
}

impl Bound {
    pub fn get(&self, name: &str) -> Option<&Binding> {
        self.parameters.iter().find(|binding| binding.name == name)
    }

    /// The parameters whose values are known, with their values.
    pub fn known(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.parameters
            .iter()
            .filter(|binding| binding.is_known())
            .map(|binding| (binding.name.as_str(), &binding.value))
    }
}

/// Binds parameters: supplied values as given (they are data, never rendered), defaults
/// rendered in dependency order with `system` for `global:`, `automation:` and `ssm:`.
/// Defaults that refer to each other in a circle are reported and stay unknown.
pub fn bind(runbook: &Runbook, supplied: &Map<String, Value>, system: &dyn Scope) -> Bound {
    let binder = Binder {
        runbook,
        supplied,
        system,
        config: template::config_for(runbook),
        state: RefCell::new(vec![State::Pending; runbook.parameters.len()]),
        stack: RefCell::new(Vec::new()),
        diagnostics: RefCell::new(Vec::new()),
    };
    for index in 0..runbook.parameters.len() {
        binder.resolve(index);
    }
    let parameters = binder
        .state
        .into_inner()
        .into_iter()
        .map(|state| match state {
            State::Done(binding) => binding,
            State::Pending | State::InProgress => unreachable!("every parameter was resolved"),
        })
        .collect();
    Bound { parameters, diagnostics: binder.diagnostics.into_inner() }
}

#[derive(Clone, Debug)]
enum State {
    Pending,
    InProgress,
    Done(Binding),
}

struct Binder<'a> {
    runbook: &'a Runbook,
    supplied: &'a Map<String, Value>,
    system: &'a dyn Scope,
    config: template::Config,
    state: RefCell<Vec<State>>,
    stack: RefCell<Vec<usize>>,
    diagnostics: RefCell<Vec<Diagnostic>>,
}

impl Binder<'_> {
    fn resolve(&self, index: usize) -> Binding {
        let state = self.state.borrow()[index].clone();
        match state {
            State::Done(binding) => return binding,
            State::InProgress => return self.cycle(index),
            State::Pending => {}
        }
        let parameter = &self.runbook.parameters[index];
        let binding = match (self.supplied.get(&parameter.name), &parameter.default) {
            (Some(value), _) => known(&parameter.name, Origin::Supplied, value.clone()),
            (None, None) => Binding {
                name: parameter.name.clone(),
                origin: Origin::NotSupplied,
                value: Value::Null,
                unknown: Vec::new(),
            },
            (None, Some(default)) => {
                self.state.borrow_mut()[index] = State::InProgress;
                self.stack.borrow_mut().push(index);
                let rendered = template::render(default, self, self.config);
                self.stack.borrow_mut().pop();
                match rendered {
                    Ok(rendered) => Binding {
                        name: parameter.name.clone(),
                        origin: Origin::Default,
                        value: rendered.value,
                        unknown: rendered.unknown,
                    },
                    // Only an expression (opt-in) can fail here; keep the default as written.
                    Err(error) => Binding {
                        name: parameter.name.clone(),
                        origin: Origin::Default,
                        value: default.clone(),
                        unknown: vec![error.to_string()],
                    },
                }
            }
        };
        // A circle found below may already have settled this parameter.
        if let State::Done(settled) = self.state.borrow()[index].clone() {
            return settled;
        }
        self.state.borrow_mut()[index] = State::Done(binding.clone());
        binding
    }

    /// `index` is being resolved further up: its default refers to itself through others.
    fn cycle(&self, index: usize) -> Binding {
        let stack = self.stack.borrow();
        let start = stack.iter().position(|&i| i == index).unwrap_or(0);
        let names: Vec<&str> = stack[start..].iter().map(|&i| self.runbook.parameters[i].name.as_str()).collect();
        let parameter = &self.runbook.parameters[index];
        let message = format!("the defaults of {} refer to each other in a circle", describe_circle(&names));
        self.diagnostics.borrow_mut().push(
            Diagnostic::new(Code::ParameterDefaultCycle, message)
                .at(pointer_push(&parameter.pointer, "default"))
                .with_help("give one of these parameters a literal default"),
        );
        let unknown = Binding {
            name: parameter.name.clone(),
            origin: Origin::Default,
            value: parameter.default.clone().unwrap_or(Value::Null),
            unknown: vec![parameter.name.clone()],
        };
        for &i in &stack[start..] {
            self.state.borrow_mut()[i] =
                State::Done(Binding { name: self.runbook.parameters[i].name.clone(), ..unknown.clone() });
        }
        unknown
    }
}

fn describe_circle(names: &[&str]) -> String {
    let mut text: Vec<String> = names.iter().map(|name| format!("`{name}`")).collect();
    text.push(format!("`{}`", names[0]));
    text.join(" -> ")
}

fn known(name: &str, origin: Origin, value: Value) -> Binding {
    Binding { name: name.to_owned(), origin, value, unknown: Vec::new() }
}

impl Scope for Binder<'_> {
    fn lookup(&self, reference: Reference<'_>) -> Lookup<'_> {
        match reference {
            Reference::Parameter(name) => match self.runbook.parameters.iter().position(|p| p.name == name) {
                Some(index) => {
                    let binding = self.resolve(index);
                    if binding.is_known() { Lookup::Known(Cow::Owned(binding.value)) } else { Lookup::Unknown }
                }
                None => Lookup::Missing,
            },
            Reference::Global(_) | Reference::Automation(_) | Reference::Ssm(_) => self.system.lookup(reference),
            // Defaults are evaluated before any step or variable exists.
            Reference::StepOutput { .. } | Reference::Variable(_) => Lookup::Missing,
        }
    }
}

/// System values before a run: none are known.
pub struct NothingKnown;

impl Scope for NothingKnown {
    fn lookup(&self, _: Reference<'_>) -> Lookup<'_> {
        Lookup::Unknown
    }
}

/// The scope a plan renders step inputs with: bound parameters, variables nobody writes,
/// and unknown for everything only the run has.
pub struct PlanScope<'a> {
    plan: &'a Plan<'a>,
    parameters: &'a Bound,
    /// Variables some `aws:updateVariable` step writes: their value depends on the path.
    written: Vec<&'a str>,
}

impl<'a> PlanScope<'a> {
    pub fn new(plan: &'a Plan<'a>, parameters: &'a Bound) -> PlanScope<'a> {
        let written = plan
            .steps()
            .map(|id| plan.step(id))
            .filter(|step| actions::kind_of(&step.action) == Kind::Variable)
            .filter_map(update_variable::target)
            .collect();
        PlanScope { plan, parameters, written }
    }
}

impl Scope for PlanScope<'_> {
    fn lookup(&self, reference: Reference<'_>) -> Lookup<'_> {
        match reference {
            Reference::Parameter(name) => match self.parameters.get(name) {
                Some(binding) if binding.is_known() => Lookup::Known(Cow::Borrowed(&binding.value)),
                Some(_) => Lookup::Unknown,
                None => Lookup::Missing,
            },
            Reference::StepOutput { step, .. } if self.plan.find(step).is_some() || step == "Loop" => Lookup::Unknown,
            Reference::StepOutput { .. } => Lookup::Missing,
            Reference::Variable(name) => {
                let Some(variable) = self.plan.runbook.variable(name) else { return Lookup::Missing };
                match &variable.default {
                    Some(value) if !self.written.contains(&name) => Lookup::Known(Cow::Borrowed(value)),
                    _ => Lookup::Unknown,
                }
            }
            Reference::Global(_) | Reference::Automation(_) | Reference::Ssm(_) => Lookup::Unknown,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::document::{self, Format};

    fn runbook(yaml: &str) -> Runbook {
        let loaded = document::load("t.yaml".into(), yaml.as_bytes().to_vec(), Some(Format::Yaml));
        Runbook::from_value(loaded.value.unwrap())
    }

    const DOC: &str = "schemaVersion: '0.3'
parameters:
  Role:
    type: String
    default: 'arn:aws:iam::{{global:ACCOUNT_ID}}:role/{{ RoleName }}'
  RoleName:
    type: String
    default: 'Ops-{{ Env }}'
  Env:
    type: String
  Size:
    type: Integer
    default: 3
  Copy:
    type: Integer
    default: '{{ Size }}'
mainSteps:
  - {name: a, action: aws:sleep, inputs: {Duration: PT1S}}
";

    #[test]
    fn defaults_render_in_dependency_order_and_keep_types() {
        let supplied = json!({"Env": "prod"});
        let bound = bind(&runbook(DOC), supplied.as_object().unwrap(), &NothingKnown);
        assert!(bound.diagnostics.is_empty());
        assert_eq!(bound.get("RoleName").unwrap().value, json!("Ops-prod"));
        assert_eq!(bound.get("Copy").unwrap().value, json!(3));
        let role = bound.get("Role").unwrap();
        assert_eq!(role.value, json!("arn:aws:iam::{{global:ACCOUNT_ID}}:role/Ops-prod"));
        assert_eq!(role.unknown, vec!["global:ACCOUNT_ID".to_owned()]);
        assert!(!role.is_known());
    }

    #[test]
    fn unsupplied_required_parameters_are_unknown_downstream() {
        let bound = bind(&runbook(DOC), &Map::new(), &NothingKnown);
        assert_eq!(bound.get("Env").unwrap().origin, Origin::NotSupplied);
        assert_eq!(bound.get("RoleName").unwrap().unknown, vec!["Env".to_owned()]);
    }

    #[test]
    fn supplied_values_are_data() {
        let supplied = json!({"Env": "{{ Size }}"});
        let bound = bind(&runbook(DOC), supplied.as_object().unwrap(), &NothingKnown);
        assert_eq!(bound.get("RoleName").unwrap().value, json!("Ops-{{ Size }}"));
    }

    #[test]
    fn circular_defaults_are_reported() {
        let doc = "schemaVersion: '0.3'
parameters:
  A: {type: String, default: 'a{{ B }}'}
  B: {type: String, default: 'b{{ A }}'}
  C: {type: String, default: '{{ C }}'}
mainSteps:
  - {name: a, action: aws:sleep, inputs: {Duration: PT1S}}
";
        let bound = bind(&runbook(doc), &Map::new(), &NothingKnown);
        let messages: Vec<_> = bound.diagnostics.iter().map(|d| (d.code, d.message.as_str())).collect();
        assert_eq!(
            messages,
            vec![
                (Code::ParameterDefaultCycle, "the defaults of `A` -> `B` -> `A` refer to each other in a circle"),
                (Code::ParameterDefaultCycle, "the defaults of `C` -> `C` refer to each other in a circle"),
            ]
        );
        assert!(bound.parameters.iter().all(|binding| !binding.is_known()));
    }
}
