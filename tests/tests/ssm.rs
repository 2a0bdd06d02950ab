//! SSM as the managed engine (issue 17): `runbook run ssm:NAME[:VERSION]` fetches the
//! document with GetDocument and caches it by name and hash; a child `DocumentName` found in no
//! local folder is fetched the same way.

use runbook_tests::Scratch;
use runbook_tests::moto::{Moto, moto};
use serde_json::Value;

/// Creates (or updates to a new version) the Automation document `name` in moto with `content`;
/// its version.
fn put_document(moto: &Moto, name: &str, content: &str, format: &str) -> String {
    let content = serde_json::to_string(content).unwrap();
    let version = moto.boto3(&format!(
        "import yaml\n\
         ssm = boto3.client('ssm')\n\
         content = {content} if '{format}' == 'YAML' else json.dumps(yaml.safe_load({content}))\n\
         try:\n    d = ssm.create_document(Name='{name}', Content=content, DocumentType='Automation', DocumentFormat='{format}')['DocumentDescription']\n\
         except ssm.exceptions.DocumentAlreadyExists:\n    d = ssm.update_document(Name='{name}', Content=content, DocumentVersion='$LATEST', DocumentFormat='{format}')['DocumentDescription']\n\
             ssm.update_document_default_version(Name='{name}', DocumentVersion=d['DocumentVersion'])\n\
         emit(d['DocumentVersion'])"
    ));
    version.as_str().unwrap().to_owned()
}

fn greeting(word: &str) -> String {
    format!(
        "schemaVersion: '0.3'
parameters:
  Who: {{type: String, default: world}}
mainSteps:
  - name: greet
    action: aws:executeScript
    inputs:
      Runtime: python3.11
      Handler: h
      Script: \"def h(e, c):\\n  return {{'text': e['word'] + ' ' + e['who']}}\"
      InputPayload: {{word: {word}, who: '{{{{ Who }}}}'}}
    outputs:
      - {{Name: Text, Selector: $.Payload.text, Type: String}}
outputs: [greet.Text]
"
    )
}

/// The finished event of a `--format json` run.
fn finished(stdout: &str) -> Value {
    runbook_tests::json_lines(stdout).into_iter().rev().find(|e| e["event"] == "execution_finished").unwrap_or_default()
}

fn get_document_calls(moto: &Moto, name: &str) -> usize {
    moto.requests().iter().filter(|r| r["operation"] == "GetDocument" && r["request"]["Name"] == name).count()
}

#[test]
fn a_document_in_ssm_runs_by_name_and_a_numbered_version_is_cached() {
    let Some(moto) = moto("a_document_in_ssm_runs_by_name_and_a_numbered_version_is_cached") else { return };
    let scratch = Scratch::new("ssm-by-name");
    let name = "Runbook-Greeting-ByName";
    let first = put_document(moto, name, &greeting("hello"), "YAML");
    let second = put_document(moto, name, &greeting("howdy"), "YAML");
    assert_eq!((first.as_str(), second.as_str()), ("1", "2"));

    let run = |reference: &str| {
        let output = moto.runbook(&scratch, &["run", reference, "-p", "Who=ops", "--format", "json"]);
        assert_eq!(output.code, 0, "{reference}: {}{}", output.stdout, output.stderr);
        (finished(&output.stdout)["outputs"]["greet.Text"].clone(), output.stderr)
    };
    let (greeting, said) = run(&format!("ssm:{name}"));
    assert_eq!(greeting, serde_json::json!(["howdy ops"]), "the default version runs");
    assert!(said.contains(&format!("ssm:{name}: version 2 fetched")), "{said}");
    let (greeting, said) = run(&format!("ssm:{name}:1"));
    assert_eq!(greeting, serde_json::json!(["hello ops"]));
    assert!(said.contains("version 1 fetched"), "{said}");
    // Version 1 never changes in SSM: the second run takes it from the cache.
    let before = get_document_calls(moto, name);
    let (greeting, said) = run(&format!("ssm:{name}:1"));
    assert_eq!(greeting, serde_json::json!(["hello ops"]));
    assert!(said.contains("version 1 cached"), "{said}");
    assert_eq!(get_document_calls(moto, name), before, "no GetDocument for a cached version");
    // The cache holds each content once, by hash, under the name.
    let cached: Vec<String> = std::fs::read_dir(format!("{}/documents/{name}", scratch.state()))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(cached.iter().filter(|file| *file != "versions.json").count(), 2, "{cached:?}");
    // The journal records the cached file, so `executions show` and a resume need no AWS.
    let listed = moto.runbook(&scratch, &["executions", "list", "--format", "json"]);
    assert!(listed.stdout.contains(&format!("documents/{name}/")), "{}", listed.stdout);
}

