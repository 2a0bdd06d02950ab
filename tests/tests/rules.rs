//! One small broken runbook per diagnostic code, with the exact code, line and column
//! expected, and bad input of every kind: never a panic, always a diagnostic.

use runbook::diagnostic::Code;
use runbook::document::{self, Format};
use runbook::validate::{self, Config, Supplied};

/// Validates YAML `text` and returns every finding as `(code, line, column)`.
fn findings(text: &str, parameters: Option<&[(&str, &str)]>) -> Vec<(String, usize, usize)> {
    let config = Config {
        parameters: parameters
            .map(|values| values.iter().map(|(n, v)| (n.to_string(), Supplied::Text(v.to_string()))).collect()),
    };
    // Whole, and step by step as a large document is validated: the same findings.
    let [mut validated, step_by_step] = [false, true].map(|step_by_step| {
        let bytes = text.as_bytes().to_vec();
        validate::load_as("case.yaml".into(), bytes, Some(Format::Yaml), step_by_step).validate(&config)
    });
    assert_eq!(validated.diagnostics, step_by_step.diagnostics, "step by step, for:\n{text}");
    assert_eq!(format!("{:?}", validated.runbook), format!("{:?}", step_by_step.runbook));
    runbook::plan::check(&mut validated);
    validated
        .diagnostics
        .iter()
        .map(|d| {
            let location = d.location.map_or((0, 0), |l| (l.line, l.column));
            (d.code.as_str().to_owned(), location.0, location.1)
        })
        .collect()
}

fn check(text: &str, expected: &[(&str, usize, usize)]) {
    let actual = findings(text, None);
    let expected: Vec<_> = expected.iter().map(|(c, l, col)| (c.to_string(), *l, *col)).collect();
    if std::env::var_os("RULES_PRINT").is_some() && actual != expected {
        eprintln!("MISMATCH\n{text}\n  actual {actual:?}\n  expected {expected:?}");
        return;
    }
    assert_eq!(actual, expected, "for:\n{text}");
}

fn check_with(text: &str, parameters: &[(&str, &str)], expected: &[(&str, usize, usize)]) {
    let actual = findings(text, Some(parameters));
    let expected: Vec<_> = expected.iter().map(|(c, l, col)| (c.to_string(), *l, *col)).collect();
    if std::env::var_os("RULES_PRINT").is_some() && actual != expected {
        eprintln!("MISMATCH\n{text}\n  actual {actual:?}\n  expected {expected:?}");
        return;
    }
    assert_eq!(actual, expected, "for:\n{text}\nwith {parameters:?}");
}

const HEAD: &str = "schemaVersion: '0.3'\n";

fn doc(body: &str) -> String {
    format!("{HEAD}{body}")
}

#[test]
fn a_valid_runbook_has_no_findings() {
    check(
        &doc(
            "parameters:\n  Name:\n    type: String\nmainSteps:\n  - name: wait\n    action: aws:sleep\n    inputs:\n      Duration: PT1S\n",
        ),
        &[],
    );
}

#[test]
fn loading() {
    check("a: [1, 2\n", &[("parse-error", 2, 1)]);
    check("", &[("empty-document", 1, 1)]);
    check(&doc("mainSteps: []\nmainSteps: []\n"), &[("duplicate-key", 3, 1)]);
    check(&"[".repeat(200), &[("too-deep", 1, 129)]);
    // saphyr refuses flow nesting past 255 on its own, before the builder's limit is reached.
    check(&"[".repeat(500), &[("parse-error", 1, 256)]);
    let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    for level in 1..8 {
        let prev = level - 1;
        let refs = vec![format!("*l{prev}"); 10].join(", ");
        bomb.push_str(&format!("l{level}: &l{level} [{refs}]\n").replace("*l0", "*a"));
    }
    assert_eq!(findings(&bomb, None)[0].0, "alias-budget");
    let big = doc(&format!(
        "description: {}\nmainSteps:\n  - name: s\n    action: aws:sleep\n    inputs: {{Duration: PT1S}}\n",
        "x".repeat(70_000)
    ));
    check(&big, &[("document-too-large", 1, 1)]);
    // YAML that PyYAML reads though YAML 1.2 does not loads, with a warning at the original
    // column, and what follows keeps its place; YAML that PyYAML refuses gets a warning.
    check(
        &doc(
            "description: \"Waits,\nthen ends.\"\nmainSteps:\n  - {name: s, action: aws:sleep, inputs: {Duration: PT1S}}\n",
        ),
        &[("yaml-leniency", 3, 1)],
    );
    check(
        &doc("mainSteps:\n  - name: s\n    action: aws:sleep\n    inputs: {\n      \"Duration\": \"PT1S\"\n    }\n"),
        &[("yaml-leniency", 7, 5)],
    );
    check(
        &doc(
            "mainSteps:\n  - name: s\n    action: aws:sleep\n    inputs: {\n\"Duration\": \"PT1S\"\n}\n    retries: 3\n",
        ),
        &[("yaml-leniency", 6, 1), ("unknown-step-key", 8, 5)],
    );
    check(
        &doc("x-note: {text: Go ahead?}\nmainSteps:\n  - {name: s, action: aws:sleep, inputs: {Duration: PT1S}}\n"),
        &[("yaml-ssm-refuses", 2, 24)],
    );
}

#[test]
fn shape_rules_from_the_schema() {
    let step = "mainSteps:\n  - name: s\n    action: aws:sleep\n    inputs: {Duration: PT1S}\n";
    check(&format!("schemaVersion: 0.3\n{step}"), &[("schema-version", 1, 16)]);
    check(&format!("{HEAD}mainSteps: []\n"), &[("missing-main-steps", 2, 12)]);
    check(HEAD, &[("missing-main-steps", 1, 1)]);
    check(&doc("mainSteps:\n  - name: s\n    action: aws:sleep\n"), &[("missing-step-property", 3, 5)]);
    check(
        &doc("mainSteps:\n  - name: bad-name\n    action: aws:sleep\n    inputs: {Duration: PT1S}\n"),
        &[("step-name", 3, 11)],
    );
    check(&format!("{HEAD}colour: red\n{step}"), &[("unknown-key", 2, 1)]);
    check(&format!("{HEAD}x-owner: team\n{step}"), &[]);
    check(
        &doc("mainSteps:\n  - name: s\n    action: aws:sleep\n    inputs: {Duration: PT1S}\n    retries: 3\n"),
        &[("unknown-step-key", 6, 5)],
    );
    check(&doc(&format!("parameters:\n  P:\n    type: Strin\n{step}")), &[("parameter-definition", 4, 11)]);
    check(&doc(&format!("variables:\n  V:\n    type: Number\n{step}")), &[("variable-definition", 4, 11)]);
    check(&doc(&format!("files:\n  a.py:\n    checksums: {{sha256: abc}}\n{step}")), &[("files-definition", 4, 25)]);
    check(
        &doc(
            "mainSteps:\n  - name: s\n    action: aws:sleep\n    inputs: {Duration: PT1S}\n    outputs:\n      - {Name: x}\n",
        ),
        &[("step-output-definition", 7, 9)],
    );
    check(
        &doc("mainSteps:\n  - name: s\n    action: aws:changeInstanceState\n    inputs: {InstanceIds: [i-1]}\n"),
        &[("action-input", 5, 13)],
    );
    check(
        &doc("mainSteps:\n  - name: s\n    action: aws:sleep\n    inputs: {Duration: PT1S}\n    maxAttempts: many\n"),
        &[("schema", 6, 18)],
    );
}

