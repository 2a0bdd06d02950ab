//! AWS end to end: runbooks run by the `runbook` binary against a moto server, one or more
//! per wire protocol (ec2, query, json, rest-json, rest-xml, smithy-rpc-v2-cbor), each checking the state it left
//! through boto3 (never through the engine's own client). Without moto they skip, saying so.

use runbook_tests::moto::{Moto, moto, runbook_against};
use runbook_tests::{Output, Scratch, project_root, runbook};
use serde_json::{Value, json};

/// The JSON events of a `--format json` run.
fn events(output: &Output) -> Vec<Value> {
    output.stdout.lines().filter_map(|line| serde_json::from_str(line).ok()).collect()
}

fn finished(output: &Output) -> Value {
    events(output).into_iter().find(|event| event["event"] == "execution_finished").unwrap_or_else(|| {
        panic!("no execution_finished event\nstdout:\n{}\nstderr:\n{}", output.stdout, output.stderr)
    })
}

/// The `step_finished` event of `step` (its last one).
fn step(output: &Output, step: &str) -> Value {
    events(output)
        .into_iter()
        .rfind(|event| event["event"] == "step_finished" && event["step"] == step)
        .unwrap_or_else(|| panic!("step {step} never finished\n{}\n{}", output.stdout, output.stderr))
}

/// Runs a runbook file against moto with `--format json`, polling fast.
fn run(moto: &Moto, scratch: &Scratch, path: &str, params: &[&str]) -> Output {
    let mut args = vec!["run", path, "--format", "json", "--poll-interval", "0.05"];
    for param in params {
        args.extend(["-p", param]);
    }
    moto.runbook(scratch, &args)
}

/// Checks the run succeeded and returns every step output as `{"step.Output": value}`.
fn assert_success(output: &Output) -> Value {
    let finished = finished(output);
    assert_eq!(finished["status"], "Success", "stdout:\n{}\nstderr:\n{}", output.stdout, output.stderr);
    assert_eq!(output.code, 0);
    let mut outputs = serde_json::Map::new();
    for event in events(output).into_iter().filter(|event| event["event"] == "step_finished") {
        for (name, value) in event["outputs"].as_object().into_iter().flatten() {
            outputs.insert(format!("{}.{name}", event["step"].as_str().unwrap()), value.clone());
        }
    }
    Value::Object(outputs)
}

/// A name no other test of this run uses (moto's state is shared by the whole binary).
fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", &uuid_like()[..8])
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("{:08x}{:04x}", nanos, NEXT.fetch_add(1, Ordering::Relaxed))
}

#[test]
fn ec2_launch_wait_stop_and_tag() {
    let Some(moto) = moto("ec2_launch_wait_stop_and_tag") else { return };
    let scratch = Scratch::new("aws-ec2");
    let image = moto.boto3("emit(boto3.client('ec2').describe_images()['Images'][0]['ImageId'])");
    let path = scratch.runbook(
        "ec2.yaml",
        r#"schemaVersion: '0.3'
parameters:
  ImageId: {type: String}
mainSteps:
  - name: launch
    action: aws:runInstances
    inputs:
      ImageId: '{{ ImageId }}'
      InstanceType: t3.micro
      TagSpecifications:
        - ResourceType: instance
          Tags: [{Key: Name, Value: runbook-e2e}]
  - name: waitRunning
    action: aws:waitForAwsResourceProperty
    inputs:
      Service: ec2
      Api: DescribeInstances
      InstanceIds: '{{ launch.InstanceIds }}'
      PropertySelector: $.Reservations[0].Instances[0].State.Name
      DesiredValues: [running]
  - name: stop
    action: aws:changeInstanceState
    inputs:
      InstanceIds: '{{ launch.InstanceIds }}'
      DesiredState: stopped
  - name: tag
    action: aws:createTags
    inputs:
      ResourceIds: '{{ launch.InstanceIds }}'
      Tags: [{Key: Owner, Value: runbook}]
  - name: describe
    action: aws:executeAwsApi
    inputs:
      Service: ec2
      Api: describe_instances
      InstanceIds: '{{ launch.InstanceIds }}'
    outputs:
      - {Name: State, Selector: '$.Reservations[0].Instances[0].State.Name', Type: String}
      - {Name: LaunchTime, Selector: '$.Reservations[0].Instances[0].LaunchTime', Type: String}
      - {Name: Status, Selector: '$.ResponseMetadata.HTTPStatusCode', Type: Integer}
outputs: [launch.InstanceIds, describe.State, describe.LaunchTime, describe.Status]
"#,
    );
    let output = run(moto, &scratch, &path, &[&format!("ImageId={}", image.as_str().unwrap())]);
    let outputs = assert_success(&output);
    let instance = outputs["launch.InstanceIds"][0].as_str().unwrap().to_string();
    assert!(instance.starts_with("i-"), "{outputs}");
    assert_eq!(outputs["describe.State"], "stopped");
    assert_eq!(outputs["describe.Status"], 200);
    let launch_time = outputs["describe.LaunchTime"].as_str().unwrap();
    assert!(launch_time.parse::<jiff::Timestamp>().is_ok(), "not ISO-8601: {launch_time}");

    let seen = moto.boto3(&format!(
        "i = boto3.client('ec2').describe_instances(InstanceIds=['{instance}'])['Reservations'][0]['Instances'][0]\n\
         emit({{'state': i['State']['Name'], 'type': i['InstanceType'], 'tags': {{t['Key']: t['Value'] for t in i['Tags']}}}})"
    ));
    assert_eq!(
        seen,
        json!({"state": "stopped", "type": "t3.micro", "tags": {"Name": "runbook-e2e", "Owner": "runbook"}})
    );
}

#[test]
fn iam_query_protocol_create_and_assert() {
    let Some(moto) = moto("iam_query_protocol_create_and_assert") else { return };
    let scratch = Scratch::new("aws-iam");
    let role = unique("runbook-role");
    let path = scratch.runbook(
        "iam.yaml",
        r#"schemaVersion: '0.3'
parameters:
  RoleName: {type: String}
mainSteps:
  - name: create
    action: aws:executeAwsApi
    inputs:
      Service: iam
      Api: CreateRole
      RoleName: '{{ RoleName }}'
      Path: /runbook/
      AssumeRolePolicyDocument: '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ssm.amazonaws.com"},"Action":"sts:AssumeRole"}]}'
      Tags: [{Key: team, Value: sre}]
    outputs:
      - {Name: Arn, Selector: $.Role.Arn, Type: String}
  - name: check
    action: aws:assertAwsResourceProperty
    inputs:
      Service: iam
      Api: GetRole
      RoleName: '{{ RoleName }}'
      PropertySelector: $.Role.Path
      DesiredValues: [/runbook/]
  - name: list
    action: aws:executeAwsApi
    inputs:
      Service: iam
      Api: ListRoles
      PathPrefix: /runbook/
    outputs:
      - {Name: Names, Selector: '$.Roles..RoleName', Type: StringList}
outputs: [create.Arn, list.Names]
"#,
    );
    let outputs = assert_success(&run(moto, &scratch, &path, &[&format!("RoleName={role}")]));
    assert_eq!(outputs["create.Arn"], format!("arn:aws:iam::123456789012:role/runbook/{role}"));
    assert!(outputs["list.Names"].as_array().unwrap().contains(&json!(role)));
    let seen = moto.boto3(&format!(
        "r = boto3.client('iam').get_role(RoleName='{role}')['Role']\nemit({{'path': r['Path'], 'tags': r.get('Tags')}})"
    ));
    assert_eq!(seen, json!({"path": "/runbook/", "tags": [{"Key": "team", "Value": "sre"}]}));
}

