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

/// The most a parameter's default may grow to when rendered (its JSON text). Defaults that
/// refer to other parameters twice each would otherwise double at every step of a chain: a
/// 1.4 KB runbook once asked for 1.6 GB. A default past this stays unknown, and is reported.
pub const MAX_DEFAULT_BYTES: usize = 256 * 1024;

/// Binds parameters: supplied values as given (they are data, never rendered), defaults
/// rendered in dependency order with `system` for `global:`, `automation:` and `ssm:`.
/// Defaults that refer to each other in a circle are reported and stay unknown. The order is
/// found by an explicit walk, never recursion, however long a chain of defaults is.
pub fn bind(runbook: &Runbook, supplied: &Map<String, Value>, system: &dyn Scope) -> Bound {
    let config = template::config_for(runbook);
    let binder = Binder { runbook, system, bindings: RefCell::new(vec![None; runbook.parameters.len()]) };
    let mut diagnostics = Vec::new();
    let dependencies = dependencies(runbook, supplied, config);
    let (order, circles) = dependency_order(&dependencies);
    for members in circles {
        binder.circle(&members, &mut diagnostics);
    }
    for index in order {
        if binder.bindings.borrow()[index].is_some() {
            continue;
        }
        let binding = binder.bind_one(index, supplied, config, &mut diagnostics);
        binder.bindings.borrow_mut()[index] = Some(binding);
    }
    let parameters =
        binder.bindings.into_inner().into_iter().map(|binding| binding.expect("every parameter was bound")).collect();
    Bound { parameters, diagnostics }
}

/// The parameters each one's default refers to (indexes), when its default is used. An
/// expression (opt-in) may name any parameter: every parameter name it holds as a word counts.
fn dependencies(runbook: &Runbook, supplied: &Map<String, Value>, config: template::Config) -> Vec<Vec<usize>> {
    let index_of: std::collections::HashMap<&str, usize> =
        runbook.parameters.iter().enumerate().map(|(i, parameter)| (parameter.name.as_str(), i)).collect();
    runbook
        .parameters
        .iter()
        .map(|parameter| {
            let mut found = Vec::new();
            let Some(default) = parameter.default.as_ref().filter(|_| !supplied.contains_key(&parameter.name)) else {
                return found;
            };
            template::visit_templates(default, &mut Vec::new(), &mut |text, _| {
                for (_, part) in template::render::parts(text, config) {
                    match part {
                        template::render::Part::Reference(Reference::Parameter(name)) => {
                            found.extend(index_of.get(name).copied());
                        }
                        template::render::Part::Expression(source) => {
                            let words = source.split(|c: char| !(c.is_alphanumeric() || c == '_'));
                            found.extend(words.filter_map(|word| index_of.get(word).copied()));
                        }
                        template::render::Part::Reference(_) => {}
                    }
                }
            });
            found.sort_unstable();
            found.dedup();
            found
        })
        .collect()
}

/// Every parameter in an order where each comes after those its default refers to, and the
/// circles found (each as the parameters on it, from where it closes).
fn dependency_order(dependencies: &[Vec<usize>]) -> (Vec<usize>, Vec<Vec<usize>>) {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    let mut marks = vec![Mark::New; dependencies.len()];
    let mut order = Vec::with_capacity(dependencies.len());
    let mut circles = Vec::new();
    for root in 0..dependencies.len() {
        if marks[root] != Mark::New {
            continue;
        }
        marks[root] = Mark::Open;
        let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
        while let Some(top) = stack.last_mut() {
            let (node, next) = *top;
            if let Some(&dependency) = dependencies[node].get(next) {
                top.1 += 1;
                match marks[dependency] {
                    Mark::New => {
                        marks[dependency] = Mark::Open;
                        stack.push((dependency, 0));
                    }
                    Mark::Open => {
                        let start = stack.iter().position(|&(open, _)| open == dependency).unwrap_or(0);
                        circles.push(stack[start..].iter().map(|&(member, _)| member).collect());
                    }
                    Mark::Done => {}
                }
            } else {
                marks[node] = Mark::Done;
                order.push(node);
                stack.pop();
            }
        }
    }
    (order, circles)
}

struct Binder<'a> {
    runbook: &'a Runbook,
    system: &'a dyn Scope,
    /// Each parameter's binding once made; its dependents render after it.
    bindings: RefCell<Vec<Option<Binding>>>,
}

impl Binder<'_> {
    fn bind_one(
        &self,
        index: usize,
        supplied: &Map<String, Value>,
        config: template::Config,
        diagnostics: &mut Vec<Diagnostic>,
    ) -> Binding {
        let parameter = &self.runbook.parameters[index];
        let name = parameter.name.clone();
        let default = match (supplied.get(&parameter.name), &parameter.default) {
            (Some(value), _) => return known(&parameter.name, Origin::Supplied, value.clone()),
            (None, None) => {
                return Binding { name, origin: Origin::NotSupplied, value: Value::Null, unknown: Vec::new() };
            }
            (None, Some(default)) => default,
        };
        let rendered = template::render(default, self, config);
        let too_big = match &rendered {
            Ok(rendered) => template::render::text_size(&rendered.value, MAX_DEFAULT_BYTES) > MAX_DEFAULT_BYTES,
            Err(error) => *error == template::Error::Budget,
        };
        if too_big {
            diagnostics.push(
                Diagnostic::new(
                    Code::ExpansionBudget,
                    format!(
                        "the default of `{name}` grows past {} KB once the defaults it refers to are filled in",
                        MAX_DEFAULT_BYTES / 1024
                    ),
                )
                .at(pointer_push(&parameter.pointer, "default"))
                .with_help("refer to each parameter once, or give this one a value"),
            );
            return Binding {
                name: name.clone(),
                origin: Origin::Default,
                value: default.clone(),
                unknown: vec![name],
            };
        }
        match rendered {
            Ok(rendered) => Binding { name, origin: Origin::Default, value: rendered.value, unknown: rendered.unknown },
            // Only an expression (opt-in) can fail here; keep the default as written.
            Err(error) => {
                Binding { name, origin: Origin::Default, value: default.clone(), unknown: vec![error.to_string()] }
            }
        }
    }

    /// Parameters whose defaults refer to each other in a circle: reported, and unknown.
    fn circle(&self, members: &[usize], diagnostics: &mut Vec<Diagnostic>) {
        let names: Vec<&str> = members.iter().map(|&i| self.runbook.parameters[i].name.as_str()).collect();
        let first = &self.runbook.parameters[members[0]];
        let message = format!("the defaults of {} refer to each other in a circle", describe_circle(&names));
        diagnostics.push(
            Diagnostic::new(Code::ParameterDefaultCycle, message)
                .at(pointer_push(&first.pointer, "default"))
                .with_help("give one of these parameters a literal default"),
        );
        let mut bindings = self.bindings.borrow_mut();
        for &i in members {
            let parameter = &self.runbook.parameters[i];
            bindings[i] = Some(Binding {
                name: parameter.name.clone(),
                origin: Origin::Default,
                value: parameter.default.clone().unwrap_or(Value::Null),
                unknown: vec![parameter.name.clone()],
            });
        }
    }
}

/// The size of a rendered value as JSON text, counted without writing it out.
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
                // Bound already: the order puts every dependency first.
                Some(index) => match &self.bindings.borrow()[index] {
                    Some(binding) if binding.is_known() => Lookup::Known(Cow::Owned(binding.value.clone())),
                    _ => Lookup::Unknown,
                },
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
