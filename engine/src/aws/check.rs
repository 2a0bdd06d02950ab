//! Request parameters checked against an operation's input shape, as boto3's parameter
//! validation does: unknown members (with the nearest name), missing required members and
//! values of the wrong kind. At run time values are also brought to the model's types, the
//! way SSM Automation types inputs after substitution (`"5"` for an integer member is 5).
//! Statically, a value that still holds a `{{ reference }}` is not known and passes.

use serde_json::{Map, Number, Value};
use sha2::{Digest, Sha256};

use super::model::{Kind, Member, Model, Operation};
use crate::diagnostic::{describe_json, nearest};
use crate::document::model::lenient_bool;
use crate::template::has_braces;

/// One thing wrong with a request, located by a path such as `Filters[0].Values`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() { f.write_str(&self.message) } else { write!(f, "`{}`: {}", self.path, self.message) }
    }
}

/// Checks `params` for `operation`, returning them brought to the model's types and every
/// problem found. `members_left_out` are members the action fills itself (not "missing").
pub fn check(
    model: &Model,
    operation: &Operation,
    params: &Map<String, Value>,
    members_left_out: &[&str],
) -> (Map<String, Value>, Vec<Problem>) {
    let mut problems = Vec::new();
    let Some(input) = &operation.input else {
        if let Some(name) = params.keys().next() {
            problems.push(Problem { path: name.clone(), message: format!("`{}` takes no parameters", operation.name) });
        }
        return (Map::new(), problems);
    };
    let mut checker = Checker { model, problems, response: false };
    let value = checker.structure(input, params, "", members_left_out);
    let Value::Object(params) = value else { unreachable!("a structure checks to an object") };
    (params, checker.problems)
}

/// Checks a response given in place of the service's (a test's mock) against the operation's
/// output shape: members it does not have and values of the wrong kind; nothing is required.
/// Returns it brought to the model's types.
pub fn check_response(
    model: &Model,
    operation: &Operation,
    response: &Map<String, Value>,
) -> (Map<String, Value>, Vec<Problem>) {
    let Some(output) = &operation.output else {
        let problems = response
            .keys()
            .take(1)
            .map(|name| Problem { path: name.clone(), message: format!("`{}` returns nothing", operation.name) })
            .collect();
        return (Map::new(), problems);
    };
    let mut checker = Checker { model, problems: Vec::new(), response: true };
    let Value::Object(checked) = checker.structure(output, response, "", &[]) else {
        unreachable!("a structure checks to an object")
    };
    (checked, checker.problems)
}

/// Fills the operation's idempotency-token members the caller left out with a token derived
/// from `seed` (execution, step and iteration), so a retried or resumed step sends the same
/// token and the service creates its resource once.
pub fn fill_idempotency_tokens(model: &Model, operation: &Operation, params: &mut Map<String, Value>, seed: &str) {
    let Some(input) = &operation.input else { return };
    for (name, member) in &model.shape(input).members {
        if member.idempotency_token && !params.contains_key(name) {
            params.insert(name.clone(), Value::String(token(&format!("{seed}/{}/{name}", operation.name))));
        }
    }
}

/// A UUID-shaped token from a seed (EC2 `ClientToken` allows at most 64 characters).
pub fn token(seed: &str) -> String {
    let digest = Sha256::digest(seed.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes).into_uuid().to_string()
}

struct Checker<'m> {
    model: &'m Model,
    problems: Vec<Problem>,
    /// Checking a response: no member is required.
    response: bool,
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() { name.to_string() } else { format!("{path}.{name}") }
}

