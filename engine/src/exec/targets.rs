//! The targets of a run over targets (issue 17), as StartAutomationExecution takes them:
//! `Targets` with `TargetParameterName` (`Key=ParameterValues,Values=i-1,i-2`,
//! `Key=tag:NAME,Values=...` resolved through the Resource Groups Tagging API,
//! `Key=ResourceGroup,Values=NAME` through Resource Groups), or `TargetMaps` (one map of
//! parameter values per child). Each target's values are typed and checked as the runbook
//! declares them before anything runs.

use serde_json::{Map, Value, json};

use super::fan_out::Target;
use crate::aws;
use crate::document::model::Runbook;
use crate::validate::Supplied;

/// One `Targets` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TargetKey {
    /// `Key=ParameterValues,Values=a,b`: the values themselves.
    ParameterValues(Vec<String>),
    /// `Key=tag:NAME,Values=a,b`: every resource with tag NAME set to one of the values.
    Tag { key: String, values: Vec<String> },
    /// `Key=ResourceGroup,Values=NAME`: every resource of the group.
    ResourceGroup(String),
}

impl TargetKey {
    /// Reads the AWS CLI's shorthand, `Key=K,Values=V1,V2`, or a `{Key, Values}` mapping (the
    /// API's form, as `aws:executeAutomation` writes it).
    pub fn parse(text: &str) -> Result<TargetKey, String> {
        let rest = text.strip_prefix("Key=").ok_or_else(|| format!("`{text}` is not Key=KEY,Values=V1,V2"))?;
        let (key, values) = rest.split_once(",Values=").ok_or_else(|| format!("`{text}` has no ,Values="))?;
        let values: Vec<String> =
            values.split(',').map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned).collect();
        TargetKey::new(key, values)
    }

    /// `{Key: ..., Values: [...]}`.
    pub fn from_value(value: &Value) -> Result<TargetKey, String> {
        let key = value.get("Key").and_then(Value::as_str).ok_or_else(|| format!("a target has no `Key`: {value}"))?;
        let values = match value.get("Values") {
            Some(Value::Array(values)) => values.iter().map(crate::template::render::to_text).collect(),
            Some(Value::String(one)) => vec![one.clone()],
            _ => return Err(format!("target `{key}` has no `Values` list")),
        };
        TargetKey::new(key, values)
    }

    fn new(key: &str, values: Vec<String>) -> Result<TargetKey, String> {
        if values.is_empty() {
            return Err(format!("target `{key}` names no values"));
        }
        match key {
            "ParameterValues" => Ok(TargetKey::ParameterValues(values)),
            "ResourceGroup" => match values.as_slice() {
                [group] => Ok(TargetKey::ResourceGroup(group.clone())),
                _ => Err("Key=ResourceGroup takes one group name".into()),
            },
            _ => match key.strip_prefix("tag:") {
                Some(tag) if !tag.is_empty() => Ok(TargetKey::Tag { key: tag.to_owned(), values }),
                _ => Err(format!("unknown target key `{key}`: use ParameterValues, tag:NAME or ResourceGroup")),
            },
        }
    }

    /// The API's form, `{Key, Values}`, as StartAutomationExecution takes it.
    pub fn to_api(&self) -> Value {
        let (key, values) = match self {
            TargetKey::ParameterValues(values) => ("ParameterValues".to_owned(), values.clone()),
            TargetKey::Tag { key, values } => (format!("tag:{key}"), values.clone()),
            TargetKey::ResourceGroup(group) => ("ResourceGroup".to_owned(), vec![group.clone()]),
        };
        serde_json::json!({ "Key": key, "Values": values })
    }

    fn describe(&self) -> String {
        match self {
            TargetKey::ParameterValues(values) => format!("{} value{}", values.len(), plural(values.len())),
            TargetKey::Tag { key, values } => format!("tag:{key}={}", values.join(",")),
            TargetKey::ResourceGroup(group) => format!("resource group {group}"),
        }
    }
}

fn plural(count: usize) -> &'static str {
    if count == 1 { "" } else { "s" }
}

/// The id a target parameter gets for a resource: the last part of its ARN
/// (`arn:aws:ec2:...:instance/i-0abc` is `i-0abc`), as Automation passes it.
pub fn resource_id(arn: &str) -> String {
    arn.rsplit(['/', ':']).next().unwrap_or(arn).to_owned()
}

/// Resolves `keys` to target values, in order, each once (several tag keys are all required
/// of a resource, as AWS combines them), with how they were given, for people.
pub async fn resolve(aws: &aws::Aws, keys: &[TargetKey]) -> Result<(Vec<String>, String), String> {
    let mut values: Vec<String> = Vec::new();
    let mut tags: Vec<Value> = Vec::new();
    let mut described = Vec::new();
    for key in keys {
        described.push(key.describe());
        match key {
            TargetKey::ParameterValues(given) => values.extend(given.iter().cloned()),
            TargetKey::Tag { key, values } => tags.push(json!({ "Key": key, "Values": values })),
            TargetKey::ResourceGroup(group) => {
                let arns = paginate(aws, "resource-groups", "ListGroupResources", json!({ "Group": group }), |page| {
                    let resources = page["Resources"].as_array().into_iter().flatten();
                    resources.filter_map(|r| r["Identifier"]["ResourceArn"].as_str().map(str::to_owned)).collect()
                })
                .await?;
                values.extend(arns.iter().map(|arn| resource_id(arn)));
            }
        }
    }
    if !tags.is_empty() {
        let arns = paginate(aws, "resourcegroupstaggingapi", "GetResources", json!({ "TagFilters": tags }), |page| {
            let resources = page["ResourceTagMappingList"].as_array().into_iter().flatten();
            resources.filter_map(|r| r["ResourceARN"].as_str().map(str::to_owned)).collect()
        })
        .await?;
        values.extend(arns.iter().map(|arn| resource_id(arn)));
    }
    let mut seen = std::collections::HashSet::new();
    values.retain(|value| seen.insert(value.clone()));
    Ok((values, described.join(" and ")))
}