#[test]
fn a_missing_document_or_a_command_document_is_refused_with_its_name() {
    let Some(moto) = moto("a_missing_document_or_a_command_document_is_refused_with_its_name") else { return };
    let scratch = Scratch::new("ssm-missing");
    let output = moto.runbook(&scratch, &["run", "ssm:Runbook-No-Such-Document"]);
    assert_eq!(output.code, 3, "{}", output.stderr);
    assert!(output.stderr.contains("no Automation document `Runbook-No-Such-Document` in SSM"), "{}", output.stderr);
    let output = moto.runbook(&scratch, &["run", "ssm:Bad Name"]);
    assert_eq!(output.code, 2, "a malformed reference is a usage error: {}", output.stderr);
    assert!(output.stderr.contains("only letters, digits"), "{}", output.stderr);
    moto.boto3(
        "boto3.client('ssm').create_document(Name='Runbook-A-Command', DocumentType='Command', Content=json.dumps(\
         {'schemaVersion': '2.2', 'mainSteps': [{'action': 'aws:runShellScript', 'name': 'x', 'inputs': {'runCommand': ['true']}}]}))\n\
         emit(1)",
    );
    let output = moto.runbook(&scratch, &["run", "ssm:Runbook-A-Command"]);
    assert_ne!(output.code, 0);
    assert!(output.stderr.contains("is a Command document"), "{}", output.stderr);
}

#[test]
fn a_child_document_found_in_no_folder_is_fetched_from_ssm() {
    let Some(moto) = moto("a_child_document_found_in_no_folder_is_fetched_from_ssm") else { return };
    let scratch = Scratch::new("ssm-child");
    let name = "Runbook-Greeting-Child";
    put_document(moto, name, &greeting("hi"), "JSON");
    let parent = scratch.runbook(
        "parent.yaml",
        &format!(
            "schemaVersion: '0.3'
mainSteps:
  - name: child
    action: aws:executeAutomation
    inputs:
      DocumentName: {name}
      DocumentVersion: '1'
      RuntimeParameters: {{Who: [team]}}
outputs: [child.Output]
"
        ),
    );
    let output = moto.runbook(&scratch, &["run", &parent, "--format", "json"]);
    assert_eq!(output.code, 0, "{}{}", output.stdout, output.stderr);
    assert_eq!(finished(&output.stdout)["outputs"]["child.Output"], serde_json::json!(["hi team"]));
}

/// The document `name` as SSM holds it (default version): its version, content and format.
fn document(moto: &Moto, name: &str) -> Value {
    moto.boto3(&format!(
        "d = boto3.client('ssm').get_document(Name='{name}')\n\
         emit({{'version': d['DocumentVersion'], 'content': d['Content'], 'format': d['DocumentFormat']}})"
    ))
}

#[test]
fn publish_creates_then_versions_and_the_same_content_publishes_nothing() {
    let Some(moto) = moto("publish_creates_then_versions_and_the_same_content_publishes_nothing") else { return };
    let scratch = Scratch::new("ssm-publish");
    let name = "Runbook-Published-Greeting";
    let path = scratch.runbook("greeting.yaml", &greeting("hello"));
    let publish = |extra: &[&str]| {
        let mut args = vec!["publish", &path, "--name", name, "--format", "json"];
        args.extend_from_slice(extra);
        let output = moto.runbook(&scratch, &args);
        assert_eq!(output.code, 0, "{}{}", output.stdout, output.stderr);
        let said: Value = serde_json::from_str(&output.stdout).unwrap();
        (said["action"].as_str().unwrap().to_owned(), said["version"].as_str().unwrap().to_owned())
    };
    assert_eq!(publish(&[]), ("created".into(), "1".into()));
    assert_eq!(publish(&[]), ("unchanged".into(), "1".into()), "the same content publishes nothing");
    std::fs::write(&path, greeting("howdy")).unwrap();
    assert_eq!(publish(&[]), ("updated".into(), "2".into()));
    assert!(document(moto, name)["content"].as_str().unwrap().contains("howdy"), "version 2 is the default");
    // Back to the first content: no third version, version 1 is the default again.
    std::fs::write(&path, greeting("hello")).unwrap();
    assert_eq!(publish(&[]), ("defaulted".into(), "1".into()));
    assert_eq!(document(moto, name)["version"], "1");
    // What was published runs by name.
    let output = moto.runbook(&scratch, &["run", &format!("ssm:{name}"), "--format", "json"]);
    assert_eq!(finished(&output.stdout)["outputs"]["greet.Text"], serde_json::json!(["hello world"]));
    // The text form says the same for people.
    let output = moto.runbook(&scratch, &["publish", &path, "--name", name]);
    assert!(output.stdout.contains("no changes: Runbook-Published-Greeting version 1"), "{}", output.stdout);
}