#[test]
fn dynamodb_and_ssm_json_protocol() {
    let Some(moto) = moto("dynamodb_and_ssm_json_protocol") else { return };
    let scratch = Scratch::new("aws-json");
    let table = unique("runbook-table");
    let parameter = format!("/runbook/{}", unique("param"));
    let path = scratch.runbook(
        "json.yaml",
        r#"schemaVersion: '0.3'
parameters:
  Table: {type: String}
  Parameter: {type: String}
mainSteps:
  - name: createTable
    action: aws:executeAwsApi
    inputs:
      Service: dynamodb
      Api: CreateTable
      TableName: '{{ Table }}'
      AttributeDefinitions: [{AttributeName: id, AttributeType: S}]
      KeySchema: [{AttributeName: id, KeyType: HASH}]
      BillingMode: PAY_PER_REQUEST
  - name: waitActive
    action: aws:waitForAwsResourceProperty
    inputs:
      Service: dynamodb
      Api: DescribeTable
      TableName: '{{ Table }}'
      PropertySelector: $.Table.TableStatus
      DesiredValues: [ACTIVE]
  - name: putItem
    action: aws:executeAwsApi
    inputs:
      Service: dynamodb
      Api: PutItem
      TableName: '{{ Table }}'
      Item: {id: {S: incident-42}, severity: {N: '2'}}
  - name: describe
    action: aws:executeAwsApi
    inputs:
      Service: dynamodb
      Api: DescribeTable
      TableName: '{{ Table }}'
    outputs:
      - {Name: Created, Selector: $.Table.CreationDateTime, Type: String}
  - name: putParameter
    action: aws:executeAwsApi
    inputs:
      Service: ssm
      Api: PutParameter
      Name: '{{ Parameter }}'
      Value: blue
      Type: String
  - name: getParameter
    action: aws:executeAwsApi
    inputs:
      Service: ssm
      Api: GetParameter
      Name: '{{ Parameter }}'
    outputs:
      - {Name: Value, Selector: $.Parameter.Value, Type: String}
      - {Name: Version, Selector: $.Parameter.Version, Type: Integer}
outputs: [describe.Created, getParameter.Value, getParameter.Version]
"#,
    );
    let outputs =
        assert_success(&run(moto, &scratch, &path, &[&format!("Table={table}"), &format!("Parameter={parameter}")]));
    assert_eq!(outputs["getParameter.Value"], "blue");
    assert_eq!(outputs["getParameter.Version"], 1);
    let created = outputs["describe.Created"].as_str().unwrap();
    assert!(created.parse::<jiff::Timestamp>().is_ok(), "CreationDateTime is not ISO-8601: {created}");
    let seen = moto.boto3(&format!(
        "d = boto3.client('dynamodb').get_item(TableName='{table}', Key={{'id': {{'S': 'incident-42'}}}})['Item']\n\
         p = boto3.client('ssm').get_parameter(Name='{parameter}')['Parameter']\n\
         emit({{'item': d, 'parameter': p['Value']}})"
    ));
    assert_eq!(seen, json!({"item": {"id": {"S": "incident-42"}, "severity": {"N": "2"}}, "parameter": "blue"}));
}

#[test]
fn lambda_rest_json_list_and_invoke() {
    let Some(moto) = moto("lambda_rest_json_list_and_invoke") else { return };
    let scratch = Scratch::new("aws-lambda");
    let function = unique("runbook-fn");
    moto.boto3(&format!(
        "import io, zipfile\n\
         role = boto3.client('iam').create_role(RoleName='{function}-role', AssumeRolePolicyDocument='{{}}')['Role']['Arn']\n\
         buffer = io.BytesIO()\n\
         with zipfile.ZipFile(buffer, 'w') as z: z.writestr('f.py', 'def h(e, c): return e')\n\
         boto3.client('lambda').create_function(FunctionName='{function}', Runtime='python3.11', Role=role, Handler='f.h', Code={{'ZipFile': buffer.getvalue()}})\n\
         emit(True)"
    ));
    let path = scratch.runbook(
        "lambda.yaml",
        r#"schemaVersion: '0.3'
parameters:
  Function: {type: String}
mainSteps:
  - name: list
    action: aws:executeAwsApi
    inputs:
      Service: lambda
      Api: ListFunctions
      MaxItems: 50
    outputs:
      - {Name: Names, Selector: '$.Functions..FunctionName', Type: StringList}
  - name: invoke
    action: aws:invokeLambdaFunction
    inputs:
      FunctionName: '{{ Function }}'
      InputPayload: {status: healthy, checks: 3}
    outputs:
      - {Name: Status, Selector: $.status, Type: String}
outputs: [list.Names]
"#,
    );
    let outputs = assert_success(&run(moto, &scratch, &path, &[&format!("Function={function}")]));
    // moto's Lambda without Docker answers with the payload it was sent.
    assert_eq!(outputs["invoke.Status"], "healthy");
    assert_eq!(outputs["invoke.StatusCode"], 200);
    let expected = moto
        .boto3("emit([f['FunctionName'] for f in boto3.client('lambda').list_functions(MaxItems=50)['Functions']])");
    assert_eq!(outputs["list.Names"], expected);
    assert!(expected.as_array().unwrap().contains(&json!(function)));
}

#[test]
fn route53_rest_xml_records() {
    let Some(moto) = moto("route53_rest_xml_records") else { return };
    let scratch = Scratch::new("aws-route53");
    let zone = format!("{}.example.com", unique("runbook"));
    let path = scratch.runbook(
        "route53.yaml",
        r#"schemaVersion: '0.3'
parameters:
  Zone: {type: String}
mainSteps:
  - name: createZone
    action: aws:executeAwsApi
    inputs:
      Service: route53
      Api: CreateHostedZone
      Name: '{{ Zone }}'
      CallerReference: '{{ automation:EXECUTION_ID }}'
    outputs:
      - {Name: ZoneId, Selector: $.HostedZone.Id, Type: String}
  - name: upsert
    action: aws:executeAwsApi
    inputs:
      Service: route53
      Api: ChangeResourceRecordSets
      HostedZoneId: '{{ createZone.ZoneId }}'
      ChangeBatch:
        Comment: failover to the standby
        Changes:
          - Action: UPSERT
            ResourceRecordSet:
              Name: 'api.{{ Zone }}'
              Type: A
              TTL: 60
              ResourceRecords: [{Value: 192.0.2.10}]
  - name: records
    action: aws:executeAwsApi
    inputs:
      Service: route53
      Api: ListResourceRecordSets
      HostedZoneId: '{{ createZone.ZoneId }}'
    outputs:
      - {Name: Types, Selector: '$.ResourceRecordSets..Type', Type: StringList}
outputs: [createZone.ZoneId, records.Types]
"#,
    );
    let outputs = assert_success(&run(moto, &scratch, &path, &[&format!("Zone={zone}")]));
    let zone_id = outputs["createZone.ZoneId"].as_str().unwrap().to_string();
    assert!(outputs["records.Types"].as_array().unwrap().contains(&json!("A")), "{outputs}");
    let seen = moto.boto3(&format!(
        "r = boto3.client('route53').list_resource_record_sets(HostedZoneId='{zone_id}')['ResourceRecordSets']\n\
         emit([[x['Name'], x['Type'], x.get('TTL'), [v['Value'] for v in x.get('ResourceRecords', [])]] for x in r if x['Type'] == 'A'])"
    ));
    assert_eq!(seen, json!([[format!("api.{zone}."), "A", 60, ["192.0.2.10"]]]));
}

