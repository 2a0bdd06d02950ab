//! Where a service's requests go: an endpoint given by the user (`--endpoint-url`, then the
//! standard `AWS_ENDPOINT_URL_<SERVICE>` and `AWS_ENDPOINT_URL` variables), else the
//! service's host in the region's partition, or its global host (IAM, Route 53, ...).

use super::model::{self, Model};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Scheme, host, port and an optional base path, without a trailing `/`.
    pub url: String,
    /// The region the request is signed for (`us-east-1` for a global host).
    pub signing_region: String,
    /// Whether the URL came from the user; S3 then addresses buckets by path.
    pub custom: bool,
}

/// The variables a process reads: the engine's own environment, or a test's.
pub trait Environment {
    fn var(&self, name: &str) -> Option<String>;
}

pub struct ProcessEnvironment;

impl Environment for ProcessEnvironment {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|value| !value.is_empty())
    }
}

/// The service's part of `AWS_ENDPOINT_URL_<SERVICE>`: its service id upper-cased, spaces
/// as underscores (`Route 53` -> `ROUTE_53`).
pub fn variable_for(model: &Model) -> String {
    format!("AWS_ENDPOINT_URL_{}", model.metadata.service_id.to_ascii_uppercase().replace([' ', '-'], "_"))
}

pub fn resolve(
    model: &Model,
    region: &str,
    endpoint_url: Option<&str>,
    environment: &dyn Environment,
) -> Result<Endpoint, String> {
    let configured = if environment.var("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS").is_some_and(|v| v == "true") {
        None
    } else {
        environment.var(&variable_for(model)).or_else(|| environment.var("AWS_ENDPOINT_URL"))
    };
    if let Some(url) = endpoint_url.map(str::to_string).or(configured) {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(format!("endpoint URL {url:?} must start with http:// or https://"));
        }
        return Ok(Endpoint {
            url: url.trim_end_matches('/').to_string(),
            signing_region: region.to_string(),
            custom: true,
        });
    }
    let partition = partition_of(region);
    let prefix = model.metadata.endpoint_prefix.as_str();
    if let Some(global) = partition.and_then(|(_, p)| p.global_services.get(prefix)) {
        return Ok(Endpoint {
            url: format!("https://{}", global.hostname),
            signing_region: global.region.clone().unwrap_or_else(|| region.to_string()),
            custom: false,
        });
    }
    let suffix = partition.map_or("amazonaws.com", |(_, p)| p.dns_suffix.as_str());
    Ok(Endpoint {
        url: format!("https://{prefix}.{region}.{suffix}"),
        signing_region: region.to_string(),
        custom: false,
    })
}

/// The partition whose region pattern matches (`aws`, `aws-cn`, `aws-us-gov`, ...).
pub fn partition_of(region: &str) -> Option<(&'static str, &'static model::Partition)> {
    // Compiled once: every call resolves its endpoint.
    static PATTERNS: std::sync::OnceLock<Vec<(&'static str, &'static model::Partition, fancy_regex::Regex)>> =
        std::sync::OnceLock::new();
    let patterns = PATTERNS.get_or_init(|| {
        ["aws", "aws-cn", "aws-us-gov", "aws-iso", "aws-iso-b", "aws-iso-e", "aws-iso-f", "aws-eusc"]
            .into_iter()
            .filter_map(|name| {
                let partition = model::partition(name)?;
                Some((name, partition, fancy_regex::Regex::new(&partition.region_regex).ok()?))
            })
            .collect()
    });
    patterns
        .iter()
        .find(|(_, _, pattern)| pattern.is_match(region).unwrap_or(false))
        .map(|(name, partition, _)| (*name, *partition))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::aws::model::service;

    impl Environment for HashMap<&str, &str> {
        fn var(&self, name: &str) -> Option<String> {
            self.get(name).map(|value| value.to_string())
        }
    }

    #[test]
    fn regional_global_and_configured_endpoints() {
        let none = HashMap::new();
        let ec2 = service("ec2").unwrap();
        assert_eq!(resolve(&ec2, "eu-west-1", None, &none).unwrap().url, "https://ec2.eu-west-1.amazonaws.com");
        let iam = resolve(&service("iam").unwrap(), "eu-west-1", None, &none).unwrap();
        assert_eq!((iam.url.as_str(), iam.signing_region.as_str()), ("https://iam.amazonaws.com", "us-east-1"));
        let cn = resolve(&ec2, "cn-north-1", None, &none).unwrap();
        assert_eq!(cn.url, "https://ec2.cn-north-1.amazonaws.com.cn");
        let cloudwatch = service("cloudwatch").unwrap();
        assert_eq!(variable_for(&cloudwatch), "AWS_ENDPOINT_URL_CLOUDWATCH");
        assert_eq!(variable_for(&service("route53").unwrap()), "AWS_ENDPOINT_URL_ROUTE_53");
        let environment = HashMap::from([
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000/"),
            ("AWS_ENDPOINT_URL_EC2", "http://127.0.0.1:6000"),
        ]);
        assert_eq!(resolve(&ec2, "us-east-1", None, &environment).unwrap().url, "http://127.0.0.1:6000");
        assert_eq!(resolve(&cloudwatch, "us-east-1", None, &environment).unwrap().url, "http://127.0.0.1:5000");
        let flag = resolve(&ec2, "us-east-1", Some("http://localhost:1"), &environment).unwrap();
        assert_eq!(flag.url, "http://localhost:1");
        assert!(resolve(&ec2, "us-east-1", Some("localhost:1"), &none).is_err());
    }
}
