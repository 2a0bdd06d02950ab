//! `aws:invokeWebhook` (reference 6.16): POSTs `Body` (else the integration's default
//! payload) to an Automation webhook integration. The integration is found as AWS stores it,
//! a SecureString in Parameter Store under a reserved namespace holding
//! `{"url": ..., "headers": ..., "payload": ..., "description": ...}`, or, for runs without
//! AWS, in the local mapping given with `--integrations FILE`, which wins. The URL and header
//! values are secrets (they usually carry a token): redacted everywhere.

use serde_json::{Map, Value, json};

use super::{Action, Context, Failure, Output, Result, api, shown_text};
use crate::document::model::Step;

pub const ACTION: Action = Action {
    builtin_outputs: &["Response", "ResponseCode"],
    returns_data: true,
    execute: executor!(execute),
    describe,
    ..Action::new("aws:invokeWebhook")
};

/// Where AWS keeps webhook integrations in Parameter Store (the Automation user guide).
pub const PARAMETER_PREFIX: &str = "/d9d01087-4a3f-49e0-b0b4-d568d7826553/ssm/integrations/webhook/";

/// An integration: where to send and what to send by default.
struct Integration {
    url: String,
    headers: Vec<(String, String)>,
    payload: Option<String>,
}

/// Header names whose values carry credentials.
const CREDENTIAL_HEADERS: &[&str] = &["auth", "token", "key", "secret", "signature", "password", "session", "cookie"];

impl Integration {
    /// What must never be shown: the URL (webhook URLs carry their token) and the values of
    /// headers that carry credentials. Other headers (`Content-Type: application/json`) stay
    /// readable, or every later mention of their values would be blotted out.
    fn secrets(&self) -> Vec<Value> {
        let credential = |name: &str| {
            let name = name.to_ascii_lowercase();
            CREDENTIAL_HEADERS.iter().any(|word| name.contains(word))
        };
        let headers = self.headers.iter().filter(|(name, _)| credential(name)).map(|(_, value)| json!(value));
        std::iter::once(json!(self.url)).chain(headers).collect()
    }
}

async fn execute(context: &Context<'_>, inputs: &Map<String, Value>) -> Result {
    let name = api::text(inputs, "IntegrationName")?;
    let definition = match context.settings.integrations.get(name) {
        Some(local) => local.clone(),
        None => stored(context, name).await?,
    };
    let integration = parse(name, &definition)?;
    // Secrets from now on, before any message that could quote them is recorded.
    context.timeline.learn(integration.secrets());
    let body = match inputs.get("Body") {
        Some(Value::String(body)) => body.clone(),
        Some(other) => other.to_string(),
        None => integration.payload.clone().unwrap_or_default(),
    };
    let mut headers = integration.headers.clone();
    if !headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("content-type")) {
        headers.push(("content-type".into(), "application/json".into()));
    }
    let response = context
        .settings
        .aws
        .post(&integration.url, &headers, body.into_bytes())
        .await
        .map_err(|error| Failure::error(format!("webhook `{name}`: {error}")))?;
    let text = String::from_utf8_lossy(&response.body).into_owned();
    if !(200..300).contains(&response.status) {
        let shown: String = text.chars().take(200).collect();
        return Err(Failure::error(format!("webhook `{name}` answered HTTP {}: {shown}", response.status)));
    }
    let root = json!({ "Response": text, "ResponseCode": response.status });
    let builtins = root.as_object().cloned().unwrap_or_default();
    Ok(Output { root, builtins, ..Output::empty() })
}

/// The integration as AWS stores it: a SecureString parameter holding JSON.
async fn stored(context: &Context<'_>, name: &str) -> std::result::Result<Value, Failure> {
    let request: Map<String, Value> =
        [("Name".to_owned(), json!(format!("{PARAMETER_PREFIX}{name}"))), ("WithDecryption".to_owned(), json!(true))]
            .into_iter()
            .collect();
    let response = api::call(context, "ssm", "GetParameter", &request).await.map_err(|error| {
        Failure::error(format!(
            "webhook integration `{name}` not found locally (--integrations) nor in Parameter Store: {error}"
        ))
    })?;
    let text = response["Parameter"]["Value"].as_str().unwrap_or_default();
    serde_json::from_str(text).map_err(|_| Failure::error(format!("webhook integration `{name}` does not hold JSON")))
}

fn parse(name: &str, definition: &Value) -> std::result::Result<Integration, Failure> {
    let url = definition
        .get("url")
        .or_else(|| definition.get("URL"))
        .and_then(Value::as_str)
        .filter(|url| url.starts_with("https://") || url.starts_with("http://"))
        .ok_or_else(|| Failure::error(format!("webhook integration `{name}` has no http(s) `url`")))?;
    let text = |value: &Value| value.as_str().map_or_else(|| value.to_string(), str::to_owned);
    let headers = match definition.get("headers") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Object(headers)) => headers.iter().map(|(key, value)| (key.clone(), text(value))).collect(),
        // A list of `{"key"|"name": ..., "value": ...}` or of `Name: value` lines.
        Some(Value::Array(headers)) => headers
            .iter()
            .filter_map(|header| match header {
                Value::String(line) => line.split_once(':').map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned())),
                Value::Object(entry) => {
                    let key = entry.get("key").or_else(|| entry.get("name")).map(text)?;
                    Some((key, entry.get("value").map(text).unwrap_or_default()))
                }
                _ => None,
            })
            .collect(),
        Some(other) => {
            return Err(Failure::error(format!("webhook integration `{name}`: `headers` is {other}, not a mapping")));
        }
    };
    let payload = definition.get("payload").filter(|payload| !payload.is_null()).map(text);
    Ok(Integration { url: url.to_owned(), headers, payload })
}

fn describe(_: &Step, inputs: &Value) -> std::result::Result<String, String> {
    let name = shown_text(inputs, "IntegrationName").unwrap_or_else(|| "?".into());
    Ok(match shown_text(inputs, "Body") {
        Some(body) => format!("send {body} to webhook integration {name}"),
        None => format!("send the default payload to webhook integration {name}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integrations_as_aws_stores_them() {
        let definition = json!({
            "description": "chat", "url": "https://hooks.example/T0/B0/x",
            "headers": {"Authorization": "Bearer t"}, "payload": {"text": "hi"}
        });
        let integration = parse("chat", &definition).map_err(|_| ()).unwrap();
        assert_eq!(integration.headers, [("Authorization".to_owned(), "Bearer t".to_owned())]);
        assert_eq!(integration.payload.as_deref(), Some(r#"{"text":"hi"}"#));
        let listed = json!({"url": "http://127.0.0.1:1/h", "headers": [{"key": "X-A", "value": "1"}, "X-B: 2"]});
        assert_eq!(parse("x", &listed).map_err(|_| ()).unwrap().headers.len(), 2);
        assert!(parse("x", &json!({"url": "ftp://x"})).is_err());
    }
}