#[test]
fn lenient_where_aws_is_lenient() {
    check(
        &doc(
            "mainSteps:\n  - name: s\n    action: aws:sleep\n    inputs: {Duration: PT1S}\n    isEnd: 'true'\n    isCritical: 'False'\n    timeoutSeconds: '600'\n    maxAttempts: '3'\n",
        ),
        &[],
    );
}

#[test]
fn step_rules() {
    let sleep = "    action: aws:sleep\n    inputs: {Duration: PT1S}\n";
    check(&doc(&format!("mainSteps:\n  - name: a\n{sleep}  - name: a\n{sleep}")), &[("duplicate-step-name", 6, 11)]);
    check(
        &doc("mainSteps:\n  - name: a\n    action: aws:runShellScript\n    inputs: {}\n"),
        &[("unknown-action", 4, 13)],
    );
    check(
        &doc("mainSteps:\n  - name: a\n    action: aws:putServerUpgradeMetrics\n    inputs: {}\n"),
        &[("internal-action", 4, 13)],
    );
    check(&format!("{HEAD}templateInformation: x\nmainSteps:\n  - name: a\n{sleep}"), &[("change-template-key", 2, 1)]);
    check(&doc(&format!("mainSteps:\n  - name: a\n{sleep}    nextStep: b\n")), &[("unknown-step", 6, 15)]);
    check(&doc(&format!("mainSteps:\n  - name: a\n{sleep}    onFailure: stop\n")), &[("on-failure-value", 6, 16)]);
    check(&doc(&format!("mainSteps:\n  - name: a\n{sleep}    onCancel: Continue\n")), &[("on-cancel-value", 6, 15)]);
    check(
        &doc(&format!("mainSteps:\n  - name: a\n{sleep}    onCancel: step:b\n  - name: b\n{sleep}")),
        &[("on-cancel-target", 6, 15)],
    );
    check(
        &doc(
            "variables:\n  V: {type: String, default: x}\nmainSteps:\n  - name: a\n    action: aws:updateVariable\n    inputs: {Name: 'variable:V', Value: y}\n    onCancel: Abort\n",
        ),
        &[("on-cancel-not-allowed", 8, 5)],
    );
    check(
        &doc(&format!("mainSteps:\n  - name: a\n{sleep}    timeoutSeconds: 700000\n")),
        &[("timeout-above-maximum", 6, 21)],
    );
    check(
        &doc(
            "mainSteps:\n  - name: a\n    action: aws:executeAwsApi\n    inputs: {Service: ec2, Api: DescribeInstances}\n    outputs:\n      - {Name: x, Selector: '$.a[*]', Type: String}\n",
        ),
        &[("selector-syntax", 7, 29)],
    );
}

#[test]
fn branch_rules() {
    let tail = "  - name: b\n    action: aws:sleep\n    inputs: {Duration: PT1S}\n";
    let branch = |choices: &str| {
        doc(&format!("mainSteps:\n  - name: a\n    action: aws:branch\n    inputs:\n      Choices:\n{choices}{tail}"))
    };
    check(&branch("        - {NextStep: b, Variable: x, StringEquals: y}\n"), &[]);
    check(&branch("        - {NextStep: b, Variable: x, StringIs: y}\n"), &[("branch-operator", 7, 38)]);
    check(&branch("        - {NextStep: b, Or: [{Variable: x, StringEquals: y}]}\n"), &[("branch-structure", 7, 29)]);
    check(&branch("        - {Variable: x, StringEquals: y}\n"), &[("branch-structure", 7, 11)]);
    check(&branch("        - {NextStep: b, Not: [{Variable: x, StringEquals: y}]}\n"), &[("branch-structure", 7, 30)]);
    check(
        &branch("        - {NextStep: b, Variable: x, StringEquals: y, StartsWith: z}\n"),
        &[("branch-structure", 7, 11)],
    );
    check(&branch("        - {NextStep: b, Variable: x, NumericEquals: many}\n"), &[("branch-structure", 7, 53)]);
    check(
        &branch(
            "        - {NextStep: b, And: [{NextStep: b, Variable: x, StringEquals: y}, {Variable: x, BooleanEquals: true}]}\n",
        ),
        &[("branch-structure", 7, 32)],
    );
    check(&branch("        - {NextStep: c, Variable: x, StringEquals: y}\n"), &[("unknown-step", 7, 22)]);
}

#[test]
fn reference_rules() {
    let step = |inputs: &str| {
        doc(&format!(
            "parameters:\n  Id: {{type: String}}\nmainSteps:\n  - name: a\n    action: aws:executeAwsApi\n    inputs: {{Service: ec2, Api: Y, {inputs}}}\n"
        ))
    };
    check(&step("A: '{{ Id }}'"), &[("aws-operation", 7, 33)]);
    check(&step("A: '{{ Idd }}'"), &[("aws-operation", 7, 33), ("undeclared-parameter", 7, 39)]);
    check(&step("A: 'x{{ssm:/a/b}}'"), &[("aws-operation", 7, 33), ("ssm-reference-outside-default", 7, 39)]);
    check(&step("A: '{{ nowhere.Out }}'"), &[("aws-operation", 7, 33), ("unknown-step-reference", 7, 39)]);
    check(&step("A: '{{ a.Out }}'"), &[("aws-operation", 7, 33), ("unknown-output", 7, 39)]);
    check(&step("A: '{{ variable:V }}'"), &[("aws-operation", 7, 33), ("unknown-variable", 7, 39)]);
    check(&step("A: '{{ global:ACCOUNT }}'"), &[("aws-operation", 7, 33), ("unknown-system-variable", 7, 39)]);
    check(
        &step("A: '{{ automation:DOCUMENT_NAME }}'"),
        &[("aws-operation", 7, 33), ("unknown-system-variable", 7, 39)],
    );
    check(&step("'{{ Id }}': x"), &[("aws-operation", 7, 33), ("templated-key", 7, 36)]);
    check(&step("Script: \"awk '{{print $2}}' && echo {{{}}}\""), &[("aws-operation", 7, 33)]);
    check(
        &doc(
            "parameters:\n  Image: {type: String, default: '{{ssm:/aws/ami}}'}\n  Role: {type: String, default: 'arn:{{global:AWS_PARTITION}}:{{ Image }}'}\nmainSteps:\n  - name: a\n    action: aws:sleep\n    inputs: {Duration: PT1S}\n",
        ),
        &[],
    );
    check(
        &format!(
            "{HEAD}assumeRole: '{{{{ssm:/role}}}}'\nmainSteps:\n  - name: a\n    action: aws:sleep\n    inputs: {{Duration: PT1S}}\n"
        ),
        &[("ssm-reference-outside-default", 2, 13)],
    );
    check(
        &doc(
            "outputs: [a.Missing, nostep.X, bad]\nmainSteps:\n  - name: a\n    action: aws:executeScript\n    inputs: {Runtime: python3.11, Handler: h, Script: x}\n",
        ),
        &[("unknown-document-output", 2, 11), ("unknown-document-output", 2, 22), ("unknown-document-output", 2, 32)],
    );
}