/// A service outside the 63 the bundle once held (every botocore service is bundled now):
/// `Service: ecr` validates, with its members checked, and calls moto.
#[test]
fn ecr_a_service_no_corpus_runbook_names_validates_and_calls() {
    let Some(moto) = moto("ecr_a_service_no_corpus_runbook_names_validates_and_calls") else { return };
    let scratch = Scratch::new("aws-ecr");
    let repository = unique("runbook-images");
    let text = r#"schemaVersion: '0.3'
parameters:
  Repository: {type: String}
mainSteps:
  - name: create
    action: aws:executeAwsApi
    inputs:
      Service: ecr
      Api: CreateRepository
      repositoryName: '{{ Repository }}'
      imageTagMutability: IMMUTABLE
    outputs:
      - {Name: Uri, Selector: $.repository.repositoryUri, Type: String}
  - name: describe
    action: aws:executeAwsApi
    inputs:
      Service: ecr
      Api: describe_repositories
      repositoryNames: ['{{ Repository }}']
    outputs:
      - {Name: Mutability, Selector: '$.repositories[0].imageTagMutability', Type: String}
outputs: [create.Uri, describe.Mutability]
"#;
    let path = scratch.runbook("ecr.yaml", text);
    let checked = runbook(&["validate", &path]);
    assert_eq!(checked.code, 0, "{}{}", checked.stdout, checked.stderr);
    // A member ECR does not have is caught before any call, with the nearest name (a warning,
    // as for every service: an error with `--deny-warnings`).
    let wrong =
        scratch.runbook("ecr-wrong.yaml", &text.replace("imageTagMutability: IMMUTABLE", "imageTagMutable: IMMUTABLE"));
    let refused = runbook(&["validate", &wrong, "--deny-warnings"]);
    assert_eq!(refused.code, 1, "{}", refused.stdout);
    assert!(
        ["[aws-parameter]", "unknown parameter `imageTagMutable`", "did you mean", "`imageTagMutability`?"]
            .iter()
            .all(|part| refused.stdout.contains(part)),
        "{}",
        refused.stdout
    );

    let outputs = assert_success(&run(moto, &scratch, &path, &[&format!("Repository={repository}")]));
    assert_eq!(outputs["describe.Mutability"], "IMMUTABLE", "{outputs}");
    let seen = moto.boto3(&format!(
        "r = boto3.client('ecr').describe_repositories(repositoryNames=['{repository}'])['repositories'][0]\n\
         emit([r['repositoryName'], r['imageTagMutability'], r['repositoryUri']])"
    ));
    assert_eq!(seen[0], json!(repository));
    assert_eq!(seen[1], "IMMUTABLE");
    assert_eq!(outputs["create.Uri"], seen[2]);
}

/// Smithy RPC v2 CBOR, the only protocol of EventBridge V2 (moto lacks the service: the test
/// server emulates its event buses, `tests/moto/eventbridgev2.py`): a bus made, read, waited
/// for and listed, a second create refused with the service's error code, and boto3 sees the bus.
#[test]
fn eventbridgev2_smithy_rpc_v2_cbor_create_describe_and_refuse() {
    let Some(moto) = moto("eventbridgev2_smithy_rpc_v2_cbor_create_describe_and_refuse") else { return };
    let scratch = Scratch::new("aws-cbor");
    let bus = unique("orders");
    let path = scratch.runbook(
        "cbor.yaml",
        r#"schemaVersion: '0.3'
parameters:
  Bus: {type: String}
mainSteps:
  - name: create
    action: aws:executeAwsApi
    inputs: {Service: eventbridgev2, Api: CreateEventBus, Name: '{{ Bus }}', Description: 'orders, café', Tags: {team: sre}}
    outputs:
      - {Name: Arn, Selector: $.EventBusArn, Type: String}
  - name: active
    action: aws:waitForAwsResourceProperty
    inputs:
      Service: eventbridgev2
      Api: DescribeEventBus
      EventBusArn: '{{ create.Arn }}'
      PropertySelector: $.State
      DesiredValues: [ACTIVE]
  - name: describe
    action: aws:executeAwsApi
    inputs: {Service: eventbridgev2, Api: describe_event_bus, EventBusArn: '{{ create.Arn }}'}
    outputs:
      - {Name: Description, Selector: $.Description, Type: String}
      - {Name: Created, Selector: $.CreationTime, Type: String}
  - name: listed
    action: aws:executeAwsApi
    inputs: {Service: eventbridgev2, Api: ListEventBuses, NamePrefix: '{{ Bus }}', MaxResults: '5'}
    outputs:
      - {Name: First, Selector: '$.EventBuses[0].Name', Type: String}
  - name: again
    action: aws:executeAwsApi
    onFailure: Continue
    isCritical: false
    inputs: {Service: eventbridgev2, Api: CreateEventBus, Name: '{{ Bus }}'}
"#,
    );
    let output = run(moto, &scratch, &path, &[&format!("Bus={bus}")]);
    let outputs = assert_success(&output);
    assert_eq!(outputs["describe.Description"], "orders, café", "{outputs}");
    assert_eq!(outputs["listed.First"], json!(bus), "{outputs}");
    let created = outputs["describe.Created"].as_str().unwrap_or_default();
    assert!(created.len() == 20 && created.ends_with('Z'), "CreationTime as ISO-8601 text: {outputs}");
    let error = step(&output, "again")["error"].as_str().unwrap_or_default().to_string();
    assert!(error.contains("(ResourceAlreadyExistsException)") && error.contains(&bus), "{error}");

    let seen = moto.boto3(&format!(
        "bus = boto3.client('eventbridgev2').describe_event_bus(EventBusArn='{}')\n\
         emit([bus['Name'], bus['State'], bus['Description']])",
        outputs["create.Arn"].as_str().unwrap()
    ));
    assert_eq!(seen, json!([bus, "ACTIVE", "orders, café"]));
    let requests = moto.requests();
    let calls: Vec<&Value> = requests
        .iter()
        .filter(|request| request["path"].as_str().is_some_and(|p| p.starts_with("/service/AWSEventsV2/")))
        .collect();
    assert!(calls.len() >= 5, "{calls:?}");
}

