//! The typed runbook model (reference sections 1-7), built leniently from a loaded value:
//! fields of the wrong shape are left out here and reported by the schema, so the semantic
//! rules can still look at everything that is usable.

use std::sync::OnceLock;

use serde_json::{Map, Value};

use crate::actions::Kind;
use crate::diagnostic::{PathSegment, pointer_push, push_path, push_segment};
use crate::template::{self, Reference, visit_templates};

#[derive(Debug, Default)]
pub struct Runbook {
    pub schema_version: Option<String>,
    pub description: Option<String>,
    pub assume_role: Option<String>,
    pub parameters: Vec<Parameter>,
    pub variables: Vec<Variable>,
    pub files: Vec<FileEntry>,
    pub steps: Vec<Step>,
    pub outputs: Vec<DocumentOutput>,
    /// `x-` keys: engine extensions.
    pub extensions: Map<String, Value>,
    /// `x-rollback`: when the undos of the steps that succeeded run.
    pub rollback: Rollback,
    /// `x-locks`: the named locks a run takes before its first step.
    pub locks: Vec<LockSpec>,
}

/// One entry of `x-locks`: `dns/{{ Zone }}`, or `{name, mode: shared, leaseSeconds: 120}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockSpec {
    /// The name, a template of parameters.
    pub name: String,
    pub shared: bool,
    pub lease_seconds: u64,
    pub pointer: String,
}

/// How long a lock is held without renewal, unless `leaseSeconds` says otherwise.
pub const DEFAULT_LEASE_SECONDS: u64 = 60;

/// What the step that reverses step NAME (`x-undo`) is named: `undo:NAME`.
pub const UNDO_PREFIX: &str = "undo:";

/// `x-rollback`: when a run's succeeded steps are undone (their `x-undo`), newest first.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Rollback {
    /// As AWS: nothing is undone (the default).
    #[default]
    Never,
    /// When the run ends Failed or TimedOut.
    OnFailure,
    /// When the run ends Cancelled.
    OnCancel,
    /// Whenever the run ends, Success included.
    Always,
}

impl Rollback {
    pub const ALL: [Rollback; 4] = [Rollback::Never, Rollback::OnFailure, Rollback::OnCancel, Rollback::Always];