#[test]
fn action_rules() {
    let one = |action: &str, inputs: &str| {
        doc(&format!("mainSteps:\n  - name: a\n    action: {action}\n    inputs: {inputs}\n"))
    };
    check(&one("aws:runCommand", "{DocumentName: AWS-RunShellScript}"), &[("run-command-targets", 5, 13)]);
    let ids: Vec<String> = (0..51).map(|i| format!("i-{i}")).collect();
    check(
        &one("aws:runCommand", &format!("{{DocumentName: D, InstanceIds: [{}]}}", ids.join(", "))),
        &[("run-command-targets", 5, 44)],
    );
    check(
        &doc(
            "parameters:\n  Cmds: {type: StringMap}\nmainSteps:\n  - name: a\n    action: aws:runCommand\n    inputs: {DocumentName: D, InstanceIds: [i-1], Parameters: {commands: '{{ Cmds }}'}}\n",
        ),
        &[("run-command-input-type", 7, 74)],
    );
    check(
        &one("aws:executeScript", "{Runtime: python3.11, Handler: h, Attachment: a.zip}"),
        &[("missing-attachment", 5, 59)],
    );
    // A parameter pasted into a script's source runs as code when it holds Python; once per
    // name, with the InputPayload form as help.
    check(
        &doc(
            "parameters:\n  Name: {type: String}\nmainSteps:\n  - name: a\n    action: aws:executeScript\n    inputs: {Runtime: python3.11, Handler: h, Script: \"print('{{ Name }}{{ Name }}{{ global:REGION }}')\"}\n",
        ),
        &[("script-substitution", 7, 55)],
    );
    // onFailure on a loop is not taken when a body step fails (AWS semantics): a warning that
    // says where to put it; Abort (the default) says nothing.
    check(
        &doc(
            "mainSteps:\n  - name: l\n    action: aws:loop\n    onFailure: Continue\n    inputs:\n      MaxIterations: 2\n      \
             LoopCondition: {Variable: '{{ l.CurrentIteration }}', NumericLesser: 3}\n      Steps:\n        \
             - {name: body, action: aws:sleep, inputs: {Duration: PT0S}}\n  - {name: cleanup, action: aws:sleep, inputs: {Duration: PT0S}}\n",
        ),
        &[("loop-on-failure", 5, 16)],
    );
    // x-undo: a step that exists, not on a loop, not a loop or a branch; an undo of its own is
    // checked as a step is (its action, its references).
    check(
        &doc("mainSteps:\n  - name: a\n    action: aws:sleep\n    inputs: {Duration: PT0S}\n    x-undo: step:bb\n\
             \x20 - name: b\n    action: aws:sleep\n    inputs: {Duration: PT0S}\n    x-undo: {action: aws:sleeep, inputs: {}}\n\
             \x20 - name: c\n    action: aws:sleep\n    inputs: {Duration: PT0S}\n    x-undo: {action: aws:branch, inputs: {}}\n\
             \x20 - name: d\n    action: aws:sleep\n    inputs: {Duration: PT0S}\n    \
             x-undo: {action: aws:sleep, inputs: {Duration: '{{ nope.Out }}'}}\n\
             \x20 - name: e\n    action: aws:sleep\n    inputs: {Duration: PT0S}\n    x-undo: step:b\n"),
        &[("undo", 6, 13), ("unknown-action", 10, 22), ("undo", 14, 13), ("unknown-step-reference", 18, 52)],
    );
    // x-locks: names that are the same in every store, from what exists before the first step.
    check(
        &doc(
            "parameters:\n  Zone: {type: String}\n  Key: {type: String, x-secret: true}\nx-locks:\n  - 'dns/{{ Zone }}'\n  - 'dns zone'\n  - {name: '/{{ Zone }}'}\n  \
             - 'dns/{{ a.Out }}'\n  - 'fence/{{ automation:FENCING_TOKEN }}'\n  - 'dns/{{ Zome }}'\n  - 'db/{{ Key }}'\n\
             mainSteps:\n  - name: a\n    action: aws:sleep\n    inputs: {Duration: PT0S}\n",
        ),
        &[
            ("lock-name", 7, 5),
            ("lock-name", 8, 5),
            ("lock-name", 9, 5),
            ("unknown-output", 9, 5),
            ("lock-name", 10, 5),
            ("undeclared-parameter", 11, 5),
            ("lock-name", 12, 5),
        ],
    );
    check(&one("aws:approve", "{Approvers: [a], MinRequiredApprovals: 2}"), &[("approvers-count", 5, 52)]);
    check(&one("aws:sleep", "{Duration: PT8D}"), &[("sleep-duration", 5, 24)]);
    check(&one("aws:sleep", "{Duration: soon}"), &[("sleep-duration", 5, 24)]);
    check(&one("aws:sleep", "{Duration: 'PT{{ Wait }}S'}"), &[("undeclared-parameter", 5, 24)]);
    check(&one("aws:sleep", "{Duration: PT0.5S}"), &[]);
    check(
        &one("aws:createStack", "{StackName: s, TemplateBody: x, TemplateURL: y}"),
        &[("create-stack-template", 5, 13)],
    );
    check(
        &one("aws:executeAutomation", "{DocumentName: d, Targets: [], TargetParameterName: p, TargetMaps: []}"),
        &[("execute-automation-targets", 5, 80)],
    );
    check(
        &one("aws:createTags", "{ResourceType: Parameter, ResourceIds: [a, b], Tags: []}"),
        &[("create-tags-resources", 5, 52)],
    );
    check(
        &doc(
            "variables:\n  V: {type: Integer, default: 1}\nmainSteps:\n  - name: a\n    action: aws:updateVariable\n    inputs: {Name: 'variable:V', Value: text}\n",
        ),
        &[("update-variable", 7, 41)],
    );
    check(&one("aws:updateVariable", "{Name: 'variable:Nope', Value: x}"), &[("update-variable", 5, 20)]);
    check(
        &doc(
            "parameters:\n  N: {type: Integer, default: 'ten'}\nmainSteps:\n  - name: a\n    action: aws:sleep\n    inputs: {Duration: PT1S}\n",
        ),
        &[("parameter-default-type", 3, 31)],
    );
    check(
        &doc(
            "parameters:\n  P: {type: String, allowedPattern: '(unclosed'}\nmainSteps:\n  - name: a\n    action: aws:sleep\n    inputs: {Duration: PT1S}\n",
        ),
        &[("allowed-pattern", 3, 37)],
    );
}

