//! `runbook`: load, validate, plan and run AWS Systems Manager Automation runbooks locally.
//!
//! The pipeline runs one way: [`document`] (load, spans) -> [`validate`] (schema and rules)
//! -> [`plan`] -> [`exec`] -> [`journal`] -> [`report`]. See ARCHITECTURE.md.

pub mod actions;
pub mod aws;
pub mod cli;
pub mod diagnostic;
pub mod document;
pub mod exec;
pub mod journal;
pub mod plan;
pub mod redact;
pub mod report;
pub mod scenario;
pub mod ssm;
pub mod template;
pub mod timeline;
pub mod validate;
