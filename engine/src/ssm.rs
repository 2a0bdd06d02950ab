//! The managed engine (issue 17): runbooks kept in SSM as Automation documents, fetched by
//! name, published, and run on SSM Automation with the local timeline.
//!
//! - `documents.rs`: `ssm:NAME[:VERSION]` fetched with GetDocument, cached by name and hash.
//! - `publish.rs`: a runbook made a document: created, or a new default version.

pub mod documents;
pub mod publish;