#[test]
fn loop_rules() {
    let body = "      Steps:\n        - name: inner\n          action: aws:sleep\n          inputs: {Duration: PT1S}\n";
    let looped =
        |extra: &str| doc(&format!("mainSteps:\n  - name: l\n    action: aws:loop\n    inputs:\n{extra}{body}"));
    check(&looped("      Iterators: [a, b]\n"), &[]);
    check(&looped(""), &[("loop-structure", 6, 7)]);
    check(
        &looped("      Iterators: [a]\n      LoopCondition: {Variable: x, StringEquals: y}\n"),
        &[("loop-structure", 6, 7)],
    );
    let many: Vec<String> = (0..101).map(|i| format!("'{i}'")).collect();
    check(&looped(&format!("      Iterators: [{}]\n", many.join(", "))), &[("loop-limit", 6, 18)]);
    check(&looped("      Iterators: [a]\n      MaxIterations: 101\n"), &[("loop-limit", 7, 22)]);
    check(&format!("{}    onCancel: Abort\n", looped("      Iterators: [a]\n")), &[("on-cancel-not-allowed", 11, 5)]);
    check(
        &doc(
            "mainSteps:\n  - name: l\n    action: aws:loop\n    inputs:\n      Iterators: [a]\n      Steps:\n        - name: l2\n          action: aws:loop\n          inputs:\n            Iterators: [b]\n            Steps:\n              - {name: x, action: aws:sleep, inputs: {Duration: PT1S}}\n",
        ),
        &[("nested-loop", 9, 19)],
    );
    check(
        &doc(
            "mainSteps:\n  - name: l\n    action: aws:loop\n    inputs:\n      Iterators: [a]\n      Steps:\n        - {name: inner, action: aws:sleep, inputs: {Duration: 'PT{{ Loop.CurrentIteration }}S'}}\n  - name: out\n    action: aws:sleep\n    inputs: {Duration: PT1S}\n    nextStep: inner\n",
        ),
        &[("unknown-step", 12, 15)],
    );
}

#[test]
fn graph_rules() {
    // V11, with the step that closes the circle.
    check(
        &doc(
            "mainSteps:\n  - name: a\n    action: aws:sleep\n    inputs: {Duration: PT1S}\n  - name: b\n    action: aws:sleep\n    inputs: {Duration: PT1S}\n    nextStep: a\n",
        ),
        &[("cycle", 9, 15)],
    );
    check(
        &doc(
            "mainSteps:\n  - name: a\n    action: aws:sleep\n    inputs: {Duration: PT1S}\n    isEnd: true\n  - name: b\n    action: aws:sleep\n    inputs: {Duration: PT1S}\n",
        ),
        &[("unreachable-step", 7, 11)],
    );
    check(
        &doc(
            "mainSteps:\n  - name: a\n    action: aws:sleep\n    inputs: {Duration: PT1S}\n    onFailure: step:b\n  - name: b\n    action: aws:sleep\n    inputs: {Duration: PT1S}\n",
        ),
        &[("critical-failure-jump", 6, 16)],
    );
    check(
        &doc(
            "mainSteps:\n  - name: a\n    action: aws:executeScript\n    inputs: {Runtime: python3.11, Handler: h, Script: x}\n    outputs: [{Name: N, Selector: $.Payload, Type: Integer}]\n    onFailure: Continue\n  - name: b\n    action: aws:sleep\n    inputs: {Duration: 'PT{{ a.N }}S'}\n",
        ),
        &[("output-may-be-unset", 10, 24)],
    );
    check(
        &doc(
            "parameters:\n  A: {type: String, default: '{{ B }}'}\n  B: {type: String, default: 'x-{{ A }}'}\nmainSteps:\n  - name: a\n    action: aws:sleep\n    inputs: {Duration: PT1S}\n",
        ),
        &[("parameter-default-cycle", 3, 30)],
    );
}

#[test]
fn parameter_value_rules() {
    let text = doc(
        "parameters:\n  Name: {type: String, allowedPattern: '^[a-z]+$', maxChars: 4, allowedValues: [abc, abcd, ABC]}\n  Ids: {type: StringList, default: []}\n  Count: {type: Integer, default: 1}\nmainSteps:\n  - name: a\n    action: aws:sleep\n    inputs: {Duration: PT1S}\n",
    );
    check_with(&text, &[("Name", "abc")], &[]);
    check_with(&text, &[], &[("missing-parameter", 3, 3)]);
    check_with(&text, &[("Name", "abc"), ("Nam", "x")], &[("undeclared-parameter-value", 0, 0)]);
    check_with(&text, &[("Name", "abc"), ("Count", "1.5")], &[("parameter-type", 5, 3)]);
    check_with(&text, &[("Name", "xyz")], &[("parameter-allowed-values", 3, 80)]);
    check_with(&text, &[("Name", "ABC")], &[("parameter-pattern", 3, 40)]);
    check_with(&text, &[("Name", "abcde")], &[("parameter-length", 3, 62), ("parameter-allowed-values", 3, 80)]);
}

#[test]
fn api_actions_are_checked_against_the_aws_models() {
    let step = |inputs: &str| {
        doc(&format!("mainSteps:\n  - name: call\n    action: aws:executeAwsApi\n    inputs:\n{inputs}"))
    };
    check(&step("      Service: ec2\n      Api: DescribeInstances\n      InstanceIds: [i-1]\n"), &[]);
    check(&step("      Service: ec3\n      Api: DescribeInstances\n"), &[("aws-service", 6, 16)]);
    check(&step("      Service: EC2\n      Api: DescribeInstances\n"), &[("aws-service", 6, 16)]);
    check(&step("      Service: ec2\n      Api: DescribeInstance\n"), &[("aws-operation", 7, 12)]);
    // Any spelling botocore accepts names the operation.
    check(&step("      Service: ec2\n      Api: describe_instances\n"), &[]);
    check(
        &step("      Service: ec2\n      Api: DescribeInstances\n      InstanceId: [i-1]\n"),
        &[("aws-parameter", 8, 19)],
    );
    check(
        &step("      Service: ec2\n      Api: RunInstances\n      ImageId: ami-1\n      MinCount: 1\n"),
        &[("aws-parameter", 6, 7)],
    );
    check(
        &step(
            "      Service: ec2\n      Api: RunInstances\n      ImageId: ami-1\n      MinCount: 1\n      MaxCount: [1]\n",
        ),
        &[("aws-parameter", 10, 17)],
    );
    // A reference is not judged before the run.
    check(
        &doc(
            "parameters:\n  N: {type: Integer, default: 1}\nmainSteps:\n  - name: call\n    action: aws:executeAwsApi\n    inputs: {Service: ec2, Api: RunInstances, ImageId: ami-1, MinCount: '{{ N }}', MaxCount: '{{ N }}'}\n",
        ),
        &[],
    );
}