impl Checker<'_> {
    fn problem(&mut self, path: &str, message: String) {
        self.problems.push(Problem { path: path.to_string(), message });
    }

    fn structure(&mut self, member: &Member, object: &Map<String, Value>, path: &str, left_out: &[&str]) -> Value {
        let shape = self.model.shape(member);
        let mut checked = Map::new();
        for (name, value) in object {
            match shape.members.get(name) {
                Some(child) => {
                    let value = self.value(child, value, &join(path, name));
                    checked.insert(name.clone(), value);
                }
                None => {
                    let suggestion = nearest(name, shape.members.keys().map(String::as_str))
                        .map(|near| format!("; did you mean `{near}`?"))
                        .unwrap_or_default();
                    let what = if self.response { "member" } else { "parameter" };
                    self.problem(&join(path, name), format!("unknown {what} `{name}`{suggestion}"));
                }
            }
        }
        let required_members = if self.response { &[][..] } else { &shape.required[..] };
        for required in required_members {
            if !object.contains_key(required) && !left_out.contains(&required.as_str()) {
                let member = &shape.members[required];
                if !member.idempotency_token {
                    self.problem(&join(path, required), format!("missing required parameter `{required}`"));
                }
            }
        }
        Value::Object(checked)
    }

    fn value(&mut self, member: &Member, value: &Value, path: &str) -> Value {
        if value.as_str().is_some_and(has_braces) {
            return value.clone();
        }
        let shape = self.model.shape(member);
        let wrong = |checker: &mut Self| {
            checker.problem(path, format!("expected {}, found {}", shape.kind.expected(), describe_json(value)));
            value.clone()
        };
        match (shape.kind, value) {
            (Kind::Structure, Value::Object(object)) => self.structure(member, object, path, &[]),
            (Kind::Structure, _) if shape.document => value.clone(),
            (Kind::List, Value::Array(items)) => {
                let element = shape.member.as_deref().expect("list shapes have a member");
                Value::Array(
                    items
                        .iter()
                        .enumerate()
                        .map(|(i, item)| self.value(element, item, &format!("{path}[{i}]")))
                        .collect(),
                )
            }
            (Kind::Map, Value::Object(object)) => {
                let value_member = shape.value.as_deref().expect("map shapes have a value");
                Value::Object(
                    object
                        .iter()
                        .map(|(key, item)| (key.clone(), self.value(value_member, item, &join(path, key))))
                        .collect(),
                )
            }
            (Kind::String, Value::String(_)) => value.clone(),
            (Kind::String, Value::Number(_) | Value::Bool(_)) => Value::String(value.to_string()),
            (Kind::String, Value::Object(_) | Value::Array(_)) if member.jsonvalue => value.clone(),
            (Kind::Integer | Kind::Long, Value::Number(number)) if number.is_i64() || number.is_u64() => value.clone(),
            (Kind::Integer | Kind::Long, Value::String(text)) => match text.trim().parse::<i64>() {
                Ok(number) => Value::from(number),
                Err(_) => wrong(self),
            },
            (Kind::Float | Kind::Double, Value::Number(_)) => value.clone(),
            (Kind::Float | Kind::Double, Value::String(text)) => {
                match text.trim().parse::<f64>().ok().and_then(Number::from_f64) {
                    Some(number) => Value::Number(number),
                    None => wrong(self),
                }
            }
            (Kind::Boolean, Value::Bool(_)) => value.clone(),
            (Kind::Boolean, Value::String(_)) if lenient_bool(value).is_some() => {
                Value::Bool(lenient_bool(value) == Some(true))
            }
            (Kind::Timestamp, Value::Number(_)) => value.clone(),
            (Kind::Timestamp, Value::String(text)) => {
                if text.parse::<jiff::Timestamp>().is_ok() || text.parse::<f64>().is_ok() {
                    value.clone()
                } else {
                    self.problem(path, format!("{text:?} is not an ISO-8601 timestamp"));
                    value.clone()
                }
            }
            (Kind::Blob, Value::String(_)) => value.clone(),
            _ => wrong(self),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::aws::model::service;

    fn check_ec2(api: &str, params: Value) -> (Value, Vec<String>) {
        let model = service("ec2").unwrap();
        let operation = model.operation(api).unwrap();
        let (params, problems) = check(&model, operation, params.as_object().unwrap(), &[]);
        (Value::Object(params), problems.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn unknown_members_get_the_nearest_name() {
        let (_, problems) = check_ec2("DescribeInstances", json!({"InstanceId": ["i-1"]}));
        assert_eq!(problems, ["`InstanceId`: unknown parameter `InstanceId`; did you mean `InstanceIds`?"]);
    }

    #[test]
    fn missing_required_and_wrong_kinds_are_reported() {
        let (_, problems) = check_ec2("RunInstances", json!({"ImageId": "ami-1", "MaxCount": [1]}));
        assert_eq!(
            problems,
            ["`MaxCount`: expected an integer, found a list", "`MinCount`: missing required parameter `MinCount`"]
        );
        let (_, problems) = check_ec2("DescribeInstances", json!({"Filters": [{"Name": "x", "Values": "not-a-list"}]}));
        assert_eq!(problems, ["`Filters[0].Values`: expected a list, found the string \"not-a-list\""]);
    }

    #[test]
    fn values_are_brought_to_the_model_types() {
        let (params, problems) = check_ec2(
            "RunInstances",
            json!({"ImageId": "ami-1", "MinCount": "1", "MaxCount": 2, "EbsOptimized": "True"}),
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(params, json!({"ImageId": "ami-1", "MinCount": 1, "MaxCount": 2, "EbsOptimized": true}));
    }

    #[test]
    fn references_are_not_judged_statically() {
        let (_, problems) =
            check_ec2("RunInstances", json!({"ImageId": "ami-1", "MinCount": "{{ Count }}", "MaxCount": 1}));
        assert!(problems.is_empty());
    }

    #[test]
    fn idempotency_tokens_are_stable_per_seed() {
        let model = service("ec2").unwrap();
        let operation = model.operation("RunInstances").unwrap();
        let mut first = Map::new();
        fill_idempotency_tokens(&model, operation, &mut first, "exec-1/launch/0");
        let mut again = Map::new();
        fill_idempotency_tokens(&model, operation, &mut again, "exec-1/launch/0");
        let mut other = Map::new();
        fill_idempotency_tokens(&model, operation, &mut other, "exec-1/launch/1");
        assert_eq!(first["ClientToken"], again["ClientToken"]);
        assert_ne!(first["ClientToken"], other["ClientToken"]);
        assert_eq!(first["ClientToken"].as_str().unwrap().len(), 36);
    }
}