const EXTENDED: &str = "schemaVersion: '0.3'
x-locks: [maintenance]
parameters:
  Token: {type: String, default: t, x-secret: true}
mainSteps:
  - name: wait
    action: aws:sleep
    inputs: {Duration: PT1S}
    x-undo: {action: aws:sleep, inputs: {Duration: PT1S}}
";

#[test]
fn publish_refuses_extensions_at_their_lines_or_strips_them_with_warnings() {
    let Some(moto) = moto("publish_refuses_extensions_at_their_lines_or_strips_them_with_warnings") else { return };
    let scratch = Scratch::new("ssm-publish-extensions");
    let path = scratch.runbook("extended.yaml", EXTENDED);
    let name = "Runbook-Published-Extended";
    let output = moto.runbook(&scratch, &["publish", &path, "--name", name]);
    assert_eq!(output.code, 1, "{}", output.stderr);
    for (line, key) in [(2, "x-locks"), (4, "x-secret"), (9, "x-undo")] {
        assert!(output.stderr.contains(&format!("`{key}` is an engine extension")), "{}", output.stderr);
        assert!(output.stderr.contains(&format!("extended.yaml:{line}:")), "{key} at line {line}: {}", output.stderr);
    }
    let created = moto.requests().iter().filter(|r| r["operation"] == "CreateDocument").count();
    let output = moto.runbook(&scratch, &["publish", &path, "--name", name, "--strip-extensions"]);
    assert_eq!(output.code, 0, "{}", output.stderr);
    assert!(output.stderr.contains("`x-locks` removed: no named lock is taken"), "{}", output.stderr);
    assert!(output.stderr.contains("`x-undo` removed"), "{}", output.stderr);
    assert_eq!(moto.requests().iter().filter(|r| r["operation"] == "CreateDocument").count(), created + 1);
    let published = document(moto, name);
    let content = published["content"].as_str().unwrap();
    assert!(!content.contains("x-"), "{content}");
    assert!(content.contains("\"wait\""), "{content}");
    // AWS's own prefixes are refused before any call.
    let output = moto.runbook(&scratch, &["publish", &path, "--name", "AWS-Mine", "--strip-extensions"]);
    assert_eq!(output.code, 2, "{}", output.stderr);
    assert!(output.stderr.contains("kept for AWS's own documents"), "{}", output.stderr);
}

#[test]
fn publish_uploads_attachments_to_s3_and_points_the_document_at_them() {
    let Some(moto) = moto("publish_uploads_attachments_to_s3_and_points_the_document_at_them") else { return };
    let scratch = Scratch::new("ssm-publish-attachments");
    let script = "def handler(events, context):\n    return {'ok': True}\n";
    std::fs::write(scratch.path("collect.py"), script).unwrap();
    let hash = runbook::exec::content_hash(script.as_bytes());
    let path = scratch.runbook(
        "collect.yaml",
        &format!(
            "schemaVersion: '0.3'
files:
  collect.py:
    checksums: {{sha256: {hash}}}
mainSteps:
  - name: collect
    action: aws:executeScript
    inputs: {{Runtime: python3.11, Handler: collect.handler, Attachment: collect.py}}
"
        ),
    );
    let name = "Runbook-Published-Attachments";
    let output = moto.runbook(&scratch, &["publish", &path, "--name", name]);
    assert_eq!(output.code, 3, "{}", output.stderr);
    assert!(output.stderr.contains("give --attachments s3://BUCKET/PREFIX"), "{}", output.stderr);
    moto.boto3("boto3.client('s3').create_bucket(Bucket='runbook-attachments')\nemit(1)");
    let output =
        moto.runbook(&scratch, &["publish", &path, "--name", name, "--attachments", "s3://runbook-attachments/docs"]);
    assert_eq!(output.code, 0, "{}", output.stderr);
    let uploaded = moto.boto3(
        "emit(boto3.client('s3').get_object(Bucket='runbook-attachments', Key='docs/collect.py')['Body'].read().decode())",
    );
    assert_eq!(uploaded, script);
    // A file that no longer matches the checksum the document declares is refused.
    std::fs::write(scratch.path("collect.py"), "changed").unwrap();
    let output =
        moto.runbook(&scratch, &["publish", &path, "--name", name, "--attachments", "s3://runbook-attachments/docs"]);
    assert_eq!(output.code, 3, "{}", output.stderr);
    assert!(output.stderr.contains("not the checksum the document declares"), "{}", output.stderr);
}