/// A run over targets is rate-controlled as AWS documents it; rate control that cannot be read,
/// or that rates no targets, is refused where it stands (it used to refuse every run over
/// targets: defect 5 of the one-timeline issue).
#[test]
fn r_rate_control_that_cannot_be_read_is_refused_where_it_stands() {
    let text = doc(
        "mainSteps:\n  - name: fan\n    action: aws:executeAutomation\n    inputs: {DocumentName: d, TargetParameterName: p, Targets: [{Key: ParameterValues, Values: [a, b]}]}\n",
    );
    let loaded = document::load("case.yaml".into(), text.into_bytes(), Some(Format::Yaml));
    let validated = validate::validate_to_start(loaded, &Config::default());
    assert!(validated.diagnostics.is_empty(), "{:?}", validated.diagnostics);
    check(
        &doc(
            "mainSteps:\n  - name: fan\n    action: aws:executeAutomation\n    inputs: {DocumentName: d, TargetParameterName: p, Targets: [{Key: ParameterValues, Values: [a]}], MaxConcurrency: ten, MaxErrors: 101%}\n\
             \x20 - name: lone\n    action: aws:executeAutomation\n    inputs: {DocumentName: d, MaxErrors: '1'}\n",
        ),
        &[
            ("execute-automation-fan-out", 5, 119),
            ("execute-automation-fan-out", 5, 135),
            ("execute-automation-fan-out", 8, 42),
        ],
    );
}

/// Writes a scenario file for the kinds runbook and returns the `runbook test` output.
fn bad_scenarios(scratch: &runbook_tests::Scratch, text: &str) -> runbook_tests::Output {
    let file = super::scenarios::kinds(scratch, text);
    let output = runbook_tests::runbook(&["test", &file, "--format", "json"]);
    assert_eq!(output.code, 1, "{}{}", output.stdout, output.stderr);
    output
}