/// Calls `operation` page by page (`NextToken` or `PaginationToken`), collecting what `take`
/// finds on each.
async fn paginate(
    aws: &aws::Aws,
    service: &str,
    operation: &str,
    params: Value,
    take: impl Fn(&Value) -> Vec<String>,
) -> Result<Vec<String>, String> {
    let mut found = Vec::new();
    let mut params = params.as_object().cloned().unwrap_or_default();
    for _ in 0..1000 {
        let call = aws::Call { service, api: operation, params: &params, role: None, token_seed: "" };
        let page = aws.call(&call).await.map_err(|error| format!("{operation}: {error}"))?;
        found.extend(take(&page));
        let next = ["NextToken", "PaginationToken"]
            .iter()
            .find_map(|name| page[*name].as_str().filter(|token| !token.is_empty()).map(|token| (*name, token)));
        match next {
            Some((name, token)) => {
                params.insert(name.to_owned(), json!(token));
            }
            None => return Ok(found),
        }
    }
    Err(format!("{operation} gave more than 1,000 pages"))
}

/// One target per value of `parameter`, typed and checked as the runbook declares it.
pub fn from_values(runbook: &Runbook, parameter: &str, values: &[String]) -> Result<Vec<Target>, String> {
    let Some(declared) = runbook.parameter(parameter) else {
        return Err(format!("the runbook declares no parameter `{parameter}` (--target-parameter-name)"));
    };
    values
        .iter()
        .enumerate()
        .map(|(at, value)| {
            // A secret value never names its target (labels are shown and stored).
            let label = if declared.secret { format!("target {}", at + 1) } else { value.clone() };
            let parameters = typed(runbook, vec![(parameter.to_owned(), Supplied::Text(value.clone()))])
                .map_err(|why| format!("{label}: {why}"))?;
            Ok(Target { label, parameters })
        })
        .collect()
}

/// One target per map of `TargetMaps` (`{Param: [values]}`), each typed and checked.
pub fn from_maps(runbook: &Runbook, maps: &[Value]) -> Result<Vec<Target>, String> {
    maps.iter()
        .enumerate()
        .map(|(at, map)| {
            let Value::Object(map) = map else { return Err(format!("target map {} is not a mapping", at + 1)) };
            let supplied = map.iter().map(|(name, value)| (name.clone(), Supplied::Json(value.clone()))).collect();
            let parameters = typed(runbook, supplied).map_err(|why| format!("target map {}: {why}", at + 1))?;
            // A secret value never names its target (labels are shown and stored).
            let label = map
                .iter()
                .map(|(name, value)| match runbook.parameter(name).is_some_and(|parameter| parameter.secret) {
                    true => format!("{name}={}", crate::redact::REDACTED),
                    false => format!("{name}={}", crate::template::render::to_text(value)),
                })
                .collect::<Vec<_>>()
                .join(" ");
            Ok(Target { label, parameters })
        })
        .collect()
}

fn typed(runbook: &Runbook, supplied: Vec<(String, Supplied)>) -> Result<Map<String, Value>, String> {
    let bound = crate::validate::params::bind(runbook, &supplied);
    // Only the target's own values are checked here; the rest are the run's.
    let missing = crate::diagnostic::Code::MissingParameter;
    match bound.diagnostics.iter().find(|diagnostic| diagnostic.is_error() && diagnostic.code != missing) {
        Some(problem) => Err(problem.message.clone()),
        None => Ok(bound.values),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_read_as_the_aws_cli_writes_them() {
        assert_eq!(
            TargetKey::parse("Key=ParameterValues,Values=i-1,i-2"),
            Ok(TargetKey::ParameterValues(vec!["i-1".into(), "i-2".into()]))
        );
        assert_eq!(
            TargetKey::parse("Key=tag:Env,Values=prod"),
            Ok(TargetKey::Tag { key: "Env".into(), values: vec!["prod".into()] })
        );
        assert_eq!(TargetKey::parse("Key=ResourceGroup,Values=web"), Ok(TargetKey::ResourceGroup("web".into())));
        assert!(TargetKey::parse("Key=InstanceIds,Values=i-1").unwrap_err().contains("unknown target key"));
        assert!(TargetKey::parse("Values=i-1").unwrap_err().contains("Key=KEY"));
        assert!(TargetKey::parse("Key=tag:Env,Values=").unwrap_err().contains("names no values"));
        let api = json!({"Key": "ParameterValues", "Values": ["a"]});
        assert_eq!(TargetKey::from_value(&api), Ok(TargetKey::ParameterValues(vec!["a".into()])));
        assert_eq!(resource_id("arn:aws:ec2:us-east-1:123456789012:instance/i-0abc"), "i-0abc");
        assert_eq!(resource_id("arn:aws:s3:::bucket-name"), "bucket-name");
    }
}