/// The shipped runbook from the incident write-up: the first PutBucketLogging fails because
/// the target bucket does not grant the log-delivery group; the onFailure branch grants it.
#[test]
fn s3_access_logging_runbook_recovers_through_its_failure_branch() {
    let Some(moto) = moto("s3_access_logging_runbook_recovers_through_its_failure_branch") else { return };
    let scratch = Scratch::new("aws-s3-logging");
    let bucket = unique("runbook-data");
    let logs = unique("runbook-logs");
    moto.boto3(&format!(
        "s3 = boto3.client('s3')\ns3.create_bucket(Bucket='{bucket}')\ns3.create_bucket(Bucket='{logs}')\nemit(True)"
    ));
    let path = project_root().join("runbooks/enable-s3-access-logging.yaml").display().to_string();
    let params = [format!("BucketName={bucket}"), format!("TargetBucket={logs}")];
    let params: Vec<&str> = params.iter().map(String::as_str).collect();

    // Rehearsal first: an offline dry-run shows both ways, changing nothing.
    let mut args = vec!["run", path.as_str(), "--dry-run"];
    for param in &params {
        args.extend(["-p", param]);
    }
    let dry = moto.runbook(&scratch, &args);
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    assert!(dry.stdout.contains("would call s3.PutBucketLogging"), "{}", dry.stdout);
    assert!(dry.stdout.contains("grantLogDelivery"), "{}", dry.stdout);

    let output = run(moto, &scratch, &path, &params);
    let outputs = assert_success(&output);
    let first = step(&output, "enableLogging");
    assert_eq!(first["status"], "Failed");
    assert!(first["error"].as_str().unwrap().contains("InvalidTargetBucketForLogging"), "{first}");
    assert_eq!(step(&output, "grantLogDelivery")["status"], "Success");
    assert_eq!(step(&output, "verifyLogging")["status"], "Success");
    assert!(outputs["readTargetAcl.OwnerId"].as_str().is_some_and(|id| !id.is_empty()), "{outputs}");

    let seen = moto.boto3(&format!(
        "s3 = boto3.client('s3')\n\
         logging = s3.get_bucket_logging(Bucket='{bucket}')['LoggingEnabled']\n\
         grants = sorted(g['Permission'] for g in s3.get_bucket_acl(Bucket='{logs}')['Grants'] if g['Grantee'].get('URI', '').endswith('LogDelivery'))\n\
         emit({{'target': logging['TargetBucket'], 'prefix': logging['TargetPrefix'], 'log_delivery': grants}})"
    ));
    assert_eq!(seen, json!({"target": logs, "prefix": "access-logs/", "log_delivery": ["READ_ACP", "WRITE"]}));
}