#[test]
fn bad_scenario_files_get_a_located_diagnostic_for_every_scenario_code() {
    let scratch = runbook_tests::Scratch::new("scenario-bad");
    let cases: &[(&str, &str, &str, u64)] = &[
        (
            "scenarios:\n  - name: x\n    steps:\n      gret: {outputs: {Greeting: hi}}\n    expect: {status: Success}\n",
            "scenario-unknown-step",
            "the runbook has no step named `gret`",
            4,
        ),
        (
            "scenarios:\n  - name: x\n    steps:\n      greet: {outputs: {Greting: hi}}\n    expect: {status: Success}\n",
            "scenario-unknown-output",
            "step `greet` has no output `Greting`",
            4,
        ),
        (
            "scenarios:\n  - name: x\n    steps:\n      greet: {outputs: {Greeting: [1]}}\n    expect: {status: Success}\n",
            "scenario-output-type",
            "output `greet.Greeting` is a String",
            4,
        ),
        (
            "scenarios:\n  - name: x\n    expect:\n      steps:\n        lookup: {outputs: {Typ: x}}\n",
            "scenario-unknown-output",
            "step `lookup` has no output `Typ`",
            5,
        ),
        (
            "scenarios:\n  - name: x\n    expect:\n      path: [early, nope]\n",
            "scenario-unknown-step",
            "no step named `nope`",
            4,
        ),
        (
            "scenarios:\n  - name: x\n    parameters: {Name: [1, 2]}\n    expect: {status: Success}\n",
            "parameter-type",
            "`Name` is a String",
            3,
        ),
        (
            "scenarios:\n  - name: x\n    steps:\n      greet: {attempts: 2-1, error: e}\n    expect: {status: Failed}\n",
            "scenario-value",
            "not a range of numbers from 1 up",
            4,
        ),
        (
            "scenarios:\n  - name: x\n    aws:\n      - {call: ec2.DescribeInstanse, response: {}}\n    expect: {status: Failed}\n",
            "scenario-mock",
            "did you mean `DescribeInstances`?",
            4,
        ),
        (
            "scenarios:\n  - name: x\n    aws:\n      - call: ec2.DescribeInstances\n        response: {Reservashuns: []}\n    expect: {}\n",
            "scenario-mock",
            "unknown member `Reservashuns`",
            5,
        ),
        (
            "scenarios:\n  - name: x\n    steps:\n      nap: {payload: 1}\n    expect: {}\n",
            "scenario-mock",
            "only script steps (aws:executeScript) return a payload",
            4,
        ),
        (
            "scenarios:\n  - name: x\n    answers: {greet: approve}\n    expect: {}\n",
            "scenario-mock",
            "only aws:approve and aws:pause steps take answers",
            3,
        ),
        ("scenarios:\n  - name: x\n    expect: {staus: Success}\n", "scenario-schema", "unknown key `staus`", 3),
        ("scenarios:\n  - name: x\n    answers: {hold: cancel}\n    expect: {}\n", "scenario-schema", "", 3),
        (
            "scenarios:\n  - name: x\n    steps:\n      greet#2: {error: e}\n    expect: {}\n",
            "scenario-value",
            "pick iterations with `iterations:`",
            4,
        ),
        (
            "scenarios:\n  - name: x\n    aws:\n      - call: ec2.DescribeInstances\n        request: {InstanceId: [i-1]}\n        response: {}\n    expect: {}\n",
            "scenario-mock",
            "unknown parameter `InstanceId`; did you mean `InstanceIds`?",
            5,
        ),
        (
            "scenarios:\n  - name: x\n    expect: {}\n  - name: x\n    expect: {}\n",
            "scenario-duplicate-name",
            "already",
            4,
        ),
        ("scenarios:\n  - name: x\n    expect: {status: [Success\n", "parse-error", "", 4),
        ("runbook: missing.yaml\nscenarios:\n  - {name: x, expect: {}}\n", "scenario-runbook", "missing.yaml", 1),
    ];
    for (text, code, message, line) in cases {
        let output = bad_scenarios(&scratch, text);
        let report = super::scenarios::json(&output);
        let found = report["diagnostics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["code"] == *code)
            .unwrap_or_else(|| panic!("no {code} for\n{text}\n{report:#}"));
        assert!(found["message"].as_str().unwrap().contains(message), "{text}\n{found:#}");
        assert_eq!(found["line"], *line, "{text}\n{found:#}");
        assert!(found["column"].as_u64().unwrap() >= 1, "{found:#}");
        assert_eq!(report["summary"]["scenarios"], 0, "an invalid file runs nothing: {report:#}");
    }
    // The text format shows the same with a source snippet.
    let file = super::scenarios::kinds(&scratch, cases[0].0);
    let text = runbook_tests::runbook(&["test", &file]);
    assert_eq!(text.code, 1);
    assert!(
        text.stdout.contains("scenario-unknown-step") && text.stdout.contains("did you mean `greet`?"),
        "{}",
        text.stdout
    );
    // No scenario file at all is a usage error.
    let empty = runbook_tests::Scratch::new("scenario-none");
    assert_eq!(runbook_tests::runbook(&["test", &empty.dir.display().to_string()]).code, 2);
}

#[test]
fn every_code_is_exercised_here() {
    // A new code must come with a negative test in this file.
    let source = include_str!("rules.rs");
    for code in Code::ALL {
        let quoted = format!("\"{}\"", code.as_str());
        assert!(source.matches(&quoted).count() >= 1, "no test uses code {}", code.as_str());
    }
}

#[test]
fn bad_input_never_panics() {
    let mut inputs: Vec<Vec<u8>> = vec![
        Vec::new(),
        vec![0xff; 64],
        b"\x00\x01\x02\x03garbage\xc3\x28".to_vec(),
        "{".repeat(100_000).into_bytes(),
        "- ".repeat(50_000).into_bytes(),
        b"n: 1e999999\n".to_vec(),
        b"n: 123456789012345678901234567890123456789\nmainSteps: 5\n".to_vec(),
        b"schemaVersion: '0.3'\nmainSteps:\n  - name: a\n    action: aws:sleep\n    inputs: {Duration: P1Y}\n    maxAttempts: 99999999999999999999999\n".to_vec(),
        b"schemaVersion: '0.3'\nmainSteps: [{name: x, action: aws:branch, inputs: {Choices: [[], 5, {Not: {Not: {Not: []}}}]}}]\n".to_vec(),
        b"schemaVersion: '0.3'\nmainSteps: [{name: x, action: aws:loop, inputs: {Steps: 5, LoopCondition: []}}]\n".to_vec(),
        b"? [complex]\n: key\n".to_vec(),
        b"a: *unknown\n".to_vec(),
        b"'{{': '}}'\n".to_vec(),
        b"\xef\xbb\xbf{\"schemaVersion\": \"0.3\", \"mainSteps\": []}".to_vec(),
        // Steps taken apart as they are parsed: anchors and aliases across steps, items that
        // are no mappings, `mainSteps` twice, a step that breaks off.
        b"schemaVersion: '0.3'\nmainSteps:\n  - &s {name: a, action: aws:sleep, inputs: {Duration: PT0S}}\n  - *s\n  - null\n  - 5\n  - [x]\n".to_vec(),
        b"schemaVersion: '0.3'\nmainSteps: [{name: a}]\nmainSteps: [{name: b}]\n".to_vec(),
        b"{\"schemaVersion\": \"0.3\", \"mainSteps\": [{\"name\": \"a\"}, null, 5, {\"name\": \"b\", \"name\": \"c\"}]}".to_vec(),
        b"{\"schemaVersion\": \"0.3\", \"mainSteps\": [{\"name\": \"a\"}], \"mainSteps\": {}}".to_vec(),
        b"schemaVersion: '0.3'\nmainSteps:\n  - name: a\n    action: aws:sleep\n    inputs: {\n  Duration: PT0S\n}\n  - name: b\n    action: [\n".to_vec(),
    ];
    for depth in [10, 127, 128, 129, 1000] {
        inputs.push(format!("{}1{}", "[".repeat(depth), "]".repeat(depth)).into_bytes());
        inputs.push(format!("{}{}", "{\"a\":".repeat(depth), "}".repeat(depth)).into_bytes());
    }
    for (i, bytes) in inputs.into_iter().enumerate() {
        for format in [None, Some(Format::Json), Some(Format::Yaml)] {
            let loaded = document::load(format!("input-{i}"), bytes.clone(), format);
            let validated = validate::validate(loaded, &Config::default());
            if validated.runbook.is_none() {
                assert!(validated.errors() > 0, "input {i} ({format:?}) failed to load without an error");
            }
            let step_by_step = validate::load_as(format!("input-{i}"), bytes.clone(), format, true);
            assert_eq!(step_by_step.validate(&Config::default()).diagnostics, validated.diagnostics, "input {i}");
        }
    }
}

/// A runbook with `count` parameters whose defaults each name the next (`twice`: twice), the
/// last one literal (or, `circle`, naming the first).
fn default_chain(count: usize, twice: bool, circle: bool) -> String {
    let mut text = String::from("schemaVersion: '0.3'\nparameters:\n");
    for i in 0..count {
        let next = if i + 1 < count { i + 1 } else { 0 };
        let default = match (i + 1 < count || circle, twice) {
            (true, true) => format!("{{{{ P{next} }}}}{{{{ P{next} }}}}"),
            (true, false) => format!("{{{{ P{next} }}}}"),
            (false, _) => "ab".to_owned(),
        };
        text.push_str(&format!("  P{i}: {{type: String, default: '{default}'}}\n"));
    }
    text.push_str("mainSteps:\n  - {name: a, action: aws:sleep, inputs: {Duration: PT0S}}\n");
    text
}

#[test]
fn hostile_inputs_end_in_a_budget_or_a_diagnostic_never_an_abort() {
    let scratch = runbook_tests::Scratch::new("hostile");
    let commands = |path: &str| -> Vec<runbook_tests::Output> {
        vec![
            runbook_tests::runbook(&["validate", path, "--format", "json"]),
            runbook_tests::runbook(&["plan", path, "--format", "json"]),
            runbook_tests::runbook(&["run", path, "--dry-run", "--format", "json"]),
        ]
    };
    // A chain of 5,000 defaults, each naming the next, once overflowed the stack (validate
    // at 1,500): defaults are now ordered by an explicit walk.
    let chain = scratch.runbook("chain.yaml", &default_chain(5_000, false, false));
    for output in commands(&chain) {
        assert_eq!(output.code, 0, "{}{}", output.stdout, output.stderr);
    }
    // A circle of 1,500 is one diagnostic.
    let circle = scratch.runbook("circle.yaml", &default_chain(1_500, false, true));
    let validated = &commands(&circle)[0];
    assert_eq!(validated.code, 1);
    assert_eq!(validated.stdout.matches("\"parameter-default-cycle\"").count(), 1, "{}", validated.stdout);
    // Defaults that name the next one twice doubled at every step (1.4 KB -> 1.6 GB).
    let doubling = scratch.runbook("doubling.yaml", &default_chain(40, true, false));
    for output in commands(&doubling) {
        assert_eq!(output.code, 1, "{}{}", output.stdout, output.stderr);
        let text = format!("{}{}", output.stdout, output.stderr);
        assert!(text.contains("expansion-budget") && text.contains("grows past 256 KB"), "{text}");
    }
    // 7,000 unary minus signs in an expression overflowed minijinja's parser.
    let minus = scratch.runbook(
        "minus.yaml",
        &format!(
            "schemaVersion: '0.3'\nx-expressions: true\nparameters:\n  A: {{type: Integer, default: 1}}\n\
             mainSteps:\n  - {{name: a, action: aws:sleep, inputs: {{Duration: 'PT{{{{ {}A }}}}S'}}}}\n",
            "-".repeat(7_000)
        ),
    );
    for output in commands(&minus) {
        assert_eq!(output.code, 1, "{}{}", output.stdout, output.stderr);
        assert!(format!("{}{}", output.stdout, output.stderr).contains("expression-budget"));
    }
    // An expression within the budget still works.
    let fine = scratch.runbook(
        "fine.yaml",
        "schemaVersion: '0.3'\nx-expressions: true\nparameters:\n  A: {type: Integer, default: 1}\n\
         mainSteps:\n  - {name: a, action: aws:sleep, inputs: {Duration: 'PT{{ -(-(A)) }}S'}}\n",
    );
    assert_eq!(runbook_tests::runbook(&["validate", &fine]).code, 0);
    // 18 failing-or-not variable updates: 2^18 distinct states once took 2 GB and 207 MB of
    // output; the dry-run now stops at its budget and says so.
    let mut updates = String::from("schemaVersion: '0.3'\nvariables:\n  V: {type: String, default: ''}\nmainSteps:\n");
    for i in 0..18 {
        updates.push_str(&format!(
            "  - {{name: s{i}, action: aws:updateVariable, onFailure: Continue, inputs: {{Name: 'variable:V', Value: '{{{{ variable:V }}}}{i}'}}}}\n"
        ));
    }
    let updates = scratch.runbook("updates.yaml", &updates);
    let dry = runbook_tests::runbook(&["run", &updates, "--dry-run", "--format", "json"]);
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    let tree: serde_json::Value = serde_json::from_str(&dry.stdout).unwrap();
    assert_eq!(tree["tree"]["budget_spent"], true);
    // Walks under way when the budget ran out still finish their own node: one per step.
    assert!(tree["tree"]["nodes"].as_array().unwrap().len() <= runbook::exec::dry_run::MAX_NODES + 18);
    assert!(dry.stdout.len() < 20_000_000, "{} bytes of output", dry.stdout.len());
    let text = runbook_tests::runbook(&["run", &updates, "--dry-run"]);
    assert!(text.stdout.contains("Exploring stopped after 10000 steps"), "{}", &text.stdout[..500]);
}

/// A step that updates a variable with `value`, in a runbook with expressions on.
fn one_update(value: &str, parameters: &str) -> String {
    format!(
        "schemaVersion: '0.3'\nx-expressions: true\nparameters:\n  A: {{type: Integer, default: 1}}\n{parameters}\
         variables:\n  V: {{type: String, default: ''}}\nmainSteps:\n  \
         - {{name: a, action: aws:updateVariable, inputs: {{Name: 'variable:V', Value: \"{value}\"}}}}\n"
    )
}

#[test]
fn expressions_and_substitutions_that_would_build_gigabytes_end_with_their_budget() {
    let scratch = runbook_tests::Scratch::new("amplified");
    // Refused by validation: minijinja folds constants while compiling (`[1] * 100000000`
    // took 3.5 GB), and deep operator chains overflowed its recursive compiler.
    let chain = ["A"; 50_000].join(" + ");
    for (name, value) in [
        ("repeat", "{{ [1] * 100000000 }}"),
        ("tuple", "{{ (1,) * 100000000 }}"),
        ("compare", "{{ [1] * 10000000 == [2] }}"),
        ("chain", chain.as_str()),
    ] {
        let value = if name == "chain" { format!("{{{{ {value} }}}}") } else { value.to_owned() };
        let path = scratch.runbook(&format!("{name}.yaml"), &one_update(&value, ""));
        for command in [&["validate", &path][..], &["run", &path, "--dry-run"], &["run", &path]] {
            let output = runbook_tests::runbook(command);
            assert_eq!(output.code, 1, "{name} {command:?}: {}{}", output.stdout, output.stderr);
            let text = format!("{}{}", output.stdout, output.stderr);
            assert!(text.contains("expression-budget"), "{name} {command:?}: {text}");
        }
    }
    // Refused when evaluated: values built at run time are weighed before they are built.
    for (name, value) in [
        ("join", "{{ range(100000) | join('x' * 100) }}"),
        ("replace", "{{ ('x' * A * 1000000) | replace('', 'yyyyyy') }}"),
        ("explode", "{{ ('x' * A * 3000000) | list | length }}"),
        ("many", "{{ [A ~ 'x' * 3000000, A ~ 'x' * 3000000, A ~ 'x' * 3000000] * 4 }}"),
    ] {
        let path = scratch.runbook(&format!("{name}.yaml"), &one_update(value, ""));
        let output = runbook_tests::runbook(&["run", &path]);
        assert_eq!(output.code, 4, "{name}: {}{}", output.stdout, output.stderr);
        assert!(output.stdout.contains("expression budget"), "{name}: {}", output.stdout);
    }
    // A 200 KB default referenced 100 times in one input: 20 MB of substitution.
    let big = format!("  P: {{type: String, default: '{}'}}\n", "x".repeat(200_000));
    let path = scratch.runbook("substitution.yaml", &one_update(&"{{ P }}".repeat(100), &big));
    let output = runbook_tests::runbook(&["run", &path]);
    assert_eq!(output.code, 4, "{}{}", output.stdout, output.stderr);
    assert!(output.stdout.contains("substitution budget"), "{}", output.stdout);
    // Within the budgets, the same shapes work.
    let path = scratch.runbook("fine.yaml", &one_update("{{ (range(3) | join('x' * 2)) ~ ('ab' * A) }}", ""));
    let output = runbook_tests::runbook(&["run", &path, "--format", "json"]);
    assert_eq!(output.code, 0, "{}{}", output.stdout, output.stderr);
    assert!(output.stdout.contains("0xx1xx2ab"), "{}", output.stdout);
}

/// `runbook codes CODE` explains every code on its own (no section of a reference users do
/// not have), and its examples are real: the mistake raises the code, the fix does not.
#[test]
fn every_code_is_explained_with_a_mistake_that_raises_it_and_a_fix_that_does_not() {
    let scratch = runbook_tests::Scratch::new("explained");
    let state = scratch.state();
    for (index, code) in Code::ALL.iter().enumerate() {
        let name = code.as_str();
        let explanation = code.explanation().unwrap_or_else(|| panic!("`{name}` has no explanation"));
        assert!(explanation.paragraph.len() > 80, "{name}: {}", explanation.paragraph);
        let rule_like = explanation
            .paragraph
            .split(|c: char| !c.is_alphanumeric())
            .any(|word| word.len() > 1 && word.starts_with('V') && word[1..].chars().all(|c| c.is_ascii_digit()));
        assert!(!rule_like && !explanation.paragraph.contains("ssm-automation"), "{name} cites the reference");
        let find = |role: &str| explanation.examples.iter().find(|e| e.role == role);
        let (Some(wrong), Some(right)) = (find("wrong"), find("right")) else {
            panic!("`{name}` lacks an example of the mistake or of the fix")
        };
        assert_eq!(wrong.kind, right.kind, "{name}");
        let dir = scratch.dir.join(format!("code-{index}"));
        std::fs::create_dir_all(&dir).unwrap();
        for (example, raised) in [(wrong, true), (right, false)] {
            let text = match example.kind.as_str() {
                "runbook" => {
                    let path = dir.join(format!("{}.yaml", example.role));
                    std::fs::write(&path, &example.text).unwrap();
                    let path = path.to_str().unwrap().to_owned();
                    // A fan-out is refused when a run reaches it, not by validation.
                    let mut args: Vec<&str> = if *code == Code::FanOut {
                        vec!["run", &path, "--state-dir", &state]
                    } else {
                        vec!["validate", &path, "--format", "json"]
                    };
                    args.extend(example.arguments.iter().map(String::as_str));
                    let output = runbook_tests::runbook(&args);
                    format!("{}{}", output.stdout, output.stderr)
                }
                "scenario" => {
                    let runbook = find("runbook").unwrap_or_else(|| panic!("`{name}` has no runbook"));
                    let folder = dir.join(example.role.as_str());
                    std::fs::create_dir_all(&folder).unwrap();
                    std::fs::write(folder.join("runbook.yaml"), &runbook.text).unwrap();
                    std::fs::write(folder.join("runbook.test.yaml"), &example.text).unwrap();
                    let output = runbook_tests::runbook(&["test", folder.to_str().unwrap(), "--format", "json"]);
                    format!("{}{}", output.stdout, output.stderr)
                }
                // A fragment (a document past 64 KB cannot be shown whole).
                _ => {
                    assert_eq!(*code, Code::DocumentTooLarge, "`{name}` has no example that can be checked");
                    continue;
                }
            };
            assert_eq!(
                text.contains(&format!("\"{name}\"")) || text.contains(&format!("[{name}]")),
                raised,
                "`{name}`, the {}:\n{}\n{text}",
                example.role,
                example.text
            );
        }
    }
}

/// `validate --for ssm` reports what SSM Automation would not run, at its line; plain
/// `validate` does not.
#[test]
fn not_portable_findings_come_with_validate_for_ssm() {
    let scratch = runbook_tests::Scratch::new("not-portable");
    let path = scratch.runbook(
        "extended.yaml",
        "schemaVersion: '0.3'\nmainSteps:\n  - name: wait\n    action: aws:sleep\n    inputs: {Duration: PT1S}\n    x-undo: {action: aws:sleep, inputs: {Duration: PT1S}}\n",
    );
    let plain = runbook_tests::runbook(&["validate", &path, "--format", "json"]);
    assert_eq!(plain.code, 0, "{}", plain.stdout);
    let output = runbook_tests::runbook(&["validate", &path, "--for", "ssm", "--format", "json"]);
    assert_eq!(output.code, 1, "{}", output.stdout);
    let report: serde_json::Value = serde_json::from_str(&output.stdout).unwrap();
    let found = &report["diagnostics"][0];
    assert_eq!(
        (found["code"].as_str(), found["line"].as_u64(), found["column"].as_u64()),
        (Some("not-portable"), Some(6), Some(5))
    );
}

/// A runbook larger than AWS accepts is checked step by step as it is parsed (the CLI does so
/// by its size): its findings are those of the whole document, at the same places, a schema
/// finding, a document rule's and one of an item that is no step among them.
#[test]
fn a_large_runbook_is_checked_step_by_step_with_the_same_findings() {
    let mut text = String::from("schemaVersion: '0.3'\nmainSteps:\n");
    for i in 0..1500 {
        text.push_str(&format!("  - name: s{i}\n    action: aws:sleep\n    inputs:\n      Duration: PT0S\n"));
    }
    text.push_str("  - name: late\n    action: aws:sleep\n    inputs:\n      Duration: PT0S\n      Bogus: 1\n");
    text.push_str("      '{{ key }}': 2\n  - 5\n");
    assert!(text.len() > runbook::document::AWS_MAX_DOCUMENT_BYTES);
    // Both ways in process (`findings` compares them).
    let found = findings(&text, None);
    let lines: Vec<usize> = found.iter().map(|(_, line, _)| *line).collect();
    // The inputs (two unknown keys), the templated key, the item that is no step.
    for line in [6006, 6008, 6009] {
        assert!(lines.contains(&line), "no finding at line {line}: {found:?}");
    }
    let path = runbook_tests::temp_file("large.yaml", &text);
    let output = runbook_tests::runbook(&["validate", path.to_str().unwrap(), "--format", "json"]);
    let report: serde_json::Value = serde_json::from_str(&output.stdout).unwrap();
    let cli: Vec<(String, usize, usize)> = report["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let at = |key: &str| d[key].as_u64().unwrap_or(0) as usize;
            (d["code"].as_str().unwrap().to_owned(), at("line"), at("column"))
        })
        .collect();
    // The CLI adds the graph's findings, which `findings` does too.
    assert_eq!(cli, found);
}