    pub fn as_str(self) -> &'static str {
        match self {
            Rollback::Never => "never",
            Rollback::OnFailure => "on-failure",
            Rollback::OnCancel => "on-cancel",
            Rollback::Always => "always",
        }
    }

    pub fn parse(text: &str) -> Option<Rollback> {
        Rollback::ALL.into_iter().find(|rollback| rollback.as_str() == text)
    }

    /// Whether a run that ended with this status (as the API spells it) rolls back.
    pub fn applies(self, status: &str) -> bool {
        match self {
            Rollback::Never => false,
            Rollback::OnFailure => matches!(status, "Failed" | "TimedOut"),
            Rollback::OnCancel => status == "Cancelled",
            Rollback::Always => matches!(status, "Success" | "Failed" | "TimedOut" | "Cancelled"),
        }
    }

    /// What a run must have ended as for this policy to roll it back, in words.
    pub fn when(self) -> &'static str {
        match self {
            Rollback::Never => "never",
            Rollback::OnFailure => "when the run ends Failed or TimedOut",
            Rollback::OnCancel => "when the run ends Cancelled",
            Rollback::Always => "whenever the run ends",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParameterType {
    String,
    StringList,
    Integer,
    Boolean,
    StringMap,
    MapList,
    Ec2InstanceId,
    Ec2InstanceIdList,
    S3BucketName,
    S3BucketNameList,
    IamRoleArn,
    IamRoleArnList,
}

impl ParameterType {
    pub const ALL: [ParameterType; 12] = [
        ParameterType::String,
        ParameterType::StringList,
        ParameterType::Integer,
        ParameterType::Boolean,
        ParameterType::StringMap,
        ParameterType::MapList,
        ParameterType::Ec2InstanceId,
        ParameterType::Ec2InstanceIdList,
        ParameterType::S3BucketName,
        ParameterType::S3BucketNameList,
        ParameterType::IamRoleArn,
        ParameterType::IamRoleArnList,
    ];

    pub fn parse(text: &str) -> Option<ParameterType> {
        ParameterType::ALL.into_iter().find(|kind| kind.name() == text)
    }

    /// The type as the format spells it.
    pub fn name(self) -> &'static str {
        match self {
            ParameterType::String => "String",
            ParameterType::StringList => "StringList",
            ParameterType::Integer => "Integer",
            ParameterType::Boolean => "Boolean",
            ParameterType::StringMap => "StringMap",
            ParameterType::MapList => "MapList",
            ParameterType::Ec2InstanceId => "AWS::EC2::Instance::Id",
            ParameterType::Ec2InstanceIdList => "List<AWS::EC2::Instance::Id>",
            ParameterType::S3BucketName => "AWS::S3::Bucket::Name",
            ParameterType::S3BucketNameList => "List<AWS::S3::Bucket::Name>",
            ParameterType::IamRoleArn => "AWS::IAM::Role::Arn",
            ParameterType::IamRoleArnList => "List<AWS::IAM::Role::Arn>",
        }
    }

    /// The JSON shape a value of this type has at run time.
    pub fn shape(self) -> Shape {
        match self {
            ParameterType::String
            | ParameterType::Ec2InstanceId
            | ParameterType::S3BucketName
            | ParameterType::IamRoleArn => Shape::String,
            ParameterType::StringList
            | ParameterType::Ec2InstanceIdList
            | ParameterType::S3BucketNameList
            | ParameterType::IamRoleArnList => Shape::StringList,
            ParameterType::Integer => Shape::Integer,
            ParameterType::Boolean => Shape::Boolean,
            ParameterType::StringMap => Shape::StringMap,
            ParameterType::MapList => Shape::MapList,
        }
    }

    /// The pattern the console enforces for the AWS resource types (section 2.2).
    pub fn resource_pattern(self) -> Option<&'static str> {
        match self {
            ParameterType::Ec2InstanceId | ParameterType::Ec2InstanceIdList => Some("^m?i-([a-z0-9]{8}|[a-z0-9]{17})$"),
            ParameterType::S3BucketName | ParameterType::S3BucketNameList => Some("^[0-9a-z][a-z0-9\\-\\.]{3,63}$"),
            ParameterType::IamRoleArn | ParameterType::IamRoleArnList => {
                Some("^arn:(aws|aws-cn|aws-us-gov|aws-iso|aws-iso-b):iam::[0-9]{12}:role/.*$")
            }
            _ => None,
        }
    }
}

/// The six value shapes of the format (parameters, variables, outputs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    String,
    StringList,
    Integer,
    Boolean,
    StringMap,
    MapList,
}

impl Shape {
    pub const ALL: [Shape; 6] =
        [Shape::String, Shape::StringList, Shape::Integer, Shape::Boolean, Shape::StringMap, Shape::MapList];

    pub fn parse(text: &str) -> Option<Shape> {
        Shape::ALL.into_iter().find(|shape| shape.name() == text)
    }

    pub fn name(self) -> &'static str {
        match self {
            Shape::String => "String",
            Shape::StringList => "StringList",
            Shape::Integer => "Integer",
            Shape::Boolean => "Boolean",
            Shape::StringMap => "StringMap",
            Shape::MapList => "MapList",
        }
    }

    /// The name with its article, for messages: "an Integer", "a String".
    pub fn a_name(self) -> String {
        let article = if self == Shape::Integer { "an" } else { "a" };
        format!("{article} {}", self.name())
    }

    /// What a value of this shape is, for messages.
    pub fn description(self) -> &'static str {
        match self {
            Shape::String => "a string",
            Shape::StringList => "a list of strings",
            Shape::Integer => "an integer",
            Shape::Boolean => "true or false",
            Shape::StringMap => "a mapping",
            Shape::MapList => "a list of mappings",
        }
    }

    /// Whether a JSON value has this shape (without any text-to-type conversion).
    pub fn admits(self, value: &Value) -> bool {
        match self {
            Shape::String => value.is_string(),
            Shape::StringList => value.as_array().is_some_and(|items| items.iter().all(Value::is_string)),
            Shape::Integer => value.is_i64() || value.is_u64(),
            Shape::Boolean => value.is_boolean(),
            Shape::StringMap => value.is_object(),
            Shape::MapList => value.as_array().is_some_and(|items| items.iter().all(Value::is_object)),
        }
    }
}