/// A read-only dry-run describes the instance for real, so the dry-run follows the path a
/// run would take, and sends nothing that could change it.
#[test]
fn read_only_dry_run_describes_for_real_and_stops_nothing() {
    let Some(moto) = moto("read_only_dry_run_describes_for_real_and_stops_nothing") else { return };
    let scratch = Scratch::new("aws-read-only");
    let instance = moto.boto3(
        "ec2 = boto3.client('ec2')\n\
         image = ec2.describe_images()['Images'][0]['ImageId']\n\
         emit(ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)['Instances'][0]['InstanceId'])",
    );
    let instance = instance.as_str().unwrap();
    let path = project_root().join("runbooks/stop-idle-instance.yaml").display().to_string();
    let parameter = format!("InstanceId={instance}");
    let before = moto.requests().len();
    let output = moto.runbook(&scratch, &["run", &path, "--dry-run=read-only", "-p", &parameter]);
    assert_eq!(output.code, 0, "{}\n{}", output.stdout, output.stderr);
    assert!(output.stdout.contains("called for real: HTTP 200"), "{}", output.stdout);
    assert!(output.stdout.contains(r#"outputs: {"State":"running"}"#), "{}", output.stdout);
    // The real state decided the branch: the way through the stop, not the other.
    assert!(output.stdout.contains("would set instances"), "{}", output.stdout);
    assert!(!output.stdout.contains("alreadyStopped"), "{}", output.stdout);
    let offline = moto.runbook(&scratch, &["run", &path, "--dry-run", "-p", &parameter]);
    assert!(
        offline.stdout.contains("alreadyStopped") && !offline.stdout.contains("called for real"),
        "{}",
        offline.stdout
    );

    let sent: Vec<Value> = moto.requests()[before..].to_vec();
    let operations: Vec<&str> = sent.iter().filter_map(|r| r["operation"].as_str()).collect();
    assert!(operations.contains(&"DescribeInstances"), "{operations:?}");
    for changing in ["StopInstances", "CreateTags", "TerminateInstances"] {
        assert!(!operations.contains(&changing), "a read-only dry-run sent {changing}: {operations:?}");
    }
    let state = moto.boto3(&format!(
        "emit(boto3.client('ec2').describe_instances(InstanceIds=['{instance}'])['Reservations'][0]['Instances'][0]['State']['Name'])"
    ));
    assert_eq!(state, "running");

    // And the run itself stops it.
    let output = run(moto, &scratch, &path, &[&parameter]);
    assert_success(&output);
    let seen = moto.boto3(&format!(
        "i = boto3.client('ec2').describe_instances(InstanceIds=['{instance}'])['Reservations'][0]['Instances'][0]\n\
         emit([i['State']['Name'], [t['Value'] for t in i.get('Tags', []) if t['Key'] == 'StoppedBy']])"
    ));
    assert_eq!(seen, json!(["stopped", ["runbook (idle)"]]));
}

#[test]
fn aws_errors_keep_their_code_and_message() {
    let Some(moto) = moto("aws_errors_keep_their_code_and_message") else { return };
    let scratch = Scratch::new("aws-errors");
    let path = scratch.runbook(
        "errors.yaml",
        r#"schemaVersion: '0.3'
mainSteps:
  - name: missing
    action: aws:executeAwsApi
    inputs:
      Service: ec2
      Api: DescribeInstances
      InstanceIds: [i-0123456789abcdef0]
"#,
    );
    let output = run(moto, &scratch, &path, &[]);
    assert_eq!(output.code, 4, "{}", output.stderr);
    let error = step(&output, "missing")["error"].as_str().unwrap().to_string();
    assert!(error.contains("(InvalidInstanceID.NotFound)"), "{error}");
    assert!(error.contains("DescribeInstances"), "{error}");
    assert!(error.contains("i-0123456789abcdef0"), "{error}");
}

/// `{{ssm:/name}}` parameter defaults come from Parameter Store; a SecureString is used but
/// never shown or journaled. `global:ACCOUNT_ID` and `global:AWS_PARTITION` come from STS.
#[test]
fn parameter_store_defaults_and_identity_globals() {
    let Some(moto) = moto("parameter_store_defaults_and_identity_globals") else { return };
    let scratch = Scratch::new("aws-ssm-defaults");
    let name = format!("/runbook/{}", unique("ami"));
    let secret_name = format!("/runbook/{}", unique("token"));
    let secret = "s3cr3t-token-value";
    let other_name = format!("/runbook/{}", unique("password"));
    let other_secret = "another-secret-value";
    moto.boto3(&format!(
        "ssm = boto3.client('ssm')\n\
         ssm.put_parameter(Name='{name}', Value='ami-0abc', Type='String')\n\
         ssm.put_parameter(Name='{secret_name}', Value='{secret}', Type='SecureString')\n\
         ssm.put_parameter(Name='{other_name}', Value='{other_secret}', Type='SecureString')\n\
         emit(True)"
    ));
    let path = scratch.runbook(
        "defaults.yaml",
        &format!(
            r#"schemaVersion: '0.3'
parameters:
  Ami: {{type: String, default: '{{{{ssm:{name}}}}}'}}
  Token: {{type: String, default: '{{{{ssm:{secret_name}}}}}'}}
  Role: {{type: String, default: 'arn:{{{{global:AWS_PARTITION}}}}:iam::{{{{global:ACCOUNT_ID}}}}:role/ops'}}
mainSteps:
  - name: echo
    action: aws:executeScript
    inputs:
      Runtime: python3.11
      Handler: h
      InputPayload: {{Ami: '{{{{ Ami }}}}', Token: '{{{{ Token }}}}', Role: '{{{{ Role }}}}'}}
      Script: |
        def h(events, context):
            assert events['Token'] == '{secret}', 'the script gets the real value'
            return {{'Ami': events['Ami'], 'Role': events['Role'], 'Token': events['Token']}}
    outputs:
      - {{Name: Ami, Selector: $.Payload.Ami, Type: String}}
      - {{Name: Role, Selector: $.Payload.Role, Type: String}}
      - {{Name: Token, Selector: $.Payload.Token, Type: String}}
  - name: readSecret
    action: aws:executeAwsApi
    inputs: {{Service: ssm, Api: GetParameter, Name: '{other_name}', WithDecryption: true}}
    outputs:
      - {{Name: Value, Selector: $.Parameter.Value, Type: String}}
outputs: [echo.Ami, echo.Role, echo.Token, readSecret.Value]
"#
        ),
    );
    let output = run(moto, &scratch, &path, &[]);
    let outputs = assert_success(&output);
    assert_eq!(outputs["echo.Ami"], "ami-0abc");
    assert_eq!(outputs["echo.Role"], "arn:aws:iam::123456789012:role/ops");
    assert_eq!(outputs["echo.Token"], "********");
    // A decrypted SecureString read by a step is a sensitive member of the model: redacted too.
    assert_eq!(outputs["readSecret.Value"], "********");
    assert!(!output.stdout.contains(secret) && !output.stderr.contains(secret));
    let mut journal_bytes = Vec::new();
    for entry in std::fs::read_dir(scratch.state()).unwrap() {
        journal_bytes.extend(std::fs::read(entry.unwrap().path()).unwrap_or_default());
    }
    assert!(!journal_bytes.is_empty());
    for secret in [secret, other_secret] {
        assert!(!output.stdout.contains(secret) && !output.stderr.contains(secret));
        assert!(!journal_bytes.windows(secret.len()).any(|w| w == secret.as_bytes()), "the journal holds {secret}");
    }
}

/// A script's boto3 reaches the same AWS as the engine: credentials, region and the
/// `--endpoint-url` given to the engine arrive in its environment.
#[test]
fn scripts_get_the_engines_credentials_region_and_endpoint() {
    let Some(moto) = moto("scripts_get_the_engines_credentials_region_and_endpoint") else { return };
    let scratch = Scratch::new("aws-script-env");
    let bucket = unique("runbook-script");
    let path = scratch.runbook(
        "script.yaml",
        r#"schemaVersion: '0.3'
parameters:
  Bucket: {type: String}
mainSteps:
  - name: createBucket
    action: aws:executeScript
    inputs:
      Runtime: python3.11
      Handler: h
      InputPayload: {Bucket: '{{ Bucket }}'}
      Script: |
        import os, boto3
        def h(events, context):
            boto3.client('s3').create_bucket(Bucket=events['Bucket'], CreateBucketConfiguration={'LocationConstraint': os.environ['AWS_REGION']})
            return {'Region': os.environ['AWS_REGION']}
    outputs:
      - {Name: Region, Selector: $.Payload.Region, Type: String}
outputs: [createBucket.Region]
"#,
    );
    let python = project_root().join(".venv/bin/python").display().to_string();
    let endpoint = moto.url.clone();
    // The endpoint only on the command line: the script can only know it from the engine.
    let output = moto.runbook_with(
        &scratch,
        &[("AWS_ENDPOINT_URL", None), ("RUNBOOK_PYTHON", Some(python.as_str()))],
        &[
            "run",
            &path,
            "--format",
            "json",
            "--endpoint-url",
            &endpoint,
            "--region",
            "eu-west-1",
            "-p",
            &format!("Bucket={bucket}"),
        ],
    );
    let outputs = assert_success(&output);
    assert_eq!(outputs["createBucket.Region"], "eu-west-1");
    let seen = moto.boto3(&format!(
        "emit([b['Name'] for b in boto3.client('s3').list_buckets()['Buckets'] if b['Name'] == '{bucket}'])"
    ));
    assert_eq!(seen, json!([bucket]));
}

/// The dedicated actions: a CloudFormation stack created and deleted, a Step Functions
/// execution run to its end, a command sent to an instance, an AMI made and deleted.
#[test]
fn stack_state_machine_command_and_image_actions() {
    let Some(moto) = moto("stack_state_machine_command_and_image_actions") else { return };
    let scratch = Scratch::new("aws-actions");
    let stack = unique("runbook-stack");
    let setup = moto.boto3(&format!(
        "import json\n\
         ec2 = boto3.client('ec2')\n\
         image = ec2.describe_images()['Images'][0]['ImageId']\n\
         instance = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)['Instances'][0]['InstanceId']\n\
         role = boto3.client('iam').create_role(RoleName='{stack}-sfn', AssumeRolePolicyDocument='{{}}')['Role']['Arn']\n\
         machine = boto3.client('stepfunctions').create_state_machine(name='{stack}-sm', roleArn=role, \
             definition=json.dumps({{'StartAt': 'Done', 'States': {{'Done': {{'Type': 'Pass', 'Result': {{'ok': True}}, 'End': True}}}}}}))['stateMachineArn']\n\
         emit({{'instance': instance, 'machine': machine}})"
    ));
    let path = scratch.runbook(
        "actions.yaml",
        r#"schemaVersion: '0.3'
parameters:
  Stack: {type: String}
  InstanceId: {type: String}
  Machine: {type: String}
mainSteps:
  - name: createStack
    action: aws:createStack
    inputs:
      StackName: '{{ Stack }}'
      TemplateBody: |
        Resources:
          Queue:
            Type: AWS::SQS::Queue
  - name: runMachine
    action: aws:executeStateMachine
    inputs:
      stateMachineArn: '{{ Machine }}'
      input: '{"incident": 42}'
    outputs:
      - {Name: Output, Selector: $.output, Type: String}
  - name: command
    action: aws:runCommand
    inputs:
      DocumentName: AWS-RunShellScript
      InstanceIds: ['{{ InstanceId }}']
      Parameters: {commands: [uptime]}
  - name: image
    action: aws:createImage
    inputs:
      InstanceId: '{{ InstanceId }}'
      ImageName: '{{ Stack }}-image'
      NoReboot: true
  - name: copy
    action: aws:copyImage
    inputs:
      SourceRegion: us-east-1
      SourceImageId: '{{ image.ImageId }}'
      ImageName: '{{ Stack }}-copy'
  - name: deleteImage
    action: aws:deleteImage
    inputs:
      ImageId: '{{ image.ImageId }}'
  - name: deleteCopy
    action: aws:deleteImage
    inputs:
      ImageId: '{{ copy.ImageId }}'
  - name: deleteStack
    action: aws:deleteStack
    inputs:
      StackName: '{{ Stack }}'
outputs: [createStack.StackStatus, runMachine.status, runMachine.Output, command.Status, command.CommandId, image.ImageId, image.ImageState]
"#,
    );
    let params = [
        format!("Stack={stack}"),
        format!("InstanceId={}", setup["instance"].as_str().unwrap()),
        format!("Machine={}", setup["machine"].as_str().unwrap()),
    ];
    let output = run(moto, &scratch, &path, &params.iter().map(String::as_str).collect::<Vec<_>>());
    let outputs = assert_success(&output);
    assert_eq!(outputs["createStack.StackStatus"], "CREATE_COMPLETE");
    assert_eq!(outputs["runMachine.status"], "SUCCEEDED");
    let machine_output: Value = serde_json::from_str(outputs["runMachine.Output"].as_str().unwrap()).unwrap();
    assert_eq!(machine_output, json!({"ok": true}));
    assert_eq!(outputs["command.Status"], "Success");
    assert_eq!(outputs["image.ImageState"], "available");
    let image = outputs["image.ImageId"].as_str().unwrap();
    let copy = outputs["copy.ImageId"].as_str().unwrap();
    assert_ne!(image, copy);
    assert_eq!(outputs["copy.ImageState"], "available");
    let command = outputs["command.CommandId"].as_str().unwrap();
    let seen = moto.boto3(&format!(
        "stacks = [s['StackStatus'] for s in boto3.client('cloudformation').list_stacks()['StackSummaries'] if s['StackName'] == '{stack}']\n\
         images = boto3.client('ec2').describe_images(Owners=['self'])['Images']\n\
         command = boto3.client('ssm').list_commands(CommandId='{command}')['Commands'][0]\n\
         emit({{'stacks': stacks, 'image_left': any(i['ImageId'] in ('{image}', '{copy}') for i in images), 'document': command['DocumentName']}})"
    ));
    assert_eq!(seen, json!({"stacks": ["DELETE_COMPLETE"], "image_left": false, "document": "AWS-RunShellScript"}));
}

/// The runbook's `assumeRole` is honoured: the engine asks STS for the role's credentials
/// and signs with them.
#[test]
fn assume_role_goes_through_sts() {
    let Some(moto) = moto("assume_role_goes_through_sts") else { return };
    let scratch = Scratch::new("aws-assume-role");
    let path = scratch.runbook(
        "role.yaml",
        r#"schemaVersion: '0.3'
assumeRole: '{{ AutomationAssumeRole }}'
parameters:
  AutomationAssumeRole: {type: String, default: 'arn:aws:iam::123456789012:role/runbook-automation'}
mainSteps:
  - name: whoAmI
    action: aws:executeAwsApi
    inputs: {Service: sts, Api: GetCallerIdentity}
    outputs:
      - {Name: Arn, Selector: $.Arn, Type: String}
outputs: [whoAmI.Arn]
"#,
    );
    let before = moto.requests().len();
    let outputs = assert_success(&run(moto, &scratch, &path, &[]));
    let arn = outputs["whoAmI.Arn"].as_str().unwrap();
    assert!(arn.starts_with("arn:aws:sts::123456789012:assumed-role/runbook-automation/"), "{arn}");
    let operations: Vec<String> =
        moto.requests()[before..].iter().filter_map(|r| r["operation"].as_str().map(str::to_string)).collect();
    assert!(operations.contains(&"AssumeRole".to_string()), "{operations:?}");
}

/// A server that answers the engine's requests in turn from `responses` (status, JSON body),
/// the last one for every request after, and counts them. Moto never throttles, so this
/// plays the throttled service.
fn throttling_server(responses: Vec<(u16, &'static str)>) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::sync::atomic::Ordering;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = count.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            // One request per connection is enough: read its head and body, answer, close.
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let index = seen.fetch_add(1, Ordering::SeqCst).min(responses.len() - 1);
            let (status, body) = responses[index];
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (url, count)
}

#[test]
fn throttling_and_server_errors_are_retried_before_the_attempt_fails() {
    let scratch = Scratch::new("aws-retry");
    let path = scratch.runbook(
        "retry.yaml",
        r#"schemaVersion: '0.3'
mainSteps:
  - name: read
    action: aws:executeAwsApi
    inputs: {Service: ssm, Api: GetParameter, Name: /app/colour}
    outputs:
      - {Name: Value, Selector: $.Parameter.Value, Type: String}
      - {Name: Retries, Selector: $.ResponseMetadata.RetryAttempts, Type: Integer}
"#,
    );
    let throttled = (400, r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#);
    let unavailable = (503, r#"{"__type":"ServiceUnavailable","message":"try later"}"#);
    let ok = (200, r#"{"Parameter":{"Name":"/app/colour","Type":"String","Value":"green","Version":3}}"#);
    let (url, count) = throttling_server(vec![throttled, unavailable, throttled, ok]);
    let output = runbook_against(&url, &scratch, &[], &["run", &path, "--format", "json"]);
    let outputs = assert_success(&output);
    assert_eq!(outputs["read.Value"], "green");
    assert_eq!(outputs["read.Retries"], 3);
    assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 4);

    // Always throttled: four tries, then the attempt fails with the service's code.
    let (url, count) = throttling_server(vec![throttled]);
    let output = runbook_against(&url, &scratch, &[], &["run", &path, "--format", "json"]);
    assert_eq!(output.code, 4);
    assert!(step(&output, "read")["error"].as_str().unwrap().contains("(ThrottlingException)"));
    assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 4);
    // A request that is wrong is not retried.
    let (url, count) = throttling_server(vec![(400, r#"{"__type":"ValidationException","message":"bad name"}"#)]);
    let output = runbook_against(&url, &scratch, &[], &["run", &path, "--format", "json"]);
    assert_eq!(output.code, 4);
    assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[test]
fn https_is_spoken_with_the_authorities_the_system_trusts() {
    let Some(moto) = moto("https_is_spoken_with_the_authorities_the_system_trusts") else { return };
    let front = moto.tls_front();
    let scratch = Scratch::new("https");
    let path = scratch.runbook(
        "whoami.yaml",
        "schemaVersion: '0.3'\n\
         outputs: [Who.Account]\n\
         mainSteps:\n  - name: Who\n    action: aws:executeAwsApi\n\
         \x20   inputs: {Service: sts, Api: GetCallerIdentity}\n\
         \x20   outputs:\n      - {Name: Account, Selector: $.Account, Type: String}\n",
    );
    let args = ["run", path.as_str(), "--format", "json", "--endpoint-url", front.url.as_str()];
    let authority = front.authority.to_str().unwrap();

    // Trusted through SSL_CERT_FILE, as the AWS CLI's users do behind a proxy: the call goes
    // through TLS to moto.
    let trusted = runbook_against(&moto.url, &scratch, &[("SSL_CERT_FILE", Some(authority))], &args);
    // Execution outputs are lists, as SSM gives them.
    assert_eq!(finished(&trusted)["outputs"]["Who.Account"], json!(["123456789012"]), "{}", trusted.stderr);

    // Not trusted: the handshake is refused, and the error says why in one line.
    let untrusted = runbook_against(&moto.url, &scratch, &[("SSL_CERT_FILE", None)], &args);
    let error = step(&untrusted, "Who")["error"].as_str().unwrap().to_owned();
    assert!(error.contains("invalid peer certificate: UnknownIssuer"), "{error}");
    assert!(!error.contains("ConnectorError {"), "a debug dump: {error}");
}

/// Every finished step visit of a run as `step:Status`, in order.
fn visits(output: &Output) -> Vec<String> {
    events(output)
        .into_iter()
        .filter(|event| event["event"] == "step_finished")
        .map(|event| format!("{}:{}", event["step"].as_str().unwrap(), event["status"].as_str().unwrap()))
        .collect()
}

/// The shipped EC2 drill against moto: a recovery that fails (injected) is rolled back, and
/// the instance runs again, as boto3 sees it; the drill as planned leaves it running too.
#[test]
fn the_ec2_drill_rolls_back_a_failed_recovery_and_the_instance_runs_again() {
    let Some(moto) = moto("the_ec2_drill_rolls_back_a_failed_recovery_and_the_instance_runs_again") else { return };
    let scratch = Scratch::new("aws-drill");
    let instance = moto.boto3(
        "ec2 = boto3.client('ec2')\n\
         image = ec2.describe_images(Owners=['amazon'])['Images'][0]['ImageId']\n\
         emit(ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)['Instances'][0]['InstanceId'])",
    );
    let instance = instance.as_str().unwrap();
    let path = project_root().join("runbooks/ec2-stop-recover-drill.yaml").display().to_string();
    let param = format!("InstanceId={instance}");
    let state = || {
        moto.boto3(&format!(
            "emit(boto3.client('ec2').describe_instances(InstanceIds=['{instance}'])['Reservations'][0]['Instances'][0]['State']['Name'])"
        ))
    };

    let mut args = vec!["run", path.as_str(), "--format", "json", "--poll-interval", "0.05", "-p", param.as_str()];
    args.extend(["--inject-failure", "recoverInstance"]);
    let failed = moto.runbook(&scratch, &args);
    assert_eq!(finished(&failed)["status"], "Failed", "{}\n{}", failed.stdout, failed.stderr);
    assert_eq!(
        visits(&failed),
        [
            "checkSteadyState:Success",
            "stopInstance:Success",
            "observe:Success",
            "recoverInstance:Failed",
            "undo:stopInstance:Success"
        ]
    );
    assert_eq!(state(), "running");
    let calls: Vec<String> =
        moto.requests().iter().filter_map(|r| r["operation"].as_str().map(str::to_owned)).collect();
    assert!(calls.iter().any(|call| call == "StartInstances"), "the undo started the instance: {calls:?}");

    let drilled = run(moto, &scratch, &path, &[&param]);
    assert_success(&drilled);
    assert_eq!(state(), "running");
}

/// The shipped game-day template against moto: detection fails (injected), and the flag is put
/// back as it was, as boto3 sees it.
#[test]
fn the_game_day_template_puts_the_flag_back_when_detection_fails() {
    let Some(moto) = moto("the_game_day_template_puts_the_flag_back_when_detection_fails") else { return };
    let scratch = Scratch::new("aws-game-day");
    let flag = format!("/{}", unique("game-day-flag"));
    let alarm = unique("app-errors");
    moto.boto3(&format!(
        "boto3.client('ssm').put_parameter(Name='{flag}', Value='none', Type='String')\n\
         cloudwatch = boto3.client('cloudwatch')\n\
         cloudwatch.put_metric_alarm(AlarmName='{alarm}', MetricName='Errors', Namespace='App', Statistic='Sum', \
         Period=60, EvaluationPeriods=1, Threshold=1, ComparisonOperator='GreaterThanOrEqualToThreshold')\n\
         cloudwatch.set_alarm_state(AlarmName='{alarm}', StateValue='OK', StateReason='steady')\n\
         emit(True)"
    ));
    let path = project_root().join("runbooks/game-day-template.yaml").display().to_string();
    let (flag_param, alarm_param) = (format!("FlagName={flag}"), format!("AlarmName={alarm}"));
    let args = [
        "run",
        path.as_str(),
        "--format",
        "json",
        "--poll-interval",
        "0.05",
        "-p",
        flag_param.as_str(),
        "-p",
        alarm_param.as_str(),
        "--inject-failure",
        "verifyDetected",
    ];
    let failed = moto.runbook(&scratch, &args);
    assert_eq!(finished(&failed)["status"], "Failed", "{}\n{}", failed.stdout, failed.stderr);
    assert_eq!(visits(&failed).last().map(String::as_str), Some("undo:injectFault:Success"));
    let seen = moto.boto3(&format!(
        "ssm = boto3.client('ssm')\n\
         parameter = ssm.get_parameter(Name='{flag}')['Parameter']\n\
         emit({{'value': parameter['Value'], 'version': parameter['Version']}})"
    ));
    // Set to the fault (version 2), then back (version 3).
    assert_eq!(seen, json!({"value": "none", "version": 3}));
}

/// The A record `name` and its plan marker `_plan.name` as boto3 sees them:
/// `{"A": [TTL, [values...]], "TXT": [TTL, [values...]]}`, values sorted, absent ones left out.
fn dns_records(moto: &Moto, zone: &str, name: &str) -> Value {
    moto.boto3(&format!(
        "sets = boto3.client('route53').list_resource_record_sets(HostedZoneId='{zone}')['ResourceRecordSets']\n\
         emit({{s['Type']: [s['TTL'], sorted(v['Value'] for v in s['ResourceRecords'])] for s in sets \
         if (s['Name'], s['Type']) in [('{name}', 'A'), ('_plan.{name}', 'TXT')]}})"
    ))
}

/// The fencing token of the named lock a run was granted, from its `control` event.
fn fencing_token(output: &Output) -> u64 {
    events(output)
        .into_iter()
        .find(|event| event["event"] == "control" && event["control"] == "lock")
        .and_then(|event| {
            let text = event["text"].as_str()?.to_owned();
            text.split("token ").nth(1)?.split(',').next()?.parse().ok()
        })
        .unwrap_or_else(|| panic!("no lock granted\n{}\n{}", output.stdout, output.stderr))
}

/// The shipped DNS enactor against moto (issue 16): plans 1 and 2 apply under the zone's lock,
/// plan 1 is refused afterwards and the record keeps plan 2's addresses, and `runbook undo` of
/// plan 2's execution puts plan 1's addresses back, as boto3 sees them.
#[test]
fn the_dns_enactor_refuses_a_stale_plan_and_undo_puts_the_previous_plan_back() {
    let Some(moto) = moto("the_dns_enactor_refuses_a_stale_plan_and_undo_puts_the_previous_plan_back") else {
        return;
    };
    let scratch = Scratch::new("aws-dns-plan");
    let domain = format!("{}.example.com", unique("dns-plan"));
    let zone = moto.hosted_zone(&domain);
    let name = format!("api.{domain}.");
    let path = project_root().join("runbooks/dns-apply-plan.yaml").display().to_string();
    let apply = |plan: u32, values: &str| {
        let params = [
            format!("HostedZoneId={zone}"),
            format!("RecordName={name}"),
            format!("PlanNumber={plan}"),
            format!("Values={values}"),
        ];
        run(moto, &scratch, &path, &params.iter().map(String::as_str).collect::<Vec<_>>())
    };

    let first = apply(1, "192.0.2.1,192.0.2.2");
    assert_eq!(assert_success(&first)["decide.LastPlan"], 0);
    let first_token = fencing_token(&first);
    assert_eq!(
        dns_records(moto, &zone, &name),
        json!({"A": [60, ["192.0.2.1", "192.0.2.2"]], "TXT": [60, [format!("\"plan=1 token={first_token}\"")]]})
    );

    let second = apply(2, "198.51.100.7");
    assert_eq!(assert_success(&second)["decide.LastPlan"], 1);
    let second_token = fencing_token(&second);
    assert!(second_token > first_token, "tokens only grow: {first_token}, then {second_token}");
    let plan_two = json!({"A": [60, ["198.51.100.7"]], "TXT": [60, [format!("\"plan=2 token={second_token}\"")]]});
    assert_eq!(dns_records(moto, &zone, &name), plan_two);

    // The stale plan: refused before anything is changed, naming both plans.
    let stale = apply(1, "192.0.2.1,192.0.2.2");
    assert_eq!(stale.code, 4, "{}\n{}", stale.stdout, stale.stderr);
    assert_eq!(finished(&stale)["status"], "Failed");
    assert_eq!(visits(&stale), ["readRecord:Success", "readMarker:Success", "decide:Failed"]);
    let error = step(&stale, "decide")["error"].as_str().unwrap().to_owned();
    assert!(error.contains(&format!("plan 1 is not newer than plan 2, the last one applied to {name}")), "{error}");
    assert_eq!(dns_records(moto, &zone, &name), plan_two);

    // Plan 2 undone on demand: plan 1's addresses again, under a marker naming plan 1 and the
    // token of the execution that wrote it last (plan 2's).
    let id = finished(&second)["execution_id"].as_str().unwrap().to_owned();
    let undo = moto.runbook(&scratch, &["undo", &id, "--format", "json"]);
    assert_eq!(undo.code, 0, "{}\n{}", undo.stdout, undo.stderr);
    assert_eq!(step(&undo, "undo:applyPlan")["status"], "Success");
    assert_eq!(
        dns_records(moto, &zone, &name),
        json!({"A": [60, ["192.0.2.1", "192.0.2.2"]], "TXT": [60, [format!("\"plan=1 token={second_token}\"")]]})
    );
}

/// The shipped DNS override against moto: the record answers the known-good addresses, and
/// `runbook undo` puts it back as it was (addresses and TTL); a verification that fails on a
/// record that did not exist rolls back by deleting it.
#[test]
fn the_dns_override_is_verified_and_undo_puts_the_record_back() {
    let Some(moto) = moto("the_dns_override_is_verified_and_undo_puts_the_record_back") else { return };
    let scratch = Scratch::new("aws-dns-override");
    let domain = format!("{}.example.com", unique("dns-override"));
    let zone = moto.hosted_zone(&domain);
    let name = format!("api.{domain}.");
    moto.boto3(&format!(
        "boto3.client('route53').change_resource_record_sets(HostedZoneId='{zone}', ChangeBatch={{'Changes': [\
         {{'Action': 'UPSERT', 'ResourceRecordSet': {{'Name': '{name}', 'Type': 'A', 'TTL': 300, \
         'ResourceRecords': [{{'Value': '203.0.113.5'}}]}}}}]}})\n\
         emit(True)"
    ));
    let path = project_root().join("runbooks/dns-override.yaml").display().to_string();
    let (zone_param, name_param) = (format!("HostedZoneId={zone}"), format!("RecordName={name}"));
    let values = "Values=192.0.2.50,192.0.2.51";

    let overridden = run(moto, &scratch, &path, &[&zone_param, &name_param, values]);
    let outputs = assert_success(&overridden);
    assert_eq!(outputs["prepare.PreviousValues"], json!(["203.0.113.5"]));
    assert_eq!(
        visits(&overridden),
        ["readRecord:Success", "prepare:Success", "override:Success", "waitInSync:Success", "verifyRecord:Success"]
    );
    assert_eq!(dns_records(moto, &zone, &name), json!({"A": [60, ["192.0.2.50", "192.0.2.51"]]}));

    let id = finished(&overridden)["execution_id"].as_str().unwrap().to_owned();
    let undo = moto.runbook(&scratch, &["undo", &id, "--format", "json"]);
    assert_eq!(undo.code, 0, "{}\n{}", undo.stdout, undo.stderr);
    assert_eq!(step(&undo, "undo:override")["status"], "Success");
    assert_eq!(dns_records(moto, &zone, &name), json!({"A": [300, ["203.0.113.5"]]}));

    // A record that did not exist, and a verification that fails: the rollback deletes it.
    let other = format!("www.{domain}.");
    let other_param = format!("RecordName={other}");
    let args = [
        "run",
        path.as_str(),
        "--format",
        "json",
        "--poll-interval",
        "0.05",
        "-p",
        zone_param.as_str(),
        "-p",
        other_param.as_str(),
        "-p",
        values,
        "--inject-failure",
        "verifyRecord",
    ];
    let failed = moto.runbook(&scratch, &args);
    assert_eq!(finished(&failed)["status"], "Failed", "{}\n{}", failed.stdout, failed.stderr);
    assert_eq!(visits(&failed).last().map(String::as_str), Some("undo:override:Success"));
    assert_eq!(dns_records(moto, &zone, &other), json!({}));
}