/// What keeps a large runbook's list of steps whole instead of taken step by step: the list
/// is an alias (`mainSteps: *all`), or an anchor names it for an alias elsewhere. Either way the
/// findings and the runbook are those of the whole document (`findings` compares both ways).
#[test]
fn a_list_of_steps_behind_an_alias_or_an_anchor_is_validated_whole() {
    let step = |name: &str| format!("  - {{name: {name}, action: aws:sleep, inputs: {{Duration: PT0S}}}}\n");
    let aliased = format!("schemaVersion: '0.3'\nx-steps: &all\n{}{}mainSteps: *all\n", step("a"), step("b"));
    let anchored = format!("schemaVersion: '0.3'\nmainSteps: &all\n{}{}x-copy: *all\n", step("a"), step("b"));
    for text in [aliased, anchored] {
        let found = findings(&text, None);
        assert!(found.iter().all(|(code, ..)| code != "missing-main-steps"), "{found:?}");
    }
}

/// The JSON reader notes whether any key holds `{{`, and the walk for templated keys runs only
/// then: a JSON runbook with one is still told, whole and step by step.
#[test]
fn json_templated_keys_are_found() {
    let text = "{\"schemaVersion\": \"0.3\",\n \"mainSteps\": [{\"name\": \"a\", \"action\": \"aws:sleep\",\n  \"inputs\": {\"Duration\": \"PT1S\", \"x\": {\"{{ Id }}\": 1}}}]}\n";
    for step_by_step in [false, true] {
        let validated =
            validate::load_as("case.json".into(), text.as_bytes().to_vec(), Some(Format::Json), step_by_step)
                .validate(&Config::default());
        let found: Vec<_> = validated
            .diagnostics
            .iter()
            .filter(|d| d.code == Code::TemplatedKey)
            .map(|d| d.location.map(|l| (l.line, l.column)))
            .collect();
        assert_eq!(found, [Some((3, 40))], "step by step: {step_by_step}");
    }
}