#[derive(Debug)]
pub struct Parameter {
    pub name: String,
    pub pointer: String,
    pub kind: Option<ParameterType>,
    pub description: Option<String>,
    /// `None`: no default (the parameter is required). `Some(Null)`: an explicit null, which
    /// AWS treats as "no value" but not as required.
    pub default: Option<Value>,
    pub allowed_values: Option<Vec<Value>>,
    pub allowed_pattern: Option<String>,
    pub min_items: Option<u64>,
    pub max_items: Option<u64>,
    pub min_chars: Option<u64>,
    pub max_chars: Option<u64>,
    /// `x-secret: true`: a SecureString, redacted wherever it could be shown or stored.
    pub secret: bool,
}

impl Parameter {
    pub fn is_required(&self) -> bool {
        self.default.is_none()
    }
}

#[derive(Debug)]
pub struct Variable {
    pub name: String,
    pub pointer: String,
    pub kind: Option<Shape>,
    pub default: Option<Value>,
}

#[derive(Debug)]
pub struct FileEntry {
    pub name: String,
    pub pointer: String,
}

#[derive(Debug)]
pub struct DocumentOutput {
    pub text: String,
    pub pointer: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OnFailure {
    Abort,
    Continue,
    Step(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OnCancel {
    Abort,
    Step(String),
}

#[derive(Clone, Debug)]
pub struct StepOutput {
    pub name: String,
    pub selector: String,
    pub kind: Option<Shape>,
    pub pointer: String,
}

#[derive(Clone, Debug)]
pub struct Step {
    pub name: String,
    pub action: String,
    pub inputs: Map<String, Value>,
    /// Whether the step has an `inputs` mapping at all (V4 reports it missing).
    pub has_inputs: bool,
    /// JSON pointer of the step object (`/mainSteps/3`, `/mainSteps/2/inputs/Steps/0`).
    pub pointer: String,
    pub description: Option<String>,
    pub outputs: Vec<StepOutput>,
    pub max_attempts: Option<u64>,
    pub timeout_seconds: Option<u64>,
    pub on_failure: Option<OnFailure>,
    pub on_cancel: Option<OnCancel>,
    pub is_end: bool,
    pub is_critical: Option<bool>,
    pub next_step: Option<String>,
    /// The body of an `aws:loop`, empty for every other action.
    pub body: Vec<Step>,
    /// `x-undo`: the step that reverses this one, named `undo:NAME`: an action of its own, or
    /// a copy of the step `x-undo: step:OTHER` names (without its jumps). `None` without
    /// `x-undo`, or when it names no step (`undo_target` then says which).
    pub undo: Option<Box<Step>>,
    /// The step `x-undo: step:OTHER` names.
    pub undo_target: Option<String>,
    pub extensions: Map<String, Value>,
    /// The `{{ step.Output }}` references of the inputs, read once: see
    /// [`Step::output_references`].
    output_references: OnceLock<Vec<OutputReference>>,
}

/// A `{{ step.Output }}` reference in a step's inputs, and the pointer of the text it is in.
#[derive(Clone, Debug)]
pub struct OutputReference {
    pub step: String,
    pub output: String,
    pub pointer: String,
}

impl Step {
    pub fn input_pointer(&self, input: &str) -> String {
        // As long as it will be: plans keep their steps' input pointers.
        let mut pointer = String::with_capacity(self.pointer.len() + "/inputs/".len() + input.len());
        pointer.push_str(&self.pointer);
        push_segment(&mut pointer, "inputs");
        push_segment(&mut pointer, input);
        pointer
    }

    pub fn field_pointer(&self, field: &str) -> String {
        pointer_push(&self.pointer, field)
    }

    /// Calls `visit` with every string of the inputs that holds `{{` and its path inside
    /// `inputs` (see [`Step::inputs_pointer`]); a loop's body is left to its own steps.
    pub fn visit_input_templates<'s>(&'s self, mut visit: impl FnMut(&'s str, &[PathSegment<'s>])) {
        let mut path = Vec::new();
        for (key, value) in &self.inputs {
            if key == "Steps" && crate::actions::kind_of(&self.action) == Kind::Loop {
                continue;
            }
            path.push(PathSegment::Key(key));
            visit_templates(value, &mut path, &mut visit);
            path.pop();
        }
    }

    /// The pointer of a path inside `inputs`.
    pub fn inputs_pointer(&self, path: &[PathSegment<'_>]) -> String {
        let mut pointer = String::with_capacity(self.pointer.len() + "/inputs".len() + 16 * path.len());
        pointer.push_str(&self.pointer);
        push_segment(&mut pointer, "inputs");
        push_path(&mut pointer, path);
        pointer
    }

    /// The `{{ step.Output }}` references of the inputs, read with `config` the first time they
    /// are asked for, unless the rules, which read every reference of the inputs, handed them
    /// over first ([`Step::keep_output_references`]). What is kept is kept: `config` must be
    /// the runbook's (`template::config_for`) on every call, as the inputs never change.
    pub fn output_references(&self, config: template::Config) -> &[OutputReference] {
        self.output_references.get_or_init(|| {
            let mut found = Vec::new();
            self.visit_input_templates(|text, path| {
                for (_, reference) in template::references_in(text, config) {
                    if let Reference::StepOutput { step, output } = reference {
                        found.push(self.output_reference(step, output, path));
                    }
                }
            });
            found
        })
    }

    /// The reference to `step`'s `output` in the text at `path` inside the inputs.
    pub fn output_reference(&self, step: &str, output: &str, path: &[PathSegment<'_>]) -> OutputReference {
        OutputReference { step: step.to_owned(), output: output.to_owned(), pointer: self.inputs_pointer(path) }
    }

    /// Keeps what [`Step::output_references`] would read, from a caller that read them all.
    pub fn keep_output_references(&self, references: Vec<OutputReference>) {
        let _ = self.output_references.set(references);
    }

    /// Every string of the inputs that holds `{{`, with its pointer; a loop's body is left
    /// to its own steps.
    pub fn input_templates(&self) -> Vec<(&str, String)> {
        let mut found = Vec::new();
        self.visit_input_templates(|text, path| found.push((text, self.inputs_pointer(path))));
        found
    }

    /// `isCritical` as it applies (section 4.6): false by default only with `Continue`.
    pub fn effective_is_critical(&self) -> bool {
        self.is_critical.unwrap_or(self.on_failure != Some(OnFailure::Continue))
    }
}

impl Runbook {
    /// Builds the model from a loaded value, taking it apart rather than copying it (scripts
    /// can be most of a runbook). Never fails: what does not fit is left out.
    pub fn from_value(value: Value) -> Runbook {
        Runbook::from_parts(value, None)
    }

    /// [`Runbook::from_value`] of a document whose steps were taken apart as it was parsed
    /// (`steps`, in order; `mainSteps` then holds `null` in their places).
    pub fn from_parts(value: Value, steps: Option<Vec<Step>>) -> Runbook {
        let Value::Object(mut root) = value else {
            return Runbook::default();
        };
        let mut string = |key: &str| match root.remove(key) {
            Some(Value::String(text)) => Some(text),
            _ => None,
        };
        let schema_version = string("schemaVersion");
        let description = string("description");
        let assume_role = string("assumeRole");
        Runbook {
            schema_version,
            description,
            assume_role,
            parameters: entries(&mut root, "parameters")
                .map(|(name, def, pointer)| parameter(name, def, pointer))
                .collect(),
            variables: entries(&mut root, "variables")
                .map(|(name, mut def, pointer)| Variable {
                    kind: def.get("type").and_then(Value::as_str).and_then(Shape::parse),
                    default: def.remove("default"),
                    name,
                    pointer,
                })
                .collect(),
            files: entries(&mut root, "files").map(|(name, _, pointer)| FileEntry { name, pointer }).collect(),
            steps: match (steps, root.remove("mainSteps")) {
                (Some(taken), _) => taken,
                (None, main_steps) => self::steps(main_steps, "/mainSteps"),
            },
            outputs: match root.remove("outputs") {
                Some(Value::Array(outputs)) => outputs
                    .into_iter()
                    .enumerate()
                    .filter_map(|(i, output)| match output {
                        Value::String(text) => Some(DocumentOutput { text, pointer: format!("/outputs/{i}") }),
                        _ => None,
                    })
                    .collect(),
                _ => Vec::new(),
            },
            extensions: extensions(&mut root),
            rollback: Rollback::Never,
            locks: Vec::new(),
        }
        .with_undos()
        .with_locks()
    }

    /// `x-locks` read.
    fn with_locks(mut self) -> Runbook {
        let Some(Value::Array(entries)) = self.extensions.get("x-locks") else { return self };
        self.locks = entries
            .iter()
            .enumerate()
            .filter_map(|(i, entry)| {
                let pointer = format!("/x-locks/{i}");
                match entry {
                    Value::String(name) => Some(LockSpec {
                        name: name.clone(),
                        shared: false,
                        lease_seconds: DEFAULT_LEASE_SECONDS,
                        pointer,
                    }),
                    Value::Object(entry) => Some(LockSpec {
                        name: entry.get("name")?.as_str()?.to_owned(),
                        shared: entry.get("mode").and_then(Value::as_str) == Some("shared"),
                        lease_seconds: entry
                            .get("leaseSeconds")
                            .and_then(lenient_integer)
                            .unwrap_or(DEFAULT_LEASE_SECONDS),
                        pointer,
                    }),
                    _ => None,
                }
            })
            .collect();
        self
    }

    /// `x-rollback` read, and each `x-undo: step:OTHER` resolved to a copy of OTHER.
    fn with_undos(mut self) -> Runbook {
        self.rollback =
            self.extensions.get("x-rollback").and_then(Value::as_str).and_then(Rollback::parse).unwrap_or_default();
        // The copies are made first, from steps borrowed by name, and keyed by the pointer of
        // the step they undo: only the targets of an `x-undo` are copied, and a runbook
        // without one copies nothing.
        let undos: Vec<(String, Step)> = {
            let all = self.all_steps();
            let wanted: Vec<(&Step, &str)> =
                all.iter().filter_map(|step| Some((*step, step.undo_target.as_deref()?))).collect();
            if wanted.is_empty() {
                return self;
            }
            let by_name: std::collections::HashMap<&str, &Step> =
                all.iter().map(|step| (step.name.as_str(), *step)).collect();
            wanted
                .into_iter()
                .filter_map(|(step, target)| {
                    let mut undo = (*by_name.get(target)?).clone();
                    undo.name = format!("{UNDO_PREFIX}{}", step.name);
                    undo.next_step = None;
                    undo.on_failure = None;
                    undo.on_cancel = None;
                    undo.is_end = false;
                    undo.undo = None;
                    undo.undo_target = None;
                    Some((step.pointer.clone(), undo))
                })
                .collect()
        };
        let mut undos: std::collections::HashMap<String, Step> = undos.into_iter().collect();
        fn resolve(steps: &mut [Step], undos: &mut std::collections::HashMap<String, Step>) {
            for step in steps {
                if let Some(undo) = undos.remove(&step.pointer) {
                    step.undo = Some(Box::new(undo));
                }
                resolve(&mut step.body, undos);
            }
        }
        resolve(&mut self.steps, &mut undos);
        self
    }

    /// The values among `values` (name and value) of the parameters declared `x-secret`: what
    /// every output must hide.
    pub fn secret_values<'v>(&self, values: impl IntoIterator<Item = (&'v str, &'v Value)>) -> Vec<Value> {
        values
            .into_iter()
            .filter(|(name, _)| self.parameter(name).is_some_and(|parameter| parameter.secret))
            .map(|(_, value)| value.clone())
            .collect()
    }

    pub fn parameter(&self, name: &str) -> Option<&Parameter> {
        self.parameters.iter().find(|p| p.name == name)
    }

    pub fn variable(&self, name: &str) -> Option<&Variable> {
        self.variables.iter().find(|v| v.name == name)
    }

    /// Every step, loop bodies included, in document order.
    pub fn all_steps(&self) -> Vec<&Step> {
        fn walk<'a>(steps: &'a [Step], out: &mut Vec<&'a Step>) {
            for step in steps {
                out.push(step);
                walk(&step.body, out);
            }
        }
        let mut out = Vec::new();
        walk(&self.steps, &mut out);
        out
    }
}

fn entries(root: &mut Map<String, Value>, key: &str) -> impl Iterator<Item = (String, Map<String, Value>, String)> {
    let section = match root.remove(key) {
        Some(Value::Object(section)) => section,
        _ => Map::new(),
    };
    let base = pointer_push("", key);
    section.into_iter().filter_map(move |(name, def)| match def {
        Value::Object(def) => {
            let pointer = pointer_push(&base, &name);
            Some((name, def, pointer))
        }
        _ => None,
    })
}

/// Takes the `x-` keys out of an object.
fn extensions(object: &mut Map<String, Value>) -> Map<String, Value> {
    let keys: Vec<String> = object.keys().filter(|key| key.starts_with("x-")).cloned().collect();
    keys.into_iter().filter_map(|key| object.remove(&key).map(|value| (key, value))).collect()
}

/// The parameter `name`, taken apart (leniently) in one pass over the keys of its definition.
fn parameter(name: String, def: Map<String, Value>, pointer: String) -> Parameter {
    let mut parameter = Parameter {
        name,
        pointer,
        kind: None,
        description: None,
        default: None,
        allowed_values: None,
        allowed_pattern: None,
        min_items: None,
        max_items: None,
        min_chars: None,
        max_chars: None,
        secret: false,
    };
    for (key, value) in def {
        match (key.as_str(), value) {
            ("type", value) => parameter.kind = value.as_str().and_then(ParameterType::parse),
            ("description", Value::String(text)) => parameter.description = Some(text),
            ("default", value) => parameter.default = Some(value),
            ("allowedValues", Value::Array(values)) => parameter.allowed_values = Some(values),
            ("allowedPattern", Value::String(pattern)) => parameter.allowed_pattern = Some(pattern),
            ("minItems", value) => parameter.min_items = lenient_integer(&value),
            ("maxItems", value) => parameter.max_items = lenient_integer(&value),
            ("minChars", value) => parameter.min_chars = lenient_integer(&value),
            ("maxChars", value) => parameter.max_chars = lenient_integer(&value),
            ("x-secret", value) => parameter.secret = lenient_bool(&value).unwrap_or(false),
            _ => {}
        }
    }
    parameter
}

fn steps(value: Option<Value>, pointer: &str) -> Vec<Step> {
    let Some(Value::Array(items)) = value else {
        return Vec::new();
    };
    let mut steps = Vec::with_capacity(items.len());
    for (i, step) in items.into_iter().enumerate() {
        if let Value::Object(object) = step {
            steps.push(self::step(object, pointer_push(pointer, i)));
        }
    }
    steps
}

/// The step at `pointer`, taken apart (leniently, as the whole document is) in one pass over
/// its keys (taking them out one by one was a fiftieth of validating the corpus).
pub fn step(object: Map<String, Value>, pointer: String) -> Step {
    let mut fields = StepFields::default();
    for (key, value) in object {
        let text = |value: Value| match value {
            Value::String(text) => Some(text),
            _ => None,
        };
        match key.as_str() {
            "name" => fields.name = text(value),
            "action" => fields.action = text(value),
            "description" => fields.description = text(value),
            "nextStep" => fields.next_step = text(value),
            "onFailure" => fields.on_failure = text(value),
            "onCancel" => fields.on_cancel = text(value),
            "inputs" => fields.inputs = Some(value),
            "outputs" => fields.outputs = Some(value),
            "maxAttempts" => fields.max_attempts = lenient_integer(&value),
            "timeoutSeconds" => fields.timeout_seconds = lenient_integer(&value),
            "isEnd" => fields.is_end = lenient_bool(&value),
            "isCritical" => fields.is_critical = lenient_bool(&value),
            _ if key.starts_with("x-") => {
                fields.extensions.insert(key, value);
            }
            _ => {}
        }
    }
    let name = fields.name.unwrap_or_default();
    let action = fields.action.unwrap_or_default();
    let on_failure = fields.on_failure.and_then(|v| match v.as_str() {
        "Abort" => Some(OnFailure::Abort),
        "Continue" => Some(OnFailure::Continue),
        _ => v.strip_prefix("step:").map(|target| OnFailure::Step(target.to_owned())),
    });
    let on_cancel = fields.on_cancel.and_then(|v| match v.as_str() {
        "Abort" => Some(OnCancel::Abort),
        _ => v.strip_prefix("step:").map(|target| OnCancel::Step(target.to_owned())),
    });
    let (inputs, has_inputs) = match fields.inputs {
        Some(Value::Object(inputs)) => (inputs, true),
        _ => (Map::new(), false),
    };
    // The body stays in `inputs` too, so rules can tell a missing `Steps` from a bad one.
    let body = match crate::actions::kind_of(&action) {
        Kind::Loop => steps(inputs.get("Steps").cloned(), &format!("{pointer}/inputs/Steps")),
        _ => Vec::new(),
    };
    let outputs = match fields.outputs {
        Some(Value::Array(outputs)) => {
            let base = pointer_push(&pointer, "outputs");
            outputs
                .into_iter()
                .enumerate()
                .filter_map(|(i, output)| {
                    let output = output.as_object()?;
                    Some(StepOutput {
                        name: output.get("Name")?.as_str()?.to_owned(),
                        selector: output.get("Selector")?.as_str()?.to_owned(),
                        kind: output.get("Type").and_then(Value::as_str).and_then(Shape::parse),
                        pointer: pointer_push(&base, i),
                    })
                })
                .collect()
        }
        _ => Vec::new(),
    };
    let (undo, undo_target) = match fields.extensions.get("x-undo") {
        Some(Value::String(text)) => (None, text.strip_prefix("step:").map(str::to_owned)),
        Some(Value::Object(undo)) => {
            let mut undo = undo.clone();
            undo.insert("name".into(), Value::String(format!("{UNDO_PREFIX}{name}")));
            (Some(Box::new(self::step(undo, format!("{pointer}/x-undo")))), None)
        }
        _ => (None, None),
    };
    Step {
        max_attempts: fields.max_attempts,
        timeout_seconds: fields.timeout_seconds,
        is_end: fields.is_end.unwrap_or(false),
        is_critical: fields.is_critical,
        extensions: fields.extensions,
        name,
        action,
        inputs,
        has_inputs,
        pointer,
        description: fields.description,
        outputs,
        on_failure,
        on_cancel,
        next_step: fields.next_step,
        body,
        undo,
        undo_target,
        output_references: OnceLock::new(),
    }
}

/// What a step's keys hold, gathered in one pass.
#[derive(Default)]
struct StepFields {
    name: Option<String>,
    action: Option<String>,
    description: Option<String>,
    next_step: Option<String>,
    on_failure: Option<String>,
    on_cancel: Option<String>,
    inputs: Option<Value>,
    outputs: Option<Value>,
    max_attempts: Option<u64>,
    timeout_seconds: Option<u64>,
    is_end: Option<bool>,
    is_critical: Option<bool>,
    extensions: Map<String, Value>,
}

/// A boolean as AWS accepts it: JSON `true`/`false` or the strings, in any case.
pub fn lenient_bool(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

/// A non-negative integer as AWS accepts it: a JSON integer or a string of digits.
pub fn lenient_integer(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => s.parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tolerant_step_properties() {
        let runbook = Runbook::from_value(json!({
            "schemaVersion": "0.3",
            "mainSteps": [{
                "name": "a", "action": "aws:sleep", "inputs": {"Duration": "PT1S"},
                "isEnd": "TRUE", "isCritical": "false", "timeoutSeconds": "600",
                "onFailure": "step:b", "onCancel": "Abort"
            }]
        }));
        let step = &runbook.steps[0];
        assert!(step.is_end);
        assert_eq!(step.is_critical, Some(false));
        assert_eq!(step.timeout_seconds, Some(600));
        assert_eq!(step.on_failure, Some(OnFailure::Step("b".into())));
        assert_eq!(step.on_cancel, Some(OnCancel::Abort));
    }

    #[test]
    fn loop_bodies_are_nested_with_pointers() {
        let runbook = Runbook::from_value(json!({
            "mainSteps": [{"name": "l", "action": "aws:loop", "inputs": {
                "Iterators": ["a"], "Steps": [{"name": "inner", "action": "aws:sleep", "inputs": {}}]}}]
        }));
        let names: Vec<_> = runbook.all_steps().iter().map(|s| (s.name.clone(), s.pointer.clone())).collect();
        assert_eq!(
            names,
            vec![("l".into(), "/mainSteps/0".into()), ("inner".into(), "/mainSteps/0/inputs/Steps/0".into())]
        );
    }

    #[test]
    fn effective_is_critical() {
        let runbook = Runbook::from_value(json!({"mainSteps": [
            {"name": "a", "action": "aws:sleep", "inputs": {}, "onFailure": "Continue"},
            {"name": "b", "action": "aws:sleep", "inputs": {}, "onFailure": "step:a"},
            {"name": "c", "action": "aws:sleep", "inputs": {}, "onFailure": "Continue", "isCritical": true}
        ]}));
        let critical: Vec<_> = runbook.steps.iter().map(Step::effective_is_critical).collect();
        assert_eq!(critical, vec![false, true, true]);
    }
}
